using System.Globalization;
using Platform.Benchmarks.KeyedCount;

namespace Platform.Benchmarks;

internal static class Program
{
    private const string Usage = """
        Usage: dotnet run -c Release --project bench/Platform.Benchmarks -- keyed-count [options]

          --json PATH              write the results as JSON to PATH
          --records N              records in each timed job run (default 10,000,000)
          --parallelism P          parallelism of every operator (default 2)
          --keys K                 distinct keys (default 100,000)
          --runs R                 timed job runs; the median is reported (default 5)
          --warmup-runs W          full-size runs before the timed ones, verified, not counted (default 3;
                                   the JIT needs about 30 million records to tier up the hot path)
          --batch-size B           Platform:BatchSize of the silo (default: the platform's, 1,000)
          --channel-window W       Platform:ChannelWindow of the silo (default: the platform's, 8)
          --sink collect|discard   collect (default): the count function emits each key once, at its final count,
                                   into a CollectSink, and the run checks every key; discard: a DiscardingSink,
                                   and the run checks the records counted by the tasks only
          --naive-seconds S        time box of the grain-per-key baseline (default 10)
          --naive-calls N          call cap of the grain-per-key baseline (default 2,000,000)
          --naive-concurrency C    calls in flight in the grain-per-key baseline (default 256)
          --skip-naive             do not run the grain-per-key baseline
        """;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 1 : 0;
        }

        if (args[0] != "keyed-count")
        {
            Console.Error.WriteLine($"Unknown benchmark '{args[0]}'.");
            Console.Error.WriteLine(Usage);
            return 1;
        }

        KeyedCountSettings settings;
        try
        {
            settings = Parse(args.AsSpan(1));
        }
        catch (FormatException ex)
        {
            Console.Error.WriteLine(ex.Message);
            Console.Error.WriteLine(Usage);
            return 1;
        }

        return await new KeyedCountBenchmark(settings).RunAsync();
    }

    private static KeyedCountSettings Parse(ReadOnlySpan<string> args)
    {
        var settings = new KeyedCountSettings();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value(ReadOnlySpan<string> a) => i + 1 < a.Length ? a[++i] : throw new FormatException($"Option {name} needs a value.");
            settings = name switch
            {
                "--json" => settings with { JsonPath = Value(args) },
                "--records" => settings with { Records = Positive(name, ParseLong(name, Value(args))) },
                "--parallelism" => settings with { Parallelism = (int)Positive(name, ParseLong(name, Value(args))) },
                "--keys" => settings with { DistinctKeys = Positive(name, ParseLong(name, Value(args))) },
                "--runs" => settings with { Runs = (int)Positive(name, ParseLong(name, Value(args))) },
                "--warmup-runs" => settings with { WarmupRuns = (int)NonNegative(name, ParseLong(name, Value(args))) },
                "--batch-size" => settings with { BatchSize = (int)Positive(name, ParseLong(name, Value(args))) },
                "--channel-window" => settings with { ChannelWindow = (int)Positive(name, ParseLong(name, Value(args))) },
                "--sink" => Value(args) switch
                {
                    "collect" => settings with { DiscardSink = false },
                    "discard" => settings with { DiscardSink = true },
                    var other => throw new FormatException($"--sink is collect or discard, not '{other}'."),
                },
                "--naive-seconds" => settings with { NaiveSeconds = double.Parse(Value(args), CultureInfo.InvariantCulture) },
                "--naive-calls" => settings with { NaiveMaxCalls = Positive(name, ParseLong(name, Value(args))) },
                "--naive-concurrency" => settings with { NaiveConcurrency = (int)Positive(name, ParseLong(name, Value(args))) },
                "--skip-naive" => settings with { SkipNaive = true },
                _ => throw new FormatException($"Unknown option '{name}'."),
            };
        }

        return settings;
    }

    private static long ParseLong(string name, string value) =>
        long.TryParse(value.Replace("_", "").Replace(",", ""), NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed)
            ? parsed
            : throw new FormatException($"{name} expects a whole number, not '{value}'.");

    private static long NonNegative(string name, long value) =>
        value >= 0 ? value : throw new FormatException($"{name} must not be negative, not {value}.");

    private static long Positive(string name, long value) =>
        value > 0 ? value : throw new FormatException($"{name} must be positive, not {value}.");
}
