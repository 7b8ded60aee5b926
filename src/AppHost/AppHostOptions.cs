using System.Globalization;

namespace Platform.AppHost;

/// <summary>The AppHost's command-line options.</summary>
internal sealed record AppHostOptions
{
    public const string Usage = """
        Usage: dotnet run --project src/AppHost [-- options]

        Starts a local cluster of silos (child processes), runs the word-count demo on it, prints the top words and
        stops the cluster.

        Options:
          --silos N          silos to start (1-16, default 2)
          --storage KIND     checkpoint storage: fs (a directory under .artifacts; the default) or azure (Azure Blob
                             storage on a local Azurite, started and stopped by the AppHost)
          --backend KIND     keyed-state backend: heap (the default) or rocksdb
          --clustering KIND  membership: development (silo-0 is the primary; the default) or redis (a local
                             redis-server, started and stopped by the AppHost)
          --parallelism N    parallelism of the word-count job (1-128, default 2)
          --input PATH       text file to count (default samples/wordcount/input.txt)
          --output DIR       directory for the job's part files (default .artifacts/wordcount-output)
          --keep-running     keep the cluster up after the demo, with an endless job (generated-word-count)
                             checkpointing every second, until Ctrl+C
          -h, --help         show this help
        """;

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

    /// <summary>Whether the cluster stays up after the demo until Ctrl+C.</summary>
    public bool KeepRunning { get; init; }

    /// <summary>Whether only the usage was asked for.</summary>
    public bool Help { get; init; }

    /// <summary>Parses the arguments; throws <see cref="UsageException"/> naming the bad option.</summary>
    public static AppHostOptions Parse(IReadOnlyList<string> args)
    {
        var options = new AppHostOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string? inlineValue = null;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.IndexOf('=', StringComparison.Ordinal) is var eq and > 0)
            {
                inlineValue = arg[(eq + 1)..];
                arg = arg[..eq];
            }

            switch (arg)
            {
                case "--silos":
                    options = options with { Silos = Integer(arg, Value(), 1, 16) };
                    break;
                case "--storage":
                    options = options with { Storage = Choice(arg, Value(), ("fs", StorageChoice.FileSystem), ("azure", StorageChoice.AzureBlob)) };
                    break;
                case "--backend":
                    options = options with { Backend = Choice(arg, Value(), ("heap", BackendChoice.Heap), ("rocksdb", BackendChoice.RocksDb)) };
                    break;
                case "--clustering":
                    options = options with { Clustering = Choice(arg, Value(), ("development", ClusteringChoice.Development), ("redis", ClusteringChoice.Redis)) };
                    break;
                case "--parallelism":
                    options = options with { Parallelism = Integer(arg, Value(), 1, 128) };
                    break;
                case "--input":
                    options = options with { Input = NonEmpty(arg, Value()) };
                    break;
                case "--output":
                    options = options with { Output = NonEmpty(arg, Value()) };
                    break;
                case "--keep-running":
                    NoValue();
                    options = options with { KeepRunning = true };
                    break;
                case "-h" or "--help" or "-?":
                    NoValue();
                    options = options with { Help = true };
                    break;
                default:
                    throw new UsageException($"Unknown option '{args[i]}'.");
            }

            string Value()
            {
                if (inlineValue is not null)
                {
                    return inlineValue;
                }

                if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    throw new UsageException($"Option '{arg}' needs a value.");
                }

                return args[++i];
            }

            void NoValue()
            {
                if (inlineValue is not null)
                {
                    throw new UsageException($"Option '{arg}' takes no value.");
                }
            }
        }

        return options;
    }

    private static int Integer(string option, string value, int min, int max) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var result) && result >= min && result <= max
            ? result
            : throw new UsageException($"Option '{option}' is '{value}'; it must be a whole number from {min} to {max}.");

    private static T Choice<T>(string option, string value, params (string Name, T Value)[] choices) =>
        choices.FirstOrDefault(c => string.Equals(c.Name, value, StringComparison.OrdinalIgnoreCase)) is { Name: not null } match
            ? match.Value
            : throw new UsageException($"Option '{option}' is '{value}'; it must be {string.Join(" or ", choices.Select(c => c.Name))}.");

    private static string NonEmpty(string option, string value) =>
        string.IsNullOrWhiteSpace(value) ? throw new UsageException($"Option '{option}' needs a non-empty value.") : value;
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
}

/// <summary>The command line is wrong; the message says how.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>The AppHost cannot go on; the message says why (no stack trace needed).</summary>
internal sealed class AppHostException(string message) : Exception(message);
