using System.Globalization;
using Platform.Benchmarks.Checkpointing;
using Platform.Benchmarks.ExactlyOnce;
using Platform.Benchmarks.KeyedCount;
using Platform.Benchmarks.Nexmark;
using Platform.Benchmarks.Savepoints;
using Platform.Benchmarks.StateBackends;

namespace Platform.Benchmarks;

internal static class Program
{
    private const string Usage = """
        Usage: dotnet run -c Release --project bench/Platform.Benchmarks -- keyed-count [options]
               dotnet run -c Release --project bench/Platform.Benchmarks -- state-backends [options]
               dotnet run -c Release --project bench/Platform.Benchmarks -- savepoints [options]
               dotnet run -c Release --project bench/Platform.Benchmarks -- checkpointing [options]
               dotnet run -c Release --project bench/Platform.Benchmarks -- exactly-once [options]
               dotnet run -c Release --project bench/Platform.Benchmarks -- nexmark [options]

        keyed-count options:
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

        state-backends options (heap against RocksDB in one run; see docs/benchmarks.md):
          --json PATH              write the results as JSON to PATH
          --parallelism P          parallelism of every operator (default 2)
          --keys K                 cost part: distinct keys of the keyed count (default 100,000)
          --heap-records N         cost part: records per heap job run (default 60,000,000: a few seconds, a few
                                   checkpoints, and enough for the JIT to tier up)
          --rocksdb-records N      cost part: records per RocksDB job run (default 24,000,000: a few seconds, several checkpoints)
          --records N              cost part: both of the above
          --runs R                 cost part: timed runs per backend, interleaved; medians are compared (default 3)
          --warmup-runs W          cost part: runs per backend before the timed ones, not counted (default 1)
          --checkpoint-interval-ms cost part: checkpoint interval (default 1,000)
          --big-keys K             big state: keys loaded into RocksDB (default 10,000,000: about 1.2 GB)
          --value-bytes B          big state: bytes of each key's value (default 100)
          --changed-fraction F     big state: fraction of the keys changed between the two checkpoints (default 0.01)
          --verify-keys N          big state: keys read back after the restore (default 20,000)
          --skip-cost              run the big-state part only
          --skip-big               run the cost part only
          --no-settle              big state: do not wait for RocksDB's compactions to finish after the load and
                                   after the first checkpoint (the second checkpoint then also uploads their output)
          --temp-dir PATH          where RocksDB, checkpoints and silo state go (default the system's temp directory;
                                   the default big state needs about 4 GB free); deleted at the end

        savepoints options (savepoint, restore and rescale of a big RocksDB state; see docs/benchmarks.md):
          --json PATH              write the results as JSON to PATH
          --keys K                 keys loaded into RocksDB (default 10,000,000: about 1.1 GiB of state; a quick
                                   smoke run: --keys 300000)
          --value-bytes B          bytes of each key's value (default 100)
          --parallelism P          parallelism of the first job, and of the sources throughout (default 2)
          --rescale-parallelism Q  parallelism of the keyed operator after the stop (default 4)
          --changed-fraction F     fraction of the keys updated across the stop: about half before it, the rest in the
                                   rescaled job (default 0.01)
          --update-seconds S       the updates are paced over S seconds so that records flow when the stop comes
                                   (default 4; the stop is requested once half of them are processed)
          --sample-keys N          keys read back and checked after each restore (default 20,000)
          --skip-native-restore    do not restore the native savepoint (nativeRestoreSeconds is then null)
          --no-settle              take the savepoints without waiting for RocksDB's compactions after the load
          --temp-dir PATH          where RocksDB, checkpoints, savepoints and silo state go (default the system's temp
                                   directory; the default run writes three savepoints of about 1.2 GB there
                                   besides the jobs' RocksDB files); deleted at the end

        checkpointing options (keyed count with exactly-once checkpoints every second against none, interleaved in one
        run, then the recovery after an injected task failure; see docs/benchmarks.md):
          --json PATH              write the results as JSON to PATH
          --records N              records per job run (default 40,000,000: several checkpoints per run)
          --keys K                 distinct keys, all held in state (default 1,000,000)
          --parallelism P          parallelism of every operator (default 2)
          --runs R                 timed runs per mode, interleaved; medians are compared (default 3)
          --warmup-runs W          runs per mode before the timed ones, verified, not counted (default 1)
          --checkpoint-interval-ms checkpoint interval (default 1,000)
          --backend heap|rocksdb   state backend (default heap)
          --skip-recovery          do not measure the recovery (recoverySeconds is then null)
          --temp-dir PATH          where checkpoints and silo state go (default the system's temp directory);
                                   deleted at the end

        exactly-once options (redis-server, PostgreSQL and 3 silo processes; a keyed count from Redis Streams into a
        FileSink and a PostgresSink while silos are SIGKILLed, checked against the ground truth; before that, without
        kills, the throughput of the exactly-once sinks against a discarding sink; see docs/benchmarks.md; exit code 3
        when an output is duplicated, missing or wrong, 2 when redis-server or PostgreSQL is not installed):
          --json PATH              write the results as JSON to PATH
          --records N              input records, fed into Redis while the job runs (default 200,000; a multiple of
                                   --streams); the last 5% wait until every kill is done
          --kills K                SIGKILLs of a random silo, each once a checkpoint completed since the previous one,
                                   one of them the job manager's silo; each killed silo is replaced (default 10)
          --streams S              Redis streams, one split each (default 5)
          --keys K                 keys (default 1,000), skewed: a tenth of the keys hold about half the records
          --parallelism P          parallelism of every operator (default 3)
          --rate R                 records per second fed during the chaos run (default 2,000)
          --checkpoint-interval-ms exactly-once checkpoint interval (default 1,000)
          --throughput-runs R      runs per mode of the throughput comparison, interleaved; medians compared (default 2)
          --skip-throughput        no throughput comparison (throughputRatio is then null)
          --seed N                 seed of the kills' choice of silos and moments (default 12)
          --timeout-seconds T      how long any one wait may take (a job run, a recovery, a silo start; default 900,
                                   above the 10-minute checkpoint timeout that ends a checkpoint whose trigger was lost)
          --temp-dir PATH          where the servers, checkpoints, output and silo logs go (default the system's temp
                                   directory); deleted at the end unless the run fails or --keep-temp is given
          --keep-temp              keep that directory

        nexmark options (Nexmark q0-q5, q7, q8 with exactly-once checkpoints into the exactly-once file sink, each verified
        against a reference implementation; see docs/benchmarks.md):
          --json PATH              write the results as JSON to PATH
          --events N               events per timed query run (default 10,000,000)
          --queries Q,Q,...        the queries to run (default q0,q1,q2,q3,q4,q5,q7,q8)
          --backends B,B           heap, rocksdb or both (default heap,rocksdb)
          --parallelism P          parallelism of every operator (default 2)
          --checkpoint-interval-ms exactly-once checkpoint interval (default 1,000)
          --event-rate R           events per second of event time (Nexmark's first-event rate; default 10,000,000)
          --warmup-events W        events of an untimed, verified run before each timed one (default 1,000,000; 0: none)
          --temp-dir PATH          where RocksDB, checkpoints and results go (default the system's temp directory;
                                   q0 at 10,000,000 events writes about 1.5 GB of results); deleted at the end
        """;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 1 : 0;
        }

        try
        {
            switch (args[0])
            {
                case "keyed-count":
                    return await new KeyedCountBenchmark(Parse(args.AsSpan(1))).RunAsync();
                case "state-backends":
                    var settings = ParseStateBackends(args.AsSpan(1)) with
                    {
                        CommandLine = CommandLine(args),
                    };
                    return await new StateBackendsBenchmark(settings).RunAsync();
                case "savepoints":
                    return await new SavepointsBenchmark(ParseSavepoints(args.AsSpan(1)) with { CommandLine = CommandLine(args) }).RunAsync();
                case "checkpointing":
                    return await new CheckpointingBenchmark(ParseCheckpointing(args.AsSpan(1)) with { CommandLine = CommandLine(args) }).RunAsync();
                case "exactly-once":
                    return await new ExactlyOnceBenchmark(ParseExactlyOnce(args.AsSpan(1)) with { CommandLine = CommandLine(args) }).RunAsync();
                case "nexmark":
                    return await new NexmarkBenchmark(ParseNexmark(args.AsSpan(1)) with { CommandLine = CommandLine(args) }).RunAsync();
                default:
                    Console.Error.WriteLine($"Unknown benchmark '{args[0]}'.");
                    Console.Error.WriteLine(Usage);
                    return 1;
            }
        }
        catch (FormatException ex)
        {
            Console.Error.WriteLine(ex.Message);
            Console.Error.WriteLine(Usage);
            return 1;
        }
    }

    private static StateBackendsSettings ParseStateBackends(ReadOnlySpan<string> args)
    {
        var settings = new StateBackendsSettings();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value(ReadOnlySpan<string> a) => i + 1 < a.Length ? a[++i] : throw new FormatException($"Option {name} needs a value.");
            settings = name switch
            {
                "--json" => settings with { JsonPath = Value(args) },
                "--parallelism" => settings with { Parallelism = (int)Positive(name, ParseLong(name, Value(args))) },
                "--keys" => settings with { Keys = Positive(name, ParseLong(name, Value(args))) },
                "--heap-records" => settings with { HeapRecords = Positive(name, ParseLong(name, Value(args))) },
                "--rocksdb-records" => settings with { RocksDbRecords = Positive(name, ParseLong(name, Value(args))) },
                "--records" => BothRecords(settings, Positive(name, ParseLong(name, Value(args)))),
                "--runs" => settings with { Runs = (int)Positive(name, ParseLong(name, Value(args))) },
                "--warmup-runs" => settings with { WarmupRuns = (int)NonNegative(name, ParseLong(name, Value(args))) },
                "--checkpoint-interval-ms" => settings with { CheckpointInterval = TimeSpan.FromMilliseconds(Positive(name, ParseLong(name, Value(args)))) },
                "--big-keys" => settings with { BigKeys = Positive(name, ParseLong(name, Value(args))) },
                "--value-bytes" => settings with { ValueBytes = (int)Positive(name, ParseLong(name, Value(args))) },
                "--changed-fraction" => settings with { ChangedFraction = Fraction(name, Value(args)) },
                "--verify-keys" => settings with { VerifyKeys = Positive(name, ParseLong(name, Value(args))) },
                "--skip-cost" => settings with { SkipCost = true },
                "--skip-big" => settings with { SkipBig = true },
                "--no-settle" => settings with { NoSettle = true },
                "--temp-dir" => settings with { TempDirectory = Value(args) },
                _ => throw new FormatException($"Unknown option '{name}'."),
            };
        }

        return settings.SkipCost && settings.SkipBig
            ? throw new FormatException("--skip-cost and --skip-big together leave nothing to run.")
            : settings;
    }

    private static string CommandLine(string[] args) => "dotnet run -c Release --project bench/Platform.Benchmarks -- " + string.Join(' ', args);

    private static SavepointsSettings ParseSavepoints(ReadOnlySpan<string> args)
    {
        var settings = new SavepointsSettings();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value(ReadOnlySpan<string> a) => i + 1 < a.Length ? a[++i] : throw new FormatException($"Option {name} needs a value.");
            settings = name switch
            {
                "--json" => settings with { JsonPath = Value(args) },
                "--keys" => settings with { Keys = Positive(name, ParseLong(name, Value(args))) },
                "--value-bytes" => settings with { ValueBytes = (int)Positive(name, ParseLong(name, Value(args))) },
                "--parallelism" => settings with { Parallelism = (int)Positive(name, ParseLong(name, Value(args))) },
                "--rescale-parallelism" => settings with { RescaleParallelism = (int)Positive(name, ParseLong(name, Value(args))) },
                "--changed-fraction" => settings with { ChangedFraction = Fraction(name, Value(args)) },
                "--update-seconds" => settings with { UpdateSeconds = PositiveSeconds(name, Value(args)) },
                "--sample-keys" => settings with { SampleKeys = Positive(name, ParseLong(name, Value(args))) },
                "--skip-native-restore" => settings with { SkipNativeRestore = true },
                "--no-settle" => settings with { NoSettle = true },
                "--temp-dir" => settings with { TempDirectory = Value(args) },
                _ => throw new FormatException($"Unknown option '{name}'."),
            };
        }

        return settings;
    }

    private static CheckpointingBenchSettings ParseCheckpointing(ReadOnlySpan<string> args)
    {
        var settings = new CheckpointingBenchSettings();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value(ReadOnlySpan<string> a) => i + 1 < a.Length ? a[++i] : throw new FormatException($"Option {name} needs a value.");
            settings = name switch
            {
                "--json" => settings with { JsonPath = Value(args) },
                "--records" => settings with { Records = Positive(name, ParseLong(name, Value(args))) },
                "--keys" => settings with { Keys = Positive(name, ParseLong(name, Value(args))) },
                "--parallelism" => settings with { Parallelism = (int)Positive(name, ParseLong(name, Value(args))) },
                "--runs" => settings with { Runs = (int)Positive(name, ParseLong(name, Value(args))) },
                "--warmup-runs" => settings with { WarmupRuns = (int)NonNegative(name, ParseLong(name, Value(args))) },
                "--checkpoint-interval-ms" => settings with { CheckpointInterval = TimeSpan.FromMilliseconds(Positive(name, ParseLong(name, Value(args)))) },
                "--backend" => Value(args) switch
                {
                    "heap" => settings with { Backend = Platform.State.StateBackendKind.Heap },
                    "rocksdb" => settings with { Backend = Platform.State.StateBackendKind.RocksDb },
                    var other => throw new FormatException($"--backend is heap or rocksdb, not '{other}'."),
                },
                "--skip-recovery" => settings with { SkipRecovery = true },
                "--temp-dir" => settings with { TempDirectory = Value(args) },
                _ => throw new FormatException($"Unknown option '{name}'."),
            };
        }

        return settings;
    }

    private static NexmarkSettings ParseNexmark(ReadOnlySpan<string> args)
    {
        var settings = new NexmarkSettings();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value(ReadOnlySpan<string> a) => i + 1 < a.Length ? a[++i] : throw new FormatException($"Option {name} needs a value.");
            settings = name switch
            {
                "--json" => settings with { JsonPath = Value(args) },
                "--events" => settings with { Events = Positive(name, ParseLong(name, Value(args))) },
                "--queries" => settings with { Queries = ParseQueries(Value(args)) },
                "--backends" => settings with { Backends = ParseBackends(Value(args)) },
                "--parallelism" => settings with { Parallelism = (int)Positive(name, ParseLong(name, Value(args))) },
                "--checkpoint-interval-ms" => settings with { CheckpointInterval = TimeSpan.FromMilliseconds(Positive(name, ParseLong(name, Value(args)))) },
                "--event-rate" => settings with { EventRate = Positive(name, ParseLong(name, Value(args))) },
                "--warmup-events" => settings with { WarmupEvents = NonNegative(name, ParseLong(name, Value(args))) },
                "--temp-dir" => settings with { TempDirectory = Value(args) },
                _ => throw new FormatException($"Unknown option '{name}'."),
            };
        }

        return settings;

        static string[] ParseQueries(string value)
        {
            var queries = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var unknown = queries.Where(q => !Platform.Nexmark.NexmarkQueries.Names.Contains(q)).ToList();
            return unknown.Count == 0 && queries.Length > 0
                ? queries
                : throw new FormatException($"--queries: {(queries.Length == 0 ? "no query given" : $"unknown {string.Join(", ", unknown)}")}; choose from {string.Join(",", Platform.Nexmark.NexmarkQueries.Names)}.");
        }

        static Platform.State.StateBackendKind[] ParseBackends(string value) =>
            [.. value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(b => b switch
            {
                "heap" => Platform.State.StateBackendKind.Heap,
                "rocksdb" => Platform.State.StateBackendKind.RocksDb,
                _ => throw new FormatException($"--backends: '{b}' is not a state backend; use heap, rocksdb or heap,rocksdb."),
            })];
    }

    private static ExactlyOnceSettings ParseExactlyOnce(ReadOnlySpan<string> args)
    {
        var settings = new ExactlyOnceSettings();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value(ReadOnlySpan<string> a) => i + 1 < a.Length ? a[++i] : throw new FormatException($"Option {name} needs a value.");
            settings = name switch
            {
                "--json" => settings with { JsonPath = Value(args) },
                "--records" => settings with { Records = Positive(name, ParseLong(name, Value(args))) },
                "--kills" => settings with { Kills = (int)NonNegative(name, ParseLong(name, Value(args))) },
                "--streams" => settings with { Streams = (int)Positive(name, ParseLong(name, Value(args))) },
                "--keys" => settings with { Keys = (int)Positive(name, ParseLong(name, Value(args))) },
                "--parallelism" => settings with { Parallelism = (int)Positive(name, ParseLong(name, Value(args))) },
                "--rate" => settings with { Rate = Positive(name, ParseLong(name, Value(args))) },
                "--checkpoint-interval-ms" => settings with { CheckpointInterval = TimeSpan.FromMilliseconds(Positive(name, ParseLong(name, Value(args)))) },
                "--throughput-runs" => settings with { ThroughputRuns = (int)Positive(name, ParseLong(name, Value(args))) },
                "--skip-throughput" => settings with { SkipThroughput = true },
                "--seed" => settings with { Seed = (int)ParseLong(name, Value(args)) },
                "--timeout-seconds" => settings with { Timeout = TimeSpan.FromSeconds(Positive(name, ParseLong(name, Value(args)))) },
                "--temp-dir" => settings with { TempDirectory = Value(args) },
                "--keep-temp" => settings with { KeepTemp = true },
                _ => throw new FormatException($"Unknown option '{name}'."),
            };
        }

        return settings.Records % settings.Streams != 0
            ? throw new FormatException($"--records ({settings.Records:N0}) must be a multiple of --streams ({settings.Streams}): every stream ends after the same number of entries.")
            : settings;
    }

    private static double PositiveSeconds(string name, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) && parsed > 0
            ? parsed
            : throw new FormatException($"{name} expects a positive number of seconds, not '{value}'.");

    private static StateBackendsSettings BothRecords(StateBackendsSettings settings, long records) =>
        settings with { HeapRecords = records, RocksDbRecords = records };

    private static double Fraction(string name, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) && parsed > 0 && parsed <= 1
            ? parsed
            : throw new FormatException($"{name} expects a fraction above 0 and at most 1, not '{value}'.");

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
