using System.Globalization;
using Platform.Graph;

namespace Platform.Catalog;

/// <summary>The type of a catalog job's argument: how its string value is parsed and checked.</summary>
[GenerateSerializer, Alias("platform.JobArgumentType")]
public enum JobArgumentType
{
    /// <summary>Any text.</summary>
    String,

    /// <summary>A 32-bit integer (<see cref="int"/>).</summary>
    Int,

    /// <summary>A 64-bit integer (<see cref="long"/>).</summary>
    Long,

    /// <summary>A finite floating-point number (<see cref="double"/>), with '.' as the decimal separator.</summary>
    Double,

    /// <summary><c>true</c> or <c>false</c> (also <c>yes</c>/<c>no</c>, <c>1</c>/<c>0</c>).</summary>
    Bool,

    /// <summary>A file or directory path as the silo sees it; a relative path resolves against the silo's working directory.</summary>
    Path,

    /// <summary>A length of time: a number with a unit (<c>500ms</c>, <c>10s</c>, <c>5m</c>, <c>2h</c>, <c>1d</c>) or <c>hh:mm:ss</c>.</summary>
    Duration,
}

/// <summary>An argument that a catalog job takes, as the catalog lists it.</summary>
[GenerateSerializer, Immutable, Alias("platform.JobArgument")]
public sealed record JobArgument
{
    /// <summary>The argument's name, as given on the command line (<c>--arg name=value</c>).</summary>
    [Id(0)] public required string Name { get; init; }

    /// <summary>How the value is parsed.</summary>
    [Id(1)] public JobArgumentType Type { get; init; } = JobArgumentType.String;

    /// <summary>What the argument means, for people.</summary>
    [Id(2)] public string Description { get; init; } = "";

    /// <summary>The value used when the argument is not given (in the same string form); <c>null</c> for none.</summary>
    [Id(3)] public string? Default { get; init; }

    /// <summary>Whether a run must give the argument (a required argument has no default).</summary>
    [Id(4)] public bool Required { get; init; }

    /// <summary>The smallest value allowed, for <see cref="JobArgumentType.Int"/>, <see cref="JobArgumentType.Long"/> and <see cref="JobArgumentType.Double"/>.</summary>
    [Id(5)] public double? Minimum { get; init; }

    /// <summary>The largest value allowed, for <see cref="JobArgumentType.Int"/>, <see cref="JobArgumentType.Long"/> and <see cref="JobArgumentType.Double"/>.</summary>
    [Id(6)] public double? Maximum { get; init; }

    /// <summary>The type's name as people write it (<c>int</c>, <c>path</c>, ...).</summary>
    public string TypeName => Type.ToString().ToLowerInvariant();
}

/// <summary>A job of the catalog as clients see it: its name, what it does, and the arguments it takes.</summary>
[GenerateSerializer, Immutable, Alias("platform.JobCatalogEntry")]
public sealed record JobCatalogEntry
{
    /// <summary>The name a job is started by.</summary>
    [Id(0)] public required string Name { get; init; }

    /// <summary>What the job does.</summary>
    [Id(1)] public string Description { get; init; } = "";

    /// <summary>The arguments it takes, in the order they were declared.</summary>
    [Id(2)] public IReadOnlyList<JobArgument> Arguments { get; init; } = [];

    /// <summary>The parallelism the job runs with unless a run overrides it.</summary>
    [Id(3)] public int Parallelism { get; init; } = 1;
}

/// <summary>
/// A named job that silos register in their catalog (<c>siloBuilder.AddJob(...)</c>) so that clients can start it by
/// name with string arguments (<c>PlatformClient.RunAsync</c>, <c>platform run</c>). The silo parses the arguments
/// (<see cref="JobArguments"/>), calls <see cref="Build"/> and submits the graph it returns.
/// </summary>
public sealed record JobDefinition
{
    /// <summary>The name a job is started by: letters, digits, '-', '_' and '.'.</summary>
    public required string Name { get; init; }

    /// <summary>What the job does, for people.</summary>
    public string Description { get; init; } = "";

    /// <summary>The arguments the job takes.</summary>
    public IReadOnlyList<JobArgument> Arguments { get; init; } = [];

    /// <summary>The parallelism of operators that do not set their own, unless a run overrides it (default 1).</summary>
    public int Parallelism { get; init; } = 1;

    /// <summary>
    /// Builds the job from its parsed arguments. An <see cref="ArgumentException"/> it throws is reported to the caller
    /// as a bad argument; the builder's default parallelism is set afterwards (<see cref="Parallelism"/> or the run's).
    /// </summary>
    public required Func<JobArguments, StreamJobBuilder> Build { get; init; }

    /// <summary>The definition as the catalog lists it.</summary>
    public JobCatalogEntry ToEntry() => new() { Name = Name, Description = Description, Arguments = Arguments, Parallelism = Parallelism };

    /// <summary>Everything wrong with the definition itself (names, defaults, bounds), one sentence each; empty when it is sound.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (!IsValidName(Name))
        {
            problems.Add($"Job name '{Name}' is not valid: use letters, digits, '-', '_' and '.', starting with a letter or digit.");
        }

        if (Build is null)
        {
            problems.Add($"Job '{Name}' has no Build function.");
        }

        if (Parallelism < 1)
        {
            problems.Add($"Job '{Name}' has parallelism {Parallelism}; it must be at least 1.");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var argument in Arguments ?? [])
        {
            if (argument is null)
            {
                problems.Add($"Job '{Name}' has a null argument.");
                continue;
            }

            var where = $"Argument '{argument.Name}' of job '{Name}'";
            if (!IsValidName(argument.Name))
            {
                problems.Add($"{where} has a name that is not valid: use letters, digits, '-', '_' and '.', starting with a letter or digit.");
            }
            else if (!seen.Add(argument.Name))
            {
                problems.Add($"{where} is declared twice.");
            }

            if (!Enum.IsDefined(argument.Type))
            {
                problems.Add($"{where} has an unknown type {(int)argument.Type}.");
                continue;
            }

            var numeric = argument.Type is JobArgumentType.Int or JobArgumentType.Long or JobArgumentType.Double;
            if (!numeric && (argument.Minimum is not null || argument.Maximum is not null))
            {
                problems.Add($"{where} is of type {argument.TypeName}; only int, long and double arguments take a minimum or maximum.");
            }
            else if (argument.Minimum > argument.Maximum)
            {
                problems.Add($"{where} has a minimum ({Format(argument.Minimum)}) above its maximum ({Format(argument.Maximum)}).");
            }

            if (argument.Required && argument.Default is not null)
            {
                problems.Add($"{where} is required and has a default ('{argument.Default}'); a required argument has none.");
            }
            else if (argument.Default is not null && JobArguments.TryParseValue(argument, argument.Default, out _) is { } problem)
            {
                problems.Add($"{where} has a default that does not fit its own type: {problem}");
            }
        }

        return problems;
    }

    /// <summary>Whether <paramref name="name"/> is a valid job or argument name.</summary>
    internal static bool IsValidName(string? name) =>
        !string.IsNullOrEmpty(name)
        && char.IsAsciiLetterOrDigit(name[0])
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static string Format(double? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "";
}
