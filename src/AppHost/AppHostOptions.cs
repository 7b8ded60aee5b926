using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Platform.AppHost;

/// <summary>
/// The AppHost's options: configuration keys of the <c>AppHost</c> section (appsettings.json, <c>AppHost__Silos</c>, ...),
/// onto which the command-line switches map (<c>--silos 3</c> is <c>AppHost:Silos=3</c>).
/// </summary>
internal sealed record AppHostOptions
{
    /// <summary>The configuration section of the options.</summary>
    public const string SectionName = "AppHost";

    public const string Usage = """
        Usage: dotnet run --project src/AppHost [-- options]

        A .NET Aspire AppHost: starts the silos as project resources (and redis-server or Azurite as executable
        resources when an option asks for them), prints the dashboard's URL, runs the word-count demo on the cluster,
        prints the top words and stops the application.

        Options (each is also the configuration key in brackets, e.g. AppHost__Silos=3):
          --silos N          silos to start (1-16, default 2) [AppHost:Silos]
          --storage KIND     checkpoint storage: fs (a directory under .artifacts; the default) or azure (Azure Blob
                             storage on a local Azurite, an executable resource) [AppHost:Storage]
          --backend KIND     keyed-state backend: heap (the default) or rocksdb [AppHost:Backend]
          --clustering KIND  membership and the platform's control state: development (silo-0 is the primary and
                             keeps the membership table; the default), redis (a local redis-server) or azure (Azure
                             Table membership and Azure Blob grain storage on a local Azurite); the services are
                             executable resources [AppHost:Clustering]
          --parallelism N    parallelism of the word-count job (1-128, default 2) [AppHost:Parallelism]
          --input PATH       text file to count (default samples/wordcount/input.txt) [AppHost:Input]
          --output DIR       directory for the job's part files (default .artifacts/wordcount-output) [AppHost:Output]
          --keep-running     keep the application up after the demo, with an endless job (generated-word-count)
                             checkpointing every second, until Ctrl+C [AppHost:KeepRunning]
          -h, --help         show this help
        """;

    private static readonly (string Switch, string Key, bool HasValue)[] Switches =
    [
        ("--silos", nameof(Silos), true),
        ("--storage", nameof(Storage), true),
        ("--backend", nameof(Backend), true),
        ("--clustering", nameof(Clustering), true),
        ("--parallelism", nameof(Parallelism), true),
        ("--input", nameof(Input), true),
        ("--output", nameof(Output), true),
        ("--keep-running", nameof(KeepRunning), false),
    ];

    /// <summary>How many silos to start.</summary>
    public int Silos { get; init; } = 2;

    /// <summary>Where checkpoints go.</summary>
    public StorageChoice Storage { get; init; } = StorageChoice.FileSystem;

    /// <summary>Where keyed state lives.</summary>
    public BackendChoice Backend { get; init; } = BackendChoice.Heap;

    /// <summary>How silos find each other.</summary>
    public ClusteringChoice Clustering { get; init; } = ClusteringChoice.Development;

    /// <summary>The word-count job's parallelism.</summary>
    public int Parallelism { get; init; } = 2;

    /// <summary>The input file as given (relative to the current directory), or <c>null</c> for the sample text.</summary>
    public string? Input { get; init; }

    /// <summary>The output directory as given, or <c>null</c> for the default under the repository's .artifacts.</summary>
    public string? Output { get; init; }

    /// <summary>Whether the application stays up after the demo until Ctrl+C.</summary>
    public bool KeepRunning { get; init; }

    /// <summary>Whether the arguments ask for the usage only.</summary>
    public static bool IsHelp(IReadOnlyList<string> args) => args.Any(a => a is "-h" or "--help" or "-?");

    /// <summary>
    /// Turns the switches into configuration arguments (<c>--AppHost:Silos=3</c>) for the application builder; other
    /// configuration arguments (<c>--Some:Key=value</c>, <c>Some:Key=value</c>) pass through. Throws
    /// <see cref="UsageException"/> naming an unknown switch or a missing value.
    /// </summary>
    public static string[] ToConfigurationArguments(IReadOnlyList<string> args)
    {
        var result = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string? inlineValue = null;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.IndexOf('=', StringComparison.Ordinal) is var eq and > 0)
            {
                inlineValue = arg[(eq + 1)..];
                arg = arg[..eq];
            }

            var known = Switches.FirstOrDefault(s => s.Switch == arg);
            if (known.Switch is null)
            {
                // A configuration key (it has a ':' or is key=value without dashes) goes to the builder as it is.
                if (arg.Contains(':', StringComparison.Ordinal) || (!arg.StartsWith('-') && inlineValue is null && args[i].Contains('=', StringComparison.Ordinal)))
                {
                    result.Add(args[i]);
                    continue;
                }

                throw new UsageException($"Unknown option '{args[i]}'.");
            }

            string value;
            if (!known.HasValue)
            {
                if (inlineValue is not null)
                {
                    throw new UsageException($"Option '{arg}' takes no value.");
                }

                value = "true";
            }
            else if (inlineValue is not null)
            {
                value = inlineValue;
            }
            else if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                throw new UsageException($"Option '{arg}' needs a value.");
            }
            else
            {
                value = args[++i];
            }

            result.Add($"--{SectionName}:{known.Key}={value}");
        }

        return [.. result];
    }

    /// <summary>Reads the options from the <c>AppHost</c> section; throws <see cref="UsageException"/> naming a bad one.</summary>
    public static AppHostOptions From(IConfiguration configuration)
    {
        var section = configuration.GetSection(SectionName);
        var defaults = new AppHostOptions();
        return new AppHostOptions
        {
            Silos = Integer(section, nameof(Silos), 1, 16, defaults.Silos),
            Storage = Choice(section, nameof(Storage), defaults.Storage, ("fs", StorageChoice.FileSystem), ("azure", StorageChoice.AzureBlob)),
            Backend = Choice(section, nameof(Backend), defaults.Backend, ("heap", BackendChoice.Heap), ("rocksdb", BackendChoice.RocksDb)),
            Clustering = Choice(section, nameof(Clustering), defaults.Clustering, ("development", ClusteringChoice.Development), ("redis", ClusteringChoice.Redis), ("azure", ClusteringChoice.AzureStorage)),
            Parallelism = Integer(section, nameof(Parallelism), 1, 128, defaults.Parallelism),
            Input = NonEmpty(section, nameof(Input)),
            Output = NonEmpty(section, nameof(Output)),
            KeepRunning = Boolean(section, nameof(KeepRunning)),
        };
    }

    /// <summary>How an option is named in messages: the switch and the configuration key.</summary>
    private static string Name(string key) =>
        $"'{Switches.First(s => s.Key == key).Switch}' ({SectionName}:{key})";

    private static int Integer(IConfigurationSection section, string key, int min, int max, int fallback) =>
        section[key] is not { } value ? fallback
        : int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var result) && result >= min && result <= max ? result
        : throw new UsageException($"Option {Name(key)} is '{value}'; it must be a whole number from {min} to {max}.");

    private static T Choice<T>(IConfigurationSection section, string key, T fallback, params (string Name, T Value)[] choices) =>
        section[key] is not { } value ? fallback
        : choices.FirstOrDefault(c => string.Equals(c.Name, value, StringComparison.OrdinalIgnoreCase)) is { Name: not null } match ? match.Value
        : throw new UsageException($"Option {Name(key)} is '{value}'; it must be {OneOf(choices.Select(c => c.Name).ToList())}.");

    /// <summary>"a or b", "a, b or c".</summary>
    private static string OneOf(IReadOnlyList<string> names) =>
        names.Count == 1 ? names[0] : $"{string.Join(", ", names.Take(names.Count - 1))} or {names[^1]}";

    private static string? NonEmpty(IConfigurationSection section, string key) =>
        section[key] is not { } value ? null
        : string.IsNullOrWhiteSpace(value) ? throw new UsageException($"Option {Name(key)} needs a non-empty value.")
        : value;

    private static bool Boolean(IConfigurationSection section, string key) =>
        section[key] is not { } value ? false
        : bool.TryParse(value, out var result) ? result
        : throw new UsageException($"Option {Name(key)} is '{value}'; it must be true or false.");
}

/// <summary>The checkpoint storage the AppHost configures the silos with.</summary>
internal enum StorageChoice
{
    /// <summary>A directory shared by the silos (the embedded default).</summary>
    FileSystem,

    /// <summary>Azure Blob storage, on an Azurite the AppHost runs.</summary>
    AzureBlob,
}

/// <summary>The keyed-state backend the AppHost configures the silos with.</summary>
internal enum BackendChoice
{
    /// <summary>On the managed heap.</summary>
    Heap,

    /// <summary>Embedded RocksDB.</summary>
    RocksDb,
}

/// <summary>How the AppHost's silos form a cluster.</summary>
internal enum ClusteringChoice
{
    /// <summary>Orleans' development clustering: silo-0 keeps the membership table.</summary>
    Development,

    /// <summary>Orleans' Redis clustering, on a redis-server the AppHost runs.</summary>
    Redis,

    /// <summary>Orleans' Azure Table clustering and Azure Blob grain storage, on an Azurite the AppHost runs.</summary>
    AzureStorage,
}

/// <summary>An option is wrong; the message says which and how.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>The AppHost cannot go on; the message says why (no stack trace needed).</summary>
internal sealed class AppHostException(string message) : Exception(message);
