using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Platform.Benchmarks.StateBackends;
using Platform.Checkpointing;
using Platform.Client;
using Platform.Connectors;
using Platform.Nexmark;
using Platform.Runtime;
using Platform.State;
using Platform.Testing;

namespace Platform.Benchmarks.Nexmark;

/// <summary>Settings of the <c>nexmark</c> benchmark.</summary>
internal sealed record NexmarkSettings
{
    public string? JsonPath { get; init; }

    /// <summary>Events per query run (the issue asks for at least 10,000,000).</summary>
    public long Events { get; init; } = 10_000_000;

    public IReadOnlyList<string> Queries { get; init; } = NexmarkQueries.Names;

    public IReadOnlyList<StateBackendKind> Backends { get; init; } = [StateBackendKind.Heap, StateBackendKind.RocksDb];

    public int Parallelism { get; init; } = 2;

    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Events per second of event time (Nexmark's first-event rate; Flink's runs use 10,000,000).</summary>
    public long EventRate { get; init; } = 10_000_000;

    /// <summary>Events of the untimed warm-up run of each query on each backend, so that the JIT has tiered up.</summary>
    public long WarmupEvents { get; init; } = 1_000_000;

    public string? TempDirectory { get; init; }

    public string CommandLine { get; init; } = "";
}

/// <summary>
/// Nexmark q0 .. q8 (no q6) on one in-process silo, each on the heap and on RocksDB, with exactly-once checkpoints every
/// second and the results written through the exactly-once file sink. Measured: events per CPU-second of the process
/// (the silo's work: the benchmark thread only waits meanwhile), the figure Flink's Nexmark results give per core.
/// Every run is verified: the job finished without a restart, the sources read every event, and the multiset of
/// committed result lines equals the reference implementation's (<see cref="NexmarkReference"/>, fingerprinted).
/// </summary>
internal sealed class NexmarkBenchmark(NexmarkSettings settings)
{
    /// <summary>Flink 2.x's published Nexmark throughput per core (events per core-second; 30 s checkpoints, exactly-once).</summary>
    private static readonly Dictionary<string, double> FlinkPerCore = new()
    {
        ["q0"] = 379_000, ["q1"] = 395_000, ["q2"] = 414_000, ["q3"] = 219_000, ["q5"] = 75_000, ["q7"] = 23_000, ["q8"] = 162_000,
    };

    private readonly string _root = Path.Combine(settings.TempDirectory ?? Path.GetTempPath(), $"platform-nexmark-{Guid.NewGuid():N}");

    public async Task<int> RunAsync()
    {
        Directory.CreateDirectory(_root);
        try
        {
            return await RunInRootAsync();
        }
        finally
        {
            try
            {
                Directory.Delete(_root, recursive: true);
            }
            catch (IOException ex)
            {
                Console.Error.WriteLine($"Could not delete {_root}: {ex.Message}");
            }
        }
    }

    private async Task<int> RunInRootAsync()
    {
        Console.WriteLine($"nexmark: {settings.Events:N0} events per run, queries {string.Join(", ", settings.Queries)}, " +
                          $"backends {string.Join(", ", settings.Backends.Select(Name))}, parallelism {settings.Parallelism}, " +
                          $"exactly-once checkpoints every {settings.CheckpointInterval.TotalSeconds:G} s, event rate {settings.EventRate:N0}/s");
        await using var silo = await BenchSilo.StartAsync(
            batchSize: null,
            channelWindow: null,
            configure: o =>
            {
                o.StateDirectory = Path.Combine(_root, "state");
                o.CheckpointDirectory = Path.Combine(_root, "checkpoints");
                o.RocksDb.LocalDirectory = Path.Combine(_root, "rocksdb");
            });
        var platform = new PlatformClient(silo.Client);

        var results = new JsonObject();
        var failures = new List<string>();
        foreach (var query in settings.Queries)
        {
            var clock = Stopwatch.StartNew();
            var expected = LinesFingerprint.Of(NexmarkReference.ExpectedLines(query, Events(settings.Events)));
            Console.WriteLine($"{query}: reference {expected.Count:N0} result line(s) in {clock.Elapsed.TotalSeconds:F1} s");
            var warmupExpected = LinesFingerprint.Of(NexmarkReference.ExpectedLines(query, Events(settings.WarmupEvents)));
            var perBackend = new JsonObject();
            foreach (var backend in settings.Backends)
            {
                if (settings.WarmupEvents > 0)
                {
                    await RunQueryAsync(platform, query, backend, settings.WarmupEvents, warmupExpected, "warm-up");
                }

                var run = await RunQueryAsync(platform, query, backend, settings.Events, expected, "timed");
                if (!run.Verified)
                {
                    failures.Add($"{query} on {Name(backend)}: {run.Message}");
                }

                perBackend[Name(backend)] = Json(run, FlinkPerCore.GetValueOrDefault(query));
            }

            perBackend["referenceResultLines"] = expected.Count;
            perBackend["flinkEventsPerCoreSecond"] = FlinkPerCore.TryGetValue(query, out var flink) ? flink : null;
            results[query] = perBackend;
        }

        var json = new JsonObject
        {
            ["benchmark"] = "nexmark",
            ["commandLine"] = settings.CommandLine,
            ["date"] = DateTimeOffset.UtcNow.ToString("O"),
            ["machine"] = BenchEnvironment.MachineJson(),
            ["events"] = settings.Events,
            ["parallelism"] = settings.Parallelism,
            ["checkpointIntervalMs"] = settings.CheckpointInterval.TotalMilliseconds,
            ["checkpointingMode"] = "ExactlyOnce",
            ["eventRate"] = settings.EventRate,
            ["sink"] = "FileSink (exactly-once, JSON lines)",
            ["queries"] = results,
            ["failures"] = new JsonArray([.. failures.Select(f => JsonValue.Create(f))]),
        };
        if (settings.JsonPath is { } path)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            await File.WriteAllTextAsync(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"Wrote {path}");
        }

        foreach (var failure in failures)
        {
            Console.Error.WriteLine($"FAILED {failure}");
        }

        return failures.Count == 0 ? 0 : 1;
    }

    private async Task<QueryRun> RunQueryAsync(PlatformClient platform, string query, StateBackendKind backend, long events, LinesFingerprint expected, string label)
    {
        var output = Path.Combine(_root, "output", $"{query}-{Name(backend)}-{label}");
        var job = NexmarkQueries.Build(new NexmarkJobSettings
        {
            Query = query,
            Events = events,
            Config = new NexmarkConfig { EventsPerSecond = settings.EventRate },
            OutputDirectory = output,
            Parallelism = settings.Parallelism,
            StateBackend = backend,
            Checkpointing = new CheckpointingSettings
            {
                Interval = settings.CheckpointInterval,
                Mode = CheckpointingMode.ExactlyOnce,
                Storage = CheckpointStorageKind.FileSystem,
                Directory = Path.Combine(_root, "checkpoints"),
            },
        });

        var (jobId, status, wallSeconds, cpuSeconds, others) = await BenchEnvironment.RunJobAsync(platform, job, TimeSpan.FromMinutes(30));
        var stats = await platform.GetCheckpointStatisticsAsync(jobId);

        var (verified, message, lines) = Verify(query, status, events, output, expected);
        var run = new QueryRun(events, wallSeconds, cpuSeconds, others, stats.Completed, stats.Failed, lines, verified, message);
        Console.WriteLine($"  {query} {Name(backend),-7} {label,-7} {run.EventsPerSecond,11:N0} events/s {run.EventsPerCpuSecond,11:N0} events/CPU-s " +
                          $"({run.WallSeconds:F2} s wall, {run.CpuSeconds:F2} CPU-s, {run.CheckpointsCompleted} checkpoint(s)" +
                          (run.CheckpointsFailed > 0 ? $", {run.CheckpointsFailed} failed" : "") +
                          (others is { } o && o > 0.05 * run.WallSeconds ? $", other processes {o:F2} CPU-s" : "") +
                          $"; {message})");
        Directory.Delete(output, recursive: true);
        return run;
    }

    private static (bool Verified, string Message, long Lines) Verify(string query, JobStatusInfo status, long events, string output, LinesFingerprint expected)
    {
        if (status.State != JobState.Finished)
        {
            return (false, $"job ended {status.State}: {status.Failure?.Describe()}", 0);
        }

        if (status.Restarts > 0)
        {
            return (false, $"job restarted {status.Restarts} time(s): {status.RestartCauses.FirstOrDefault()?.Describe()}", 0);
        }

        var read = status.Tasks.Where(t => t.OperatorUids.Contains("nexmark-events")).Sum(t => t.RecordsIn);
        if (read != events)
        {
            return (false, $"the sources read {read:N0} events; expected {events:N0}", 0);
        }

        var lines = FileSink.CommittedFiles(output).SelectMany(File.ReadLines);
        LinesFingerprint actual;
        try
        {
            actual = LinesFingerprint.Of(NexmarkReference.FinalView(query, lines));
        }
        catch (InvalidDataException ex)
        {
            return (false, ex.Message, 0);
        }

        return actual == expected
            ? (true, $"verified: {actual.Count:N0} result line(s) equal the reference's", actual.Count)
            : (false, $"{actual.Count:N0} result line(s) differ from the reference's {expected.Count:N0} (fingerprints {actual} and {expected})", actual.Count);
    }

    private IEnumerable<NexmarkEvent> Events(long count)
    {
        var config = new NexmarkConfig { EventsPerSecond = settings.EventRate };
        for (long n = 0; n < count; n++)
        {
            yield return NexmarkGenerator.Generate(n, config);
        }
    }

    private static JsonObject Json(QueryRun run, double flinkPerCore) => new()
    {
        ["eventsPerCpuSecond"] = Math.Round(run.EventsPerCpuSecond),
        ["eventsPerSecond"] = Math.Round(run.EventsPerSecond),
        ["ratioToFlinkPerCore"] = flinkPerCore > 0 ? Math.Round(run.EventsPerCpuSecond / flinkPerCore, 3) : null,
        ["events"] = run.Events,
        ["wallSeconds"] = Math.Round(run.WallSeconds, 3),
        ["cpuSeconds"] = Math.Round(run.CpuSeconds, 3),
        ["otherProcessesCpuSeconds"] = run.OtherCpuSeconds is { } o ? Math.Round(o, 3) : null,
        ["checkpointsCompleted"] = run.CheckpointsCompleted,
        ["checkpointsFailed"] = run.CheckpointsFailed,
        ["resultLines"] = run.ResultLines,
        ["verified"] = run.Verified,
        ["verification"] = run.Message,
    };

    private static string Name(StateBackendKind backend) => backend == StateBackendKind.Heap ? "heap" : "rocksdb";

    private sealed record QueryRun(
        long Events,
        double WallSeconds,
        double CpuSeconds,
        double? OtherCpuSeconds,
        long CheckpointsCompleted,
        long CheckpointsFailed,
        long ResultLines,
        bool Verified,
        string Message)
    {
        public double EventsPerSecond => Events / WallSeconds;

        public double EventsPerCpuSecond => Events / CpuSeconds;
    }
}
