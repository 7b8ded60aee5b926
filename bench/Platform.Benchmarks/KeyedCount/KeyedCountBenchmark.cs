using System.Diagnostics;
using System.Reflection;
using System.Runtime;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Platform.Client;
using Platform.Connectors;
using Platform.Graph;
using Platform.Runtime;

namespace Platform.Benchmarks.KeyedCount;

/// <summary>Settings of the keyed-count benchmark.</summary>
internal sealed record KeyedCountSettings
{
    public string? JsonPath { get; init; }
    public long Records { get; init; } = 10_000_000;
    public int Parallelism { get; init; } = 2;
    public long DistinctKeys { get; init; } = 100_000;
    public int Runs { get; init; } = 5;
    public int WarmupRuns { get; init; } = 3;
    public int? BatchSize { get; init; }
    public int? ChannelWindow { get; init; }
    public bool DiscardSink { get; init; }
    public double NaiveSeconds { get; init; } = 10;
    public long NaiveMaxCalls { get; init; } = 2_000_000;
    public int NaiveConcurrency { get; init; } = 256;
    public bool SkipNaive { get; init; }
}

/// <summary>
/// Source (100,000 spread 64-bit keys) → KeyBy(identity) → count in ValueState&lt;long&gt; → sink, on one in-process silo,
/// against a single-threaded Dictionary loop and a grain-per-key design.
/// </summary>
internal sealed class KeyedCountBenchmark(KeyedCountSettings settings)
{
    private const string SourceUid = "keys";
    private const string CountUid = "count";
    private const string SinkUid = "final-counts";

    public async Task<int> RunAsync()
    {
        Console.WriteLine($"keyed-count: {settings.Records:N0} records, {settings.DistinctKeys:N0} keys, parallelism {settings.Parallelism}, " +
                          $"{settings.Runs} timed run(s), sink {(settings.DiscardSink ? "discarding" : "collect (final counts only)")}");
        Console.WriteLine($"machine: {Environment.ProcessorCount} logical CPUs ({CpuModel()}), {RuntimeInformation.OSDescription}, " +
                          $"{RuntimeInformation.FrameworkDescription}, server GC {GCSettings.IsServerGC}");

        // Baseline 1, in a quiet process before the silo starts: one thread, one Dictionary.
        var raw = RawLoop();
        Console.WriteLine($"raw loop:      {raw.RecordsPerSecond,14:N0} records/s  (Dictionary<long,long>, 1 thread, best of 3)");

        var startup = Stopwatch.StartNew();
        await using var silo = await BenchSilo.StartAsync(settings.BatchSize, settings.ChannelWindow);
        Console.WriteLine($"silo started in {startup.Elapsed.TotalSeconds:F1} s (batch size {silo.Options.BatchSize}, channel window {silo.Options.ChannelWindow})");
        var platform = new PlatformClient(silo.Client);

        // Warm-up: full-size runs, verified but not counted. The JIT needs about 30 million records to finish tiering
        // up the hot path (tier 0, instrumented tier, tier 1 with PGO); a run on cold code is reported apart.
        var warmups = new List<JobRun>();
        for (var i = 0; i < settings.WarmupRuns; i++)
        {
            var warmup = await RunJobAsync(platform, settings.Records);
            warmups.Add(warmup);
            Console.WriteLine($"warm-up {i + 1}:     {warmup.RecordsPerSecond,14:N0} records/s, {warmup.RecordsPerCpuSecond,14:N0} records/CPU-s ({warmup.Verification})");
            if (!warmup.Verified)
            {
                Console.Error.WriteLine($"Warm-up run {i + 1} failed verification: {warmup.Verification}");
                return 2;
            }
        }

        var runs = new List<JobRun>();
        for (var i = 0; i < settings.Runs; i++)
        {
            var run = await RunJobAsync(platform, settings.Records);
            runs.Add(run);
            Console.WriteLine($"job run {i + 1}:     {run.RecordsPerSecond,14:N0} records/s, {run.RecordsPerCpuSecond,14:N0} records/CPU-s " +
                              $"({run.WallSeconds:F2} s wall, {run.CpuSeconds:F2} s CPU, {run.AllocatedBytesPerRecord:F1} B/record allocated, " +
                              $"GC {run.Gen0}/{run.Gen1}/{run.Gen2}{run.OthersNote}; {run.Verification})");
            if (!run.Verified)
            {
                Console.Error.WriteLine($"Run {i + 1} failed verification: {run.Verification}");
                return 2;
            }
        }

        // The median run by throughput stands for the job (the machine is noisy; every run is in the JSON).
        var median = runs.OrderBy(r => r.RecordsPerSecond).ElementAt(runs.Count / 2);

        NaiveResult? naive = null;
        if (!settings.SkipNaive)
        {
            naive = await NaiveGrainsAsync(silo.Client);
            Console.WriteLine($"naive grains:  {naive.RecordsPerSecond,14:N0} records/s, {naive.RecordsPerCpuSecond,14:N0} records/CPU-s " +
                              $"({naive.Calls:N0} calls in {naive.WallSeconds:F1} s, {settings.NaiveConcurrency} in flight, after activating " +
                              $"{naive.ActivatedKeys:N0} grains at {naive.ActivationCallsPerSecond:N0} calls/s" +
                              (naive.OthersCpuSeconds is { } o && o > 0.05 * naive.WallSeconds ? $", other processes used {o:F2} CPU-s meanwhile" : "") +
                              $"; {(naive.Verified ? "all increments counted" : "LOST INCREMENTS")})");
        }

        var vsRaw = median.RecordsPerSecond / raw.RecordsPerSecond;
        var vsNaive = naive is null ? (double?)null : median.RecordsPerSecond / naive.RecordsPerSecond;
        Console.WriteLine();
        Console.WriteLine($"RESULT  {median.RecordsPerSecond:N0} records/s, {median.RecordsPerCpuSecond:N0} records/CPU-s (median of {runs.Count}); " +
                          $"target 2,000,000 records/CPU-s: {(median.RecordsPerCpuSecond >= 2_000_000 ? "met" : "NOT met")}");
        Console.WriteLine($"        vs raw loop {vsRaw:P1} of its throughput; vs naive grain-per-key {vsNaive:N1}x");

        if (settings.JsonPath is { } path)
        {
            var json = ToJson(silo, raw, median, runs, warmups, naive, vsRaw, vsNaive);
            var full = Path.GetFullPath(path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            await File.WriteAllTextAsync(full, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            Console.WriteLine($"JSON written to {full}");
        }

        return naive is { Verified: false } ? 2 : 0;
    }

    private async Task<JobRun> RunJobAsync(PlatformClient platform, long records)
    {
        var job = new StreamJobBuilder("bench-keyed-count") { DefaultParallelism = settings.Parallelism };
        var counted = job.AddSource(new SpreadKeySource { Count = records, DistinctKeys = settings.DistinctKeys }, "keys").Uid(SourceUid)
            .KeyBy(new IdentityKey())
            .Process(new CountPerKey { Records = records, DistinctKeys = settings.DistinctKeys }, "count").Uid(CountUid);
        if (settings.DiscardSink)
        {
            counted.SinkTo(new DiscardingSink<long>(), "discard").Uid(SinkUid);
        }
        else
        {
            counted.SinkTo(new CollectSink<long>(), "final-counts").Uid(SinkUid);
        }

        // Settle the heap so that one run's garbage is not collected on the next run's clock.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        var gen0 = GC.CollectionCount(0);
        var gen1 = GC.CollectionCount(1);
        var gen2 = GC.CollectionCount(2);
        var allocated = GC.GetTotalAllocatedBytes(precise: false);
        var machine = MachineBusySeconds();
        var cpu = CpuTime();
        var wall = Stopwatch.StartNew();
        var jobId = await platform.SubmitAsync(job);
        var status = await platform.WaitForCompletionAsync(jobId, TimeSpan.FromMinutes(30));
        wall.Stop();
        var cpuSeconds = (CpuTime() - cpu).TotalSeconds;
        var othersCpuSeconds = machine is { } m && MachineBusySeconds() is { } m2 ? Math.Max(0, m2 - m - cpuSeconds) : (double?)null;
        var allocatedBytes = GC.GetTotalAllocatedBytes(precise: false) - allocated;

        var verification = await VerifyAsync(platform, jobId, status, records);
        return new JobRun(
            records,
            wall.Elapsed.TotalSeconds,
            cpuSeconds,
            (double)allocatedBytes / records,
            GC.CollectionCount(0) - gen0,
            GC.CollectionCount(1) - gen1,
            GC.CollectionCount(2) - gen2,
            othersCpuSeconds,
            verification.Ok,
            verification.Message);
    }

    private async Task<(bool Ok, string Message)> VerifyAsync(PlatformClient platform, string jobId, JobStatusInfo status, long records)
    {
        if (status.State != JobState.Finished)
        {
            return (false, $"job ended {status.State}: {status.Failure?.Describe()}");
        }

        var sourceRead = status.Tasks.Where(t => t.OperatorUids.Contains(SourceUid)).Sum(t => t.RecordsIn);
        var countedIn = status.Tasks.Where(t => t.OperatorUids.Contains(CountUid)).Sum(t => t.RecordsIn);
        if (sourceRead != records || countedIn != records)
        {
            return (false, $"sources read {sourceRead:N0} and the counting tasks consumed {countedIn:N0} records; expected {records:N0}");
        }

        if (settings.DiscardSink)
        {
            return (true, $"FINISHED, {countedIn:N0} records counted");
        }

        // Each key is emitted once when its count reaches the formula's value, and again if it ever exceeds it.
        var emitted = await platform.GetCollectedAsync<long>(jobId, SinkUid);
        var expectedKeys = Math.Min(records, settings.DistinctKeys);
        var seen = new HashSet<long>();
        foreach (var key in emitted)
        {
            var index = BenchKeys.IndexOf(key);
            if (index < 0 || index >= expectedKeys)
            {
                return (false, $"unexpected key {key} in the output");
            }

            if (!seen.Add(key))
            {
                return (false, $"key #{index} was counted more than {BenchKeys.ExpectedCount(index, records, settings.DistinctKeys)} times");
            }
        }

        if (seen.Count != expectedKeys)
        {
            return (false, $"only {seen.Count:N0} of {expectedKeys:N0} keys reached their expected count");
        }

        return (true, $"FINISHED, all {expectedKeys:N0} keys counted exactly, sum {records:N0}");
    }

    private RawResult RawLoop()
    {
        var best = double.MaxValue;
        long checksum = 0;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var counts = new Dictionary<long, long>();
            var distinct = settings.DistinctKeys;
            var wall = Stopwatch.StartNew();
            for (long s = 0; s < settings.Records; s++)
            {
                ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(counts, BenchKeys.KeyOf(s, distinct), out _);
                slot++;
            }

            wall.Stop();
            best = Math.Min(best, wall.Elapsed.TotalSeconds);
            checksum = counts.Values.Sum();
            if (checksum != settings.Records || counts.Count != Math.Min(settings.Records, distinct))
            {
                throw new InvalidOperationException($"Raw loop counted {checksum} records over {counts.Count} keys.");
            }
        }

        return new RawResult(settings.Records / best, best);
    }

    private async Task<NaiveResult> NaiveGrainsAsync(IClusterClient client)
    {
        var keys = Math.Min(settings.DistinctKeys, settings.Records);

        // Activation pass: one call to every key's grain (the first records of the stream), so that the timed part
        // measures the steady state, which is the naive design's best case.
        var before = CounterGrain.Total;
        var activation = Stopwatch.StartNew();
        await CallsAsync(client, 0, keys, TimeSpan.MaxValue);
        activation.Stop();

        var machine = MachineBusySeconds();
        var cpu = CpuTime();
        var wall = Stopwatch.StartNew();
        var calls = await CallsAsync(client, keys, settings.NaiveMaxCalls, TimeSpan.FromSeconds(settings.NaiveSeconds));
        wall.Stop();
        var cpuSeconds = (CpuTime() - cpu).TotalSeconds;
        var othersCpuSeconds = machine is { } m && MachineBusySeconds() is { } m2 ? Math.Max(0, m2 - m - cpuSeconds) : (double?)null;
        var verified = CounterGrain.Total - before == keys + calls;
        return new NaiveResult(calls, wall.Elapsed.TotalSeconds, cpuSeconds, keys, keys / activation.Elapsed.TotalSeconds, othersCpuSeconds, verified);
    }

    /// <summary>Calls Increment on the grain of each record's key, records first .. first+count-1, with a bounded number in flight.</summary>
    private async Task<long> CallsAsync(IClusterClient client, long first, long count, TimeSpan timeBox)
    {
        var next = first - 1;
        var end = first + count;
        var done = 0L;
        var deadline = timeBox == TimeSpan.MaxValue ? long.MaxValue : Stopwatch.GetTimestamp() + (long)(timeBox.TotalSeconds * Stopwatch.Frequency);
        var distinct = settings.DistinctKeys;

        async Task Worker()
        {
            while (true)
            {
                var sequence = Interlocked.Increment(ref next);
                if (sequence >= end || Stopwatch.GetTimestamp() >= deadline)
                {
                    return;
                }

                await client.GetGrain<ICounterGrain>(BenchKeys.KeyOf(sequence, distinct)).Increment();
                Interlocked.Increment(ref done);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, settings.NaiveConcurrency).Select(_ => Task.Run(Worker)));
        return done;
    }

    private JsonObject ToJson(BenchSilo silo, RawResult raw, JobRun median, List<JobRun> runs, List<JobRun> warmups, NaiveResult? naive, double vsRaw, double? vsNaive) => new()
    {
        ["benchmark"] = "keyed-count",
        ["timestamp"] = DateTimeOffset.UtcNow.ToString("O"),
        ["records"] = settings.Records,
        ["distinctKeys"] = settings.DistinctKeys,
        ["parallelism"] = settings.Parallelism,
        ["sink"] = settings.DiscardSink ? "DiscardingSink" : "CollectSink (each key once, at its final count)",
        ["batchSize"] = silo.Options.BatchSize,
        ["channelWindow"] = silo.Options.ChannelWindow,
        ["runs"] = runs.Count,
        ["warmupRuns"] = warmups.Count,
        ["recordsPerSecond"] = Math.Round(median.RecordsPerSecond),
        ["recordsPerCpuSecond"] = Math.Round(median.RecordsPerCpuSecond),
        ["wallSeconds"] = Math.Round(median.WallSeconds, 3),
        ["cpuSeconds"] = Math.Round(median.CpuSeconds, 3),
        ["allocatedBytesPerRecord"] = Math.Round(median.AllocatedBytesPerRecord, 2),
        ["otherProcessesCpuSeconds"] = median.OthersCpuSeconds is { } o ? Math.Round(o, 3) : null,
        ["gcCollections"] = new JsonObject { ["gen0"] = median.Gen0, ["gen1"] = median.Gen1, ["gen2"] = median.Gen2 },
        ["verified"] = median.Verified,
        ["verification"] = median.Verification,
        ["rawLoopRecordsPerSecond"] = Math.Round(raw.RecordsPerSecond),
        ["naiveGrainRecordsPerSecond"] = naive is null ? null : Math.Round(naive.RecordsPerSecond),
        ["naiveGrainRecordsPerCpuSecond"] = naive is null ? null : Math.Round(naive.RecordsPerCpuSecond),
        ["naiveGrainCalls"] = naive?.Calls,
        ["naiveGrainSeconds"] = naive is null ? null : Math.Round(naive.WallSeconds, 3),
        ["naiveGrainConcurrency"] = settings.NaiveConcurrency,
        ["naiveGrainOtherProcessesCpuSeconds"] = naive?.OthersCpuSeconds is { } no ? Math.Round(no, 3) : null,
        ["naiveGrainActivationCallsPerSecond"] = naive is null ? null : Math.Round(naive.ActivationCallsPerSecond),
        ["vsRawLoop"] = Math.Round(vsRaw, 4),
        ["vsNaiveGrain"] = vsNaive is { } v ? Math.Round(v, 2) : null,
        ["targetRecordsPerCpuSecond"] = 2_000_000,
        ["targetMet"] = median.RecordsPerCpuSecond >= 2_000_000,
        ["coldRunRecordsPerSecond"] = warmups.Count == 0 ? null : Math.Round(warmups[0].RecordsPerSecond),
        ["coldRunRecordsPerCpuSecond"] = warmups.Count == 0 ? null : Math.Round(warmups[0].RecordsPerCpuSecond),
        ["warmupRunsDetail"] = RunsJson(warmups),
        ["allRuns"] = RunsJson(runs),
        ["machine"] = new JsonObject
        {
            ["processorCount"] = Environment.ProcessorCount,
            ["cpuModel"] = CpuModel(),
            ["os"] = RuntimeInformation.OSDescription,
            ["architecture"] = RuntimeInformation.ProcessArchitecture.ToString(),
            ["dotnet"] = RuntimeInformation.FrameworkDescription,
            ["serverGc"] = GCSettings.IsServerGC,
            ["orleans"] = typeof(IClusterClient).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+', ' ')[0].TrimEnd('.'),
        },
    };

    private static JsonArray RunsJson(List<JobRun> runs) => new([.. runs.Select(r => (JsonNode)new JsonObject
    {
        ["recordsPerSecond"] = Math.Round(r.RecordsPerSecond),
        ["recordsPerCpuSecond"] = Math.Round(r.RecordsPerCpuSecond),
        ["wallSeconds"] = Math.Round(r.WallSeconds, 3),
        ["cpuSeconds"] = Math.Round(r.CpuSeconds, 3),
        ["allocatedBytesPerRecord"] = Math.Round(r.AllocatedBytesPerRecord, 2),
        ["otherProcessesCpuSeconds"] = r.OthersCpuSeconds is { } o ? Math.Round(o, 3) : null,
    })]);

    private static TimeSpan CpuTime()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime;
    }

    /// <summary>CPU time the whole machine spent busy (Linux /proc/stat; null elsewhere), to spot other processes' load.</summary>
    private static double? MachineBusySeconds()
    {
        try
        {
            if (!File.Exists("/proc/stat"))
            {
                return null;
            }

            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);

            // cpu user nice system idle iowait irq softirq steal ...; in USER_HZ ticks (100 per second on Linux).
            long busy = 0;
            foreach (var i in (int[])[1, 2, 3, 6, 7, 8])
            {
                busy += long.Parse(fields[i], System.Globalization.CultureInfo.InvariantCulture);
            }

            return busy / 100.0;
        }
        catch (Exception ex) when (ex is IOException or FormatException or IndexOutOfRangeException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string CpuModel()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
            {
                var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
                if (line is not null)
                {
                    return line[(line.IndexOf(':') + 1)..].Trim();
                }
            }
        }
        catch (IOException)
        {
        }

        return "unknown";
    }

    private sealed record RawResult(double RecordsPerSecond, double Seconds);

    private sealed record JobRun(
        long Records,
        double WallSeconds,
        double CpuSeconds,
        double AllocatedBytesPerRecord,
        int Gen0,
        int Gen1,
        int Gen2,
        double? OthersCpuSeconds,
        bool Verified,
        string Verification)
    {
        public double RecordsPerSecond => Records / WallSeconds;

        public double RecordsPerCpuSecond => Records / CpuSeconds;

        public string OthersNote => OthersCpuSeconds is { } o && o > 0.05 * WallSeconds
            ? $", other processes used {o:F2} CPU-s meanwhile"
            : "";
    }

    private sealed record NaiveResult(
        long Calls, double WallSeconds, double CpuSeconds, long ActivatedKeys, double ActivationCallsPerSecond, double? OthersCpuSeconds, bool Verified)
    {
        public double RecordsPerSecond => Calls / WallSeconds;

        public double RecordsPerCpuSecond => Calls / CpuSeconds;
    }
}
