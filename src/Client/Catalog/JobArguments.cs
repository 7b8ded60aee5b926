using System.Globalization;

namespace Platform.Catalog;

/// <summary>
/// The parsed arguments of a catalog job run: every declared argument that was given or has a default, typed as its
/// declaration says. A job's <see cref="JobDefinition.Build"/> reads them with the getter of the argument's type.
/// </summary>
public sealed class JobArguments
{
    private readonly Dictionary<string, JobArgument> _declared;
    private readonly Dictionary<string, object> _values;

    private JobArguments(string jobName, Dictionary<string, JobArgument> declared, Dictionary<string, object> values)
    {
        JobName = jobName;
        _declared = declared;
        _values = values;
    }

    /// <summary>The name of the job the arguments are for.</summary>
    public string JobName { get; }

    /// <summary>Whether the argument has a value (it was given or has a default).</summary>
    public bool IsSet(string name)
    {
        Declaration(name);
        return _values.ContainsKey(name);
    }

    /// <summary>The value of a <see cref="JobArgumentType.String"/> argument.</summary>
    public string GetString(string name) => Get<string>(name, JobArgumentType.String);

    /// <summary>The value of an <see cref="JobArgumentType.Int"/> argument.</summary>
    public int GetInt32(string name) => Get<int>(name, JobArgumentType.Int);

    /// <summary>The value of a <see cref="JobArgumentType.Long"/> argument.</summary>
    public long GetInt64(string name) => Get<long>(name, JobArgumentType.Long);

    /// <summary>The value of a <see cref="JobArgumentType.Double"/> argument.</summary>
    public double GetDouble(string name) => Get<double>(name, JobArgumentType.Double);

    /// <summary>The value of a <see cref="JobArgumentType.Bool"/> argument.</summary>
    public bool GetBoolean(string name) => Get<bool>(name, JobArgumentType.Bool);

    /// <summary>The value of a <see cref="JobArgumentType.Path"/> argument: a full path, resolved on the silo.</summary>
    public string GetPath(string name) => Get<string>(name, JobArgumentType.Path);

    /// <summary>The value of a <see cref="JobArgumentType.Duration"/> argument.</summary>
    public TimeSpan GetDuration(string name) => Get<TimeSpan>(name, JobArgumentType.Duration);

    /// <summary>The path argument's value, or <c>null</c> when it is not set.</summary>
    public string? GetPathOrNull(string name) => IsSet(name) ? GetPath(name) : null;

    /// <summary>The duration argument's value, or <c>null</c> when it is not set.</summary>
    public TimeSpan? GetDurationOrNull(string name) => IsSet(name) ? GetDuration(name) : null;

    /// <summary>The long argument's value, or <c>null</c> when it is not set.</summary>
    public long? GetInt64OrNull(string name) => IsSet(name) ? GetInt64(name) : null;

    /// <summary>
    /// Parses <paramref name="arguments"/> (name → value as text) for <paramref name="definition"/>: every given name must
    /// be declared, every required argument given, and every value must parse as its type and lie within its bounds.
    /// </summary>
    /// <exception cref="JobArgumentException">Something is wrong; the exception lists every problem.</exception>
    public static JobArguments Parse(JobDefinition definition, IReadOnlyDictionary<string, string> arguments)
    {
        var problems = new List<string>();
        var parsed = TryParse(definition, arguments, problems);
        return problems.Count == 0 ? parsed : throw new JobArgumentException(definition.Name, problems);
    }

    /// <summary>Parses like <see cref="Parse"/> but adds every problem to <paramref name="problems"/> instead of throwing.</summary>
    internal static JobArguments TryParse(JobDefinition definition, IReadOnlyDictionary<string, string> arguments, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentNullException.ThrowIfNull(arguments);
        var declared = definition.Arguments.ToDictionary(a => a.Name, StringComparer.Ordinal);
        var values = new Dictionary<string, object>(StringComparer.Ordinal);

        foreach (var (name, _) in arguments.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            if (!declared.ContainsKey(name))
            {
                var suggestion = Suggestions.Closest(name, declared.Keys);
                problems.Add($"Unknown argument '{name}'" + (suggestion is null ? "." : $"; did you mean '{suggestion}'?") +
                             (declared.Count == 0 ? $" Job '{definition.Name}' takes no arguments." : $" Job '{definition.Name}' takes: {string.Join(", ", declared.Keys)}."));
            }
        }

        foreach (var argument in definition.Arguments)
        {
            if (arguments.TryGetValue(argument.Name, out var text))
            {
                if (TryParseValue(argument, text, out var value) is { } problem)
                {
                    problems.Add(problem);
                }
                else
                {
                    values[argument.Name] = value!;
                }
            }
            else if (argument.Required)
            {
                problems.Add($"Argument '{argument.Name}' is required: {Describe(argument)}.");
            }
            else if (argument.Default is not null && TryParseValue(argument, argument.Default, out var value) is null)
            {
                values[argument.Name] = value!;
            }
        }

        return new JobArguments(definition.Name, declared, values);
    }

    /// <summary>Parses one value; returns a sentence naming the argument and what it expects when the value does not fit.</summary>
    internal static string? TryParseValue(JobArgument argument, string text, out object? value)
    {
        value = null;
        var given = $"Argument '{argument.Name}' is '{text}'";
        switch (argument.Type)
        {
            case JobArgumentType.String:
                value = text;
                return null;
            case JobArgumentType.Int:
                if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i))
                {
                    return $"{given}; expected an int (a whole number from {int.MinValue} to {int.MaxValue}){Bounds(argument)}.";
                }

                value = i;
                return OutOfBounds(argument, given, i);
            case JobArgumentType.Long:
                if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l))
                {
                    return $"{given}; expected a long (a whole number from {long.MinValue} to {long.MaxValue}){Bounds(argument)}.";
                }

                value = l;
                return OutOfBounds(argument, given, l);
            case JobArgumentType.Double:
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || !double.IsFinite(d))
                {
                    return $"{given}; expected a double (a finite number such as 2.5, with '.' as the decimal point){Bounds(argument)}.";
                }

                value = d;
                return OutOfBounds(argument, given, d);
            case JobArgumentType.Bool:
                if (ParseBool(text) is not { } b)
                {
                    return $"{given}; expected a bool (true or false).";
                }

                value = b;
                return null;
            case JobArgumentType.Path:
                if (string.IsNullOrWhiteSpace(text))
                {
                    return $"{given}; expected a path (a file or directory as the silo sees it), not an empty one.";
                }

                try
                {
                    value = System.IO.Path.GetFullPath(text);
                    return null;
                }
                catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
                {
                    return $"{given}; expected a path (a file or directory as the silo sees it): {ex.Message}";
                }

            case JobArgumentType.Duration:
                if (ParseDuration(text) is not { } duration)
                {
                    return $"{given}; expected a duration: a number and a unit (500ms, 10s, 5m, 2h, 1d) or hh:mm:ss.";
                }

                if (duration < TimeSpan.Zero)
                {
                    return $"{given}; a duration cannot be negative.";
                }

                value = duration;
                return null;
            default:
                return $"Argument '{argument.Name}' has an unknown type {(int)argument.Type}.";
        }
    }

    /// <summary>One phrase describing the argument: its type, bounds and meaning.</summary>
    internal static string Describe(JobArgument argument) =>
        argument.TypeName + Bounds(argument) + (argument.Description.Length == 0 ? "" : $", {argument.Description.TrimEnd('.')}");

    private static string Bounds(JobArgument argument) => (argument.Minimum, argument.Maximum) switch
    {
        ({ } min, { } max) => $", from {Format(min)} to {Format(max)}",
        ({ } min, null) => $", at least {Format(min)}",
        (null, { } max) => $", at most {Format(max)}",
        _ => "",
    };

    private static string? OutOfBounds(JobArgument argument, string given, double value) =>
        value < argument.Minimum || value > argument.Maximum ? $"{given}; it must be{Bounds(argument)[1..]}." : null;

    private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);

    private static bool? ParseBool(string text) => text.Trim().ToLowerInvariant() switch
    {
        "true" or "yes" or "1" => true,
        "false" or "no" or "0" => false,
        _ => null,
    };

    private static TimeSpan? ParseDuration(string text)
    {
        text = text.Trim();
        if (text.Contains(':', StringComparison.Ordinal))
        {
            return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var span) ? span : null;
        }

        var unitStart = text.Length;
        while (unitStart > 0 && char.IsAsciiLetter(text[unitStart - 1]))
        {
            unitStart--;
        }

        if (!double.TryParse(text[..unitStart], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount))
        {
            return null;
        }

        double? milliseconds = text[unitStart..].ToLowerInvariant() switch
        {
            "ms" => amount,
            "s" => amount * 1_000,
            "m" or "min" => amount * 60_000,
            "h" => amount * 3_600_000,
            "d" => amount * 86_400_000,
            _ => null,
        };
        return milliseconds is { } ms && ms <= TimeSpan.MaxValue.TotalMilliseconds ? TimeSpan.FromMilliseconds(ms) : null;
    }

    private T Get<T>(string name, JobArgumentType type)
    {
        var argument = Declaration(name);
        if (argument.Type != type)
        {
            throw new InvalidOperationException(
                $"Argument '{name}' of job '{JobName}' is declared as {argument.TypeName}; read it with the getter for {argument.TypeName}, not {type.ToString().ToLowerInvariant()}.");
        }

        return _values.TryGetValue(name, out var value)
            ? (T)value
            : throw new InvalidOperationException($"Argument '{name}' of job '{JobName}' was not given and has no default; check IsSet(\"{name}\") first.");
    }

    private JobArgument Declaration(string name) =>
        _declared.TryGetValue(name, out var argument)
            ? argument
            : throw new ArgumentException($"Job '{JobName}' declares no argument '{name}'; it declares: {string.Join(", ", _declared.Keys)}.", nameof(name));
}

/// <summary>"Did you mean" for mistyped names: the closest candidate within a few edits.</summary>
internal static class Suggestions
{
    /// <summary>The candidate closest to <paramref name="name"/> (ignoring case), when one is close enough to be a typo.</summary>
    public static string? Closest(string name, IEnumerable<string> candidates)
    {
        var limit = Math.Max(2, name.Length / 3);
        return candidates
            .Select(c => (Candidate: c, Distance: Distance(name.ToLowerInvariant(), c.ToLowerInvariant())))
            .Where(c => c.Distance <= limit)
            .OrderBy(c => c.Distance)
            .ThenBy(c => c.Candidate, StringComparer.Ordinal)
            .Select(c => c.Candidate)
            .FirstOrDefault();
    }

    // Levenshtein distance with one row.
    private static int Distance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var diagonal = row[0];
            row[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }

        return row[b.Length];
    }
}
