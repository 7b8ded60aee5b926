using System.Diagnostics;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Platform.Benchmarks.KeyedCount;
using Platform.Checkpointing;
using Platform.Client;
using Platform.Connectors;
using Platform.Graph;
using Platform.Runtime;
using Platform.State;

namespace Platform.Benchmarks.StateBackends;

/// <summary>Settings of the state-backends benchmark.</summary>
internal sealed record StateBackendsSettings
{
    public string? JsonPath { get; init; }
    public int Parallelism { get; init; } = 2;
    public long Keys { get; init; } = 100_000;
    public long HeapRecords { get; init; } = 60_000_000;
    public long RocksDbRecords { get; init; } = 24_000_000;
    public int Runs { get; init; } = 3;
    public int WarmupRuns { get; init; } = 1;
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(1);
    public long BigKeys { get; init; } = 10_000_000;
    public int ValueBytes { get; init; } = 100;
    public double ChangedFraction { get; init; } = 0.01;
    public long VerifyKeys { get; init; } = 20_000;
    public bool SkipCost { get; init; }
    public bool SkipBig { get; init; }
    public bool NoSettle { get; init; }
    public string? TempDirectory { get; init; }
    public string CommandLine { get; init; } = "";

    public long ChangedKeys => Math.Max(1, (long)Math.Round(BigKeys * ChangedFraction));
}

/// <summary>
/// Heap against RocksDB on the same run: the keyed-count pipeline with a checkpoint every second on each backend
/// (CPU per record), then a big state on RocksDB (first and incremental checkpoint, bytes uploaded against bytes
/// changed, and the restore after an injected failure).
/// </summary>
internal sealed class StateBackendsBenchmark(StateBackendsSettings settings)
{
    private const double TargetCostRatio = 3;
    private const double TargetUploadRatio = 2;
    private const double TargetRestoreSeconds = 10;
    private const string SourceUid = "keys";
    private const string CountUid = "count";
    private const string SinkUid = "final-counts";

    private readonly string _root = Path.Combine(settings.TempDirectory ?? Path.GetTempPath(), $"platform-bench-state-{Guid.NewGuid():N}");

    private string CheckpointDirectory => Path.Combine(_root, "checkpoints");

    private string RocksDbDirectory => Path.Combine(_root, "rocksdb");

    public async Task<int> RunAsync()
    {
        Console.WriteLine($"state-backends: parallelism {settings.Parallelism}; cost: {settings.HeapRecords:N0} (heap) and {settings.RocksDbRecords:N0} (RocksDB) records over {settings.Keys:N0} keys, " +
                          $"checkpoint every {settings.CheckpointInterval.TotalSeconds:0.###} s, {settings.WarmupRuns} warm-up + {settings.Runs} timed run(s) per backend; " +
                          $"big state: {settings.BigKeys:N0} keys × {settings.ValueBytes} B on RocksDB, {settings.ChangedKeys:N0} changed");
        Console.WriteLine($"machine: {Environment.ProcessorCount} logical CPUs ({BenchEnvironment.CpuModel()}), {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}; " +
                          $"working directory {_root}");

        var restoreLog = new RestoreLogCapture();
        try
        {
            Directory.CreateDirectory(_root);
            var startup = Stopwatch.StartNew();
            await using var silo = await BenchSilo.StartAsync(
                batchSize: null,
                channelWindow: null,
                configure: o =>
                {
                    o.StateDirectory = Path.Combine(_root, "state");
                    o.CheckpointDirectory = CheckpointDirectory;
                    o.RocksDb.LocalDirectory = RocksDbDirectory;
                },
                configureLogging: logging =>
                {
                    logging.AddProvider(restoreLog);
                    logging.AddFilter<RestoreLogCapture>(RestoreLogCapture.Category, LogLevel.Information);
                });
            Console.WriteLine($"silo started in {startup.Elapsed.TotalSeconds:F1} s (RocksDB block cache {silo.Options.RocksDb.BlockCacheSize / 1048576} MiB, " +
                              $"write buffer {silo.Options.RocksDb.WriteBufferSize / 1048576} MiB × {silo.Options.RocksDb.MaxWriteBufferNumber}, " +
                              $"incremental checkpoints by default: {silo.Options.RocksDb.IncrementalCheckpoints})");
            var platform = new PlatformClient(silo.Client);

            var cost = settings.SkipCost ? null : await RunCostAsync(platform);
            var big = settings.SkipBig ? null : await RunBigStateAsync(platform, restoreLog);

            // A job manager releases its task grains just after the job ends; stopping the silo in the middle of that
            // only fills the console with placement errors.
            await Task.Delay(TimeSpan.FromSeconds(2));

            PrintSummary(cost, big);
            if (settings.JsonPath is { } path)
            {
                var json = ToJson(silo, cost, big);
                var full = Path.GetFullPath(path);
                Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                await File.WriteAllTextAsync(full, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
                Console.WriteLine($"JSON written to {full}");
            }

            var verified = (cost?.Verified ?? true) && (big?.Problems.Count ?? 0) == 0;
            return verified ? 0 : 2;
        }
        catch (BenchmarkFailedException ex)
        {
            Console.Error.WriteLine(ex.Message);
            return 2;
        }
        finally
        {
            DeleteRoot();
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Part 1: CPU per record, keyed count with a checkpoint every second, heap against RocksDB.

    private async Task<CostResult> RunCostAsync(PlatformClient platform)
    {
        Console.WriteLine();
        Console.WriteLine("== CPU per record: keyed count, checkpoint every second ==");
        var warmups = new List<CountRun>();
        for (var i = 0; i < settings.WarmupRuns; i++)
        {
            foreach (var backend in (StateBackendKind[])[StateBackendKind.Heap, StateBackendKind.RocksDb])
            {
                warmups.Add(await CountRunAsync(platform, backend, $"warm-up {i + 1}"));
            }
        }

        // Interleaved (heap, RocksDB, RocksDB, heap, ...) so that drift in the machine's load hits both alike.
        var timed = new List<CountRun>();
        for (var i = 0; i < settings.Runs; i++)
        {
            StateBackendKind[] order = i % 2 == 0 ? [StateBackendKind.Heap, StateBackendKind.RocksDb] : [StateBackendKind.RocksDb, StateBackendKind.Heap];
            foreach (var backend in order)
            {
                timed.Add(await CountRunAsync(platform, backend, $"run {i + 1}"));
            }
        }

        var heap = timed.Where(r => r.Backend == StateBackendKind.Heap).ToList();
        var rocks = timed.Where(r => r.Backend == StateBackendKind.RocksDb).ToList();
        var ratio = Median(rocks.Select(r => r.CpuMicrosPerRecord)) / Median(heap.Select(r => r.CpuMicrosPerRecord));
        var perRound = heap.Zip(rocks, (h, r) => r.CpuMicrosPerRecord / h.CpuMicrosPerRecord).ToList();
        return new CostResult(warmups, heap, rocks, ratio, perRound, timed.All(r => r.Verified) && warmups.All(r => r.Verified));
    }

    private async Task<CountRun> CountRunAsync(PlatformClient platform, StateBackendKind backend, string label)
    {
        var records = backend == StateBackendKind.Heap ? settings.HeapRecords : settings.RocksDbRecords;
        var job = new StreamJobBuilder($"bench-state-count-{backend}")
        {
            DefaultParallelism = settings.Parallelism,
            StateBackend = backend,
            Checkpointing = new CheckpointingSettings
            {
                Interval = settings.CheckpointInterval,
                Storage = CheckpointStorageKind.FileSystem,
                Directory = CheckpointDirectory,
            },
        };
        job.AddSource(new SpreadKeySource { Count = records, DistinctKeys = settings.Keys }, "keys").Uid(SourceUid)
            .KeyBy(new IdentityKey())
            .Process(new CountPerKey { Records = records, DistinctKeys = settings.Keys }, "count").Uid(CountUid)
            .SinkTo(new CollectSink<long>(), "final-counts").Uid(SinkUid);

        var (jobId, status, wallSeconds, cpuSeconds, others) = await BenchEnvironment.RunJobAsync(platform, job, TimeSpan.FromMinutes(30));
        var stats = await platform.GetCheckpointStatisticsAsync(jobId);
        var completed = stats.History.Where(c => c.Status == CheckpointStatus.Completed).ToList();
        var (ok, message) = await VerifyCountAsync(platform, jobId, status, records);
        var run = new CountRun(
            backend,
            records,
            wallSeconds,
            cpuSeconds,
            others,
            stats.Completed,
            stats.Failed,
            completed.Count == 0 ? 0 : completed.Max(c => c.StateSize),
            completed.Count == 0 ? null : completed.Average(c => c.EndToEndDuration?.TotalSeconds ?? 0),
            [.. stats.History.Where(c => c.Status == CheckpointStatus.Failed).Select(c => c.FailureReason ?? "(no reason)").Distinct()],
            ok,
            message);
        Console.WriteLine($"{label,-10} {Name(backend),-7} {run.RecordsPerSecond,12:N0} records/s {run.RecordsPerCpuSecond,12:N0} records/CPU-s " +
                          $"{run.CpuMicrosPerRecord,7:F3} CPU-µs/record ({run.WallSeconds:F2} s wall, {run.CpuSeconds:F2} CPU-s, " +
                          $"{run.CheckpointsCompleted} checkpoint(s) of ≤{BenchJobs.Bytes(run.MaxCheckpointStateSize)}" +
                          (run.CheckpointsFailed > 0 ? $", {run.CheckpointsFailed} failed: {string.Join("; ", run.CheckpointFailures)}" : "") +
                          (others is { } o && o > 0.05 * run.WallSeconds ? $", other processes {o:F2} CPU-s" : "") +
                          $"; {message})");
        if (!ok)
        {
            throw new BenchmarkFailedException($"{label} on {Name(backend)} failed verification: {message}");
        }

        return run;
    }

    private async Task<(bool Ok, string Message)> VerifyCountAsync(PlatformClient platform, string jobId, JobStatusInfo status, long records)
    {
        if (status.State != JobState.Finished)
        {
            return (false, $"job ended {status.State}: {status.Failure?.Describe()}");
        }

        if (status.Restarts > 0)
        {
            return (false, $"job restarted {status.Restarts} time(s): {status.RestartCauses.FirstOrDefault()?.Describe()}");
        }

        var read = status.Tasks.Where(t => t.OperatorUids.Contains(SourceUid)).Sum(t => t.RecordsIn);
        var counted = status.Tasks.Where(t => t.OperatorUids.Contains(CountUid)).Sum(t => t.RecordsIn);
        if (read != records || counted != records)
        {
            return (false, $"sources read {read:N0} and the counting tasks consumed {counted:N0} records; expected {records:N0}");
        }

        // CountPerKey emits a key when its count reaches the formula's value, and again if it passes it.
        var emitted = await platform.GetCollectedAsync<long>(jobId, SinkUid);
        var expected = Math.Min(records, settings.Keys);
        var seen = new HashSet<long>();
        foreach (var key in emitted)
        {
            var index = BenchKeys.IndexOf(key);
            if (index < 0 || index >= expected || !seen.Add(key))
            {
                return (false, $"key #{index} was emitted unexpectedly or twice");
            }
        }

        return seen.Count == expected
            ? (true, $"all {expected:N0} keys counted exactly")
            : (false, $"only {seen.Count:N0} of {expected:N0} keys reached their expected count");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Part 2: a big state on RocksDB: first checkpoint, change a fraction of the keys, next checkpoint, then a restore.

    private long? _baselineUploaded;

    // Waits until RocksDB's compactions are done (its SST files have not changed for three seconds).
    private async Task SettleCompactionsAsync(string when)
    {
        if (settings.NoSettle)
        {
            return;
        }

        var waited = await BenchJobs.SettleCompactionsAsync(RocksDbDirectory);
        Console.WriteLine($"settled:     RocksDB's SST files unchanged for 3 s {when} (waited {waited.TotalSeconds:F1} s)");
    }

    private async Task<BigResult> RunBigStateAsync(PlatformClient platform, RestoreLogCapture restoreLog)
    {
        Console.WriteLine();
        Console.WriteLine($"== Big state on RocksDB: {settings.BigKeys:N0} keys × {settings.ValueBytes} B ==");
        var bigKeys = settings.BigKeys;
        var changed = settings.ChangedKeys;
        var end = bigKeys + changed + settings.VerifyKeys;
        var problems = new List<string>();

        BigStateProbe.Reset(released: bigKeys);
        var job = new StreamJobBuilder("bench-state-big")
        {
            DefaultParallelism = settings.Parallelism,
            StateBackend = StateBackendKind.RocksDb,

            // Triggered by hand, so that each checkpoint covers exactly one phase.
            Checkpointing = new CheckpointingSettings
            {
                Interval = null,
                Storage = CheckpointStorageKind.FileSystem,
                Directory = CheckpointDirectory,
                Timeout = TimeSpan.FromMinutes(30),
            },

            // No delay: the restore time should be the platform's, not a back-off we chose.
            RestartStrategy = RestartStrategy.FixedDelayRestart(1, TimeSpan.Zero),
        };
        job.AddSource(new BigStateSource { End = end }, "big-state-source").Uid("big-source")
            .KeyBy(new BigStateKey { BigKeys = bigKeys, ChangedKeys = changed })
            .Process(new FatValuePerKey { BigKeys = bigKeys, ChangedKeys = changed, ValueBytes = settings.ValueBytes }, "fat-value").Uid("fat-value")
            .SinkTo(new DiscardingSink<long>(), "discard").Uid("discard");

        GC.Collect();
        var cpu = BenchEnvironment.CpuTime();
        var wall = Stopwatch.StartNew();
        var jobId = await platform.SubmitAsync(job);
        try
        {
            // Load.
            await BenchJobs.WaitUntilAsync(platform, jobId, () => BigStateProbe.Loaded >= bigKeys, $"loading {bigKeys:N0} keys", TimeSpan.FromMinutes(60), progress: () => BigStateProbe.Loaded);
            wall.Stop();
            var load = new Phase(bigKeys, wall.Elapsed.TotalSeconds, (BenchEnvironment.CpuTime() - cpu).TotalSeconds);
            Console.WriteLine($"load:        {bigKeys:N0} keys in {load.WallSeconds:F1} s ({load.RecordsPerSecond:N0} records/s, {load.CpuSeconds:F1} CPU-s)");
            if (BigStateProbe.LoadedOverExisting > 0)
            {
                problems.Add($"{BigStateProbe.LoadedOverExisting:N0} load records found a value already there");
            }

            var localAfterLoad = BenchEnvironment.DirectoryBytes(RocksDbDirectory);

            // A load at full speed leaves RocksDB compactions behind; settled, the next checkpoints measure the change
            // and what it triggers rather than the load's backlog (see docs/benchmarks.md).
            await SettleCompactionsAsync("after the load");

            // First checkpoint: everything is uploaded.
            var first = await CheckpointAsync(platform, jobId, "first");

            // Its flush may start compactions whose output the next checkpoint must upload, whatever changed. A
            // baseline checkpoint after they finish takes that output, so the measured one sees the change alone.
            if (!settings.NoSettle)
            {
                await SettleCompactionsAsync("after the first checkpoint's flush");
                var baseline = await CheckpointAsync(platform, jobId, "baseline (compaction output since the first)");
                _baselineUploaded = baseline.CheckpointedSize;
            }

            // Change a fraction of the keys, then the next checkpoint.
            cpu = BenchEnvironment.CpuTime();
            wall.Restart();
            BigStateProbe.Released = bigKeys + changed;
            await BenchJobs.WaitUntilAsync(platform, jobId, () => BigStateProbe.Updated >= changed, $"updating {changed:N0} keys", TimeSpan.FromMinutes(30), progress: () => BigStateProbe.Updated);
            var update = new Phase(changed, wall.Elapsed.TotalSeconds, (BenchEnvironment.CpuTime() - cpu).TotalSeconds);
            Console.WriteLine($"update:      {changed:N0} keys ({changed / (double)bigKeys:P2}) in {update.WallSeconds:F1} s");
            if (BigStateProbe.UpdatedWrong > 0)
            {
                problems.Add($"{BigStateProbe.UpdatedWrong:N0} updated keys did not hold their loaded value");
            }

            var second = await CheckpointAsync(platform, jobId, "incremental");

            // "Bytes changed": the changed keys' share of the full state. Every entry has the same key and value size,
            // so this is the serialized size of the changed entries in the snapshot format (plus a share of the
            // per-key-group headers, which are negligible).
            var changedBytes = first.StateSize * (double)changed / bigKeys;
            var uploadRatio = second.CheckpointedSize / changedBytes;
            Console.WriteLine($"changed:     {BenchJobs.Bytes((long)changedBytes)} of state (full state {BenchJobs.Bytes(first.StateSize)} × {changed:N0}/{bigKeys:N0} keys); " +
                              $"the incremental checkpoint uploaded {BenchJobs.Bytes(second.CheckpointedSize)}: ratio {uploadRatio:F2}");

            // Restore: fail once after the second checkpoint, measure until every keyed subtask runs on restored state.
            var restore = await RestoreAsync(platform, jobId, second.Id, restoreLog, problems);

            // Let the job finish (its checkpoints are deleted then).
            BigStateProbe.Released = long.MaxValue;
            var final = await platform.WaitForCompletionAsync(jobId, TimeSpan.FromMinutes(30));
            if (final.State != JobState.Finished)
            {
                problems.Add($"the big-state job ended {final.State}: {final.Failure?.Describe()}");
            }

            if (BigStateProbe.VerifiedAfterRestore != settings.VerifyKeys)
            {
                problems.Add($"{BigStateProbe.VerifiedAfterRestore:N0} verify records were processed after the restore; expected {settings.VerifyKeys:N0}");
            }

            foreach (var problem in problems)
            {
                Console.Error.WriteLine($"PROBLEM: {problem}");
            }

            return new BigResult(load, update, first, second, changed, changedBytes, uploadRatio, restore, localAfterLoad, BenchEnvironment.PeakWorkingSet(), problems);
        }
        catch
        {
            await BenchJobs.TryCancelAsync(platform, jobId);
            throw;
        }
    }

    private async Task<CheckpointRun> CheckpointAsync(PlatformClient platform, string jobId, string label)
    {
        var cpu = BenchEnvironment.CpuTime();
        var wall = Stopwatch.StartNew();
        var stats = await platform.TriggerCheckpointAsync(jobId, TimeSpan.FromMinutes(30));
        wall.Stop();
        var cpuSeconds = (BenchEnvironment.CpuTime() - cpu).TotalSeconds;
        if (stats.Status != CheckpointStatus.Completed)
        {
            throw new BenchmarkFailedException($"The {label} checkpoint of the big state failed: {stats.FailureReason}");
        }

        var run = new CheckpointRun(
            stats.Id,
            stats.EndToEndDuration?.TotalSeconds ?? wall.Elapsed.TotalSeconds,
            wall.Elapsed.TotalSeconds,
            cpuSeconds,
            stats.StateSize,
            stats.CheckpointedSize,
            stats.Subtasks.Count == 0 ? 0 : stats.Subtasks.Max(s => s.SyncDuration.TotalSeconds),
            stats.Subtasks.Count == 0 ? 0 : stats.Subtasks.Max(s => s.AsyncDuration.TotalSeconds),
            BenchEnvironment.DirectoryBytes(Path.Combine(CheckpointDirectory, jobId)));
        Console.WriteLine($"checkpoint {run.Id} ({label}): {run.Seconds:F2} s end to end, state {BenchJobs.Bytes(run.StateSize)}, uploaded {BenchJobs.Bytes(run.CheckpointedSize)} " +
                          $"(sync ≤{run.MaxSyncSeconds * 1000:F0} ms, async ≤{run.MaxAsyncSeconds:F2} s, {run.CpuSeconds:F1} CPU-s)");
        return run;
    }

    private async Task<RestoreRun> RestoreAsync(PlatformClient platform, string jobId, long checkpointId, RestoreLogCapture restoreLog, List<string> problems)
    {
        var parallelism = settings.Parallelism;
        restoreLog.Restored.Clear();

        // The next verify record throws; the job restarts from the incremental checkpoint and replays the verify records.
        Console.WriteLine("injecting a failure (the task and job manager warnings that follow are expected)");
        BigStateProbe.ArmFailure();
        BigStateProbe.Released = settings.BigKeys + settings.ChangedKeys + settings.VerifyKeys;
        await BenchJobs.WaitUntilAsync(platform, jobId, () => BigStateProbe.FailedAt != 0, "the injected failure", TimeSpan.FromMinutes(5), allowRestart: true);
        var failedAt = BigStateProbe.FailedAt;

        // End point: every keyed subtask of the new attempt opened its function, which StreamTask does right after it
        // restored the keyed state (read the files and wrote them into RocksDB), and before it takes any record.
        await BenchJobs.WaitUntilAsync(
            platform,
            jobId,
            () => BigStateProbe.Opened.Count(o => o.Key.Attempt > 1) >= parallelism,
            "the restored subtasks", TimeSpan.FromMinutes(30), allowRestart: true);
        var opened = BigStateProbe.Opened.Where(o => o.Key.Attempt > 1).OrderBy(o => o.Key.Subtask).Select(o => Seconds(failedAt, o.Value)).ToList();
        var restoreSeconds = opened.Max();
        var readers = BigStateProbe.ReadersCreated.Where(t => t > failedAt).ToList();
        var sourcesStarted = readers.Count == 0 ? (double?)null : Seconds(failedAt, readers.Min());

        // Then every replayed verify record must find the value the layout predicts.
        await BenchJobs.WaitUntilAsync(platform, jobId, () => BigStateProbe.VerifiedAfterRestore >= settings.VerifyKeys, "the verify records after the restore", TimeSpan.FromMinutes(10), allowRestart: true);
        var verifiedSeconds = Seconds(failedAt, Stopwatch.GetTimestamp());
        if (BigStateProbe.VerifiedWrongAfterRestore > 0)
        {
            problems.Add($"{BigStateProbe.VerifiedWrongAfterRestore:N0} of {BigStateProbe.VerifiedAfterRestore:N0} keys checked after the restore had a missing or wrong value");
        }

        var status = await platform.GetStatusAsync(jobId);
        if (status.Attempt != 2 || status.RestoredFromCheckpoint != checkpointId || status.State != JobState.Running)
        {
            problems.Add($"after the failure the job is {status.State}, attempt {status.Attempt}, restored from checkpoint {status.RestoredFromCheckpoint?.ToString() ?? "none"}; expected RUNNING, attempt 2, checkpoint {checkpointId}");
        }

        var logged = restoreLog.Restored.Where(r => r.Timestamp > failedAt).Select(r => Seconds(failedAt, r.Timestamp)).ToList();
        if (logged.Count < parallelism)
        {
            problems.Add($"only {logged.Count} of {parallelism} keyed subtasks logged a restore");
        }

        var run = new RestoreRun(restoreSeconds, opened, logged, sourcesStarted, verifiedSeconds, BigStateProbe.VerifiedAfterRestore, BigStateProbe.VerifiedWrongAfterRestore, status.RestoredFromCheckpoint);
        Console.WriteLine($"restore:     {restoreSeconds:F2} s from the failure until every keyed subtask ran on restored state " +
                          $"(per subtask {string.Join(", ", opened.Select(s => $"{s:F2} s"))}; restore logged at {string.Join(", ", logged.Select(s => $"{s:F2} s"))}; " +
                          $"new attempt's sources started at {sourcesStarted:F2} s; {run.Verified:N0} replayed keys checked by {verifiedSeconds:F2} s, {run.VerifiedWrong} wrong)");
        return run;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Report.

    private void PrintSummary(CostResult? cost, BigResult? big)
    {
        Console.WriteLine();
        Console.WriteLine("RESULT");
        if (cost is not null)
        {
            Console.WriteLine($"  rocksDbToHeapCostRatio  {cost.Ratio,8:F2}   target ≤ {TargetCostRatio}: {Met(cost.Ratio <= TargetCostRatio)}  " +
                              $"(CPU-µs/record, median of {settings.Runs}: heap {Median(cost.Heap.Select(r => r.CpuMicrosPerRecord)):F3}, " +
                              $"RocksDB {Median(cost.RocksDb.Select(r => r.CpuMicrosPerRecord)):F3}; per round {string.Join(", ", cost.PerRound.Select(r => r.ToString("F2")))})");
        }

        if (big is not null)
        {
            var incremental = big.Second.CheckpointedSize < big.Second.StateSize;
            Console.WriteLine($"  incrementalUploadRatio  {big.UploadRatio,8:F2}   target ≤ {TargetUploadRatio}: {Met(big.UploadRatio <= TargetUploadRatio)}  " +
                              $"({BenchJobs.Bytes(big.Second.CheckpointedSize)} uploaded for {BenchJobs.Bytes((long)big.ChangedBytes)} changed" +
                              (incremental ? ")" : "; the checkpoint was FULL: incremental checkpoints are not active in this build)"));
            Console.WriteLine($"  checkpointSecondsAt1GB  {big.First.Seconds,8:F2} s first, {big.Second.Seconds:F2} s incremental (state {BenchJobs.Bytes(big.First.StateSize)})");
            Console.WriteLine($"  restoreSecondsAt1GB     {big.Restore.Seconds,8:F2} s   target < {TargetRestoreSeconds} s: {Met(big.Restore.Seconds < TargetRestoreSeconds)}  (state {BenchJobs.Bytes(big.Second.StateSize)})");
            if (big.First.StateSize < 900L * 1024 * 1024)
            {
                Console.WriteLine($"  (the big state is {BenchJobs.Bytes(big.First.StateSize)}, not ~1 GB: set --big-keys 10000000 --value-bytes 100 for the issue's size)");
            }
        }
    }

    private JsonObject ToJson(BenchSilo silo, CostResult? cost, BigResult? big)
    {
        var incremental = big is not null && big.Second.CheckpointedSize < big.Second.StateSize;
        return new JsonObject
        {
            ["benchmark"] = "state-backends",
            ["timestamp"] = DateTimeOffset.UtcNow.ToString("O"),
            ["command"] = settings.CommandLine,
            ["rocksDbToHeapCostRatio"] = cost is null ? null : Math.Round(cost.Ratio, 3),
            ["incrementalUploadRatio"] = big is null ? null : Math.Round(big.UploadRatio, 3),
            ["checkpointSecondsAt1GB"] = big is null ? null : new JsonObject
            {
                ["first"] = Math.Round(big.First.Seconds, 3),
                ["incremental"] = Math.Round(big.Second.Seconds, 3),
            },
            ["restoreSecondsAt1GB"] = big is null ? null : Math.Round(big.Restore.Seconds, 3),
            ["targets"] = new JsonObject
            {
                ["rocksDbToHeapCostRatioAtMost"] = TargetCostRatio,
                ["incrementalUploadRatioAtMost"] = TargetUploadRatio,
                ["restoreSecondsAt1GBBelow"] = TargetRestoreSeconds,
                ["costRatioMet"] = cost is null ? null : cost.Ratio <= TargetCostRatio,
                ["uploadRatioMet"] = big is null ? null : big.UploadRatio <= TargetUploadRatio,
                ["restoreMet"] = big is null ? null : big.Restore.Seconds < TargetRestoreSeconds,
            },
            ["incrementalCheckpointsActive"] = big is null ? null : incremental,
            ["settings"] = new JsonObject
            {
                ["parallelism"] = settings.Parallelism,
                ["keys"] = settings.Keys,
                ["heapRecords"] = settings.HeapRecords,
                ["rocksDbRecords"] = settings.RocksDbRecords,
                ["runs"] = settings.Runs,
                ["warmupRuns"] = settings.WarmupRuns,
                ["checkpointIntervalSeconds"] = settings.CheckpointInterval.TotalSeconds,
                ["bigKeys"] = settings.BigKeys,
                ["valueBytes"] = settings.ValueBytes,
                ["changedFraction"] = settings.ChangedFraction,
                ["changedKeys"] = settings.ChangedKeys,
                ["verifyKeys"] = settings.VerifyKeys,
                ["batchSize"] = silo.Options.BatchSize,
                ["channelWindow"] = silo.Options.ChannelWindow,
                ["checkpointStorage"] = "FileSystem (local temp directory)",
                ["rocksDbBlockCacheBytes"] = silo.Options.RocksDb.BlockCacheSize,
                ["rocksDbWriteBufferBytes"] = silo.Options.RocksDb.WriteBufferSize,
                ["rocksDbMaxWriteBufferNumber"] = silo.Options.RocksDb.MaxWriteBufferNumber,
                ["rocksDbIncrementalCheckpointsDefault"] = silo.Options.RocksDb.IncrementalCheckpoints,
            },
            ["cost"] = cost is null ? null : new JsonObject
            {
                ["method"] = "Process.TotalProcessorTime from submit to FINISHED over records, per run; median per backend; ratio of the medians. " +
                             "Timed runs interleave heap and RocksDB (H R, R H, ...) after warm-up runs of each.",
                ["heapCpuMicrosPerRecord"] = Math.Round(Median(cost.Heap.Select(r => r.CpuMicrosPerRecord)), 4),
                ["rocksDbCpuMicrosPerRecord"] = Math.Round(Median(cost.RocksDb.Select(r => r.CpuMicrosPerRecord)), 4),
                ["heapRecordsPerSecond"] = Math.Round(Median(cost.Heap.Select(r => r.RecordsPerSecond))),
                ["rocksDbRecordsPerSecond"] = Math.Round(Median(cost.RocksDb.Select(r => r.RecordsPerSecond))),
                ["heapRecordsPerCpuSecond"] = Math.Round(Median(cost.Heap.Select(r => r.RecordsPerCpuSecond))),
                ["rocksDbRecordsPerCpuSecond"] = Math.Round(Median(cost.RocksDb.Select(r => r.RecordsPerCpuSecond))),
                ["ratioPerRound"] = new JsonArray([.. cost.PerRound.Select(r => (JsonNode)Math.Round(r, 3))]),
                ["runs"] = new JsonArray([.. cost.Heap.Concat(cost.RocksDb).Select(RunJson)]),
                ["warmupRuns"] = new JsonArray([.. cost.Warmups.Select(RunJson)]),
            },
            ["bigState"] = big is null ? null : new JsonObject
            {
                ["keys"] = settings.BigKeys,
                ["valueBytes"] = settings.ValueBytes,
                ["stateSizeBytes"] = big.First.StateSize,
                ["rocksDbLocalBytesAfterLoad"] = big.LocalBytesAfterLoad,
                ["load"] = PhaseJson(big.Load),
                ["update"] = PhaseJson(big.Update),
                ["firstCheckpoint"] = CheckpointJson(big.First),
                ["incrementalCheckpoint"] = CheckpointJson(big.Second),
                ["changedKeys"] = big.ChangedKeys,
                ["changedBytes"] = Math.Round(big.ChangedBytes),
                ["changedBytesMethod"] = "full state size of the first checkpoint (StateSize) × changed keys / keys: every entry has the same " +
                                         "key and value size, so this is the changed entries' serialized size in the snapshot format",
                ["incrementalCheckpointedBytes"] = big.Second.CheckpointedSize,
                ["compactionsSettled"] = !settings.NoSettle,
                ["baselineCheckpointedBytes"] = _baselineUploaded,
                ["baselineMethod"] = "after the first checkpoint, RocksDB's compactions (started by its flush) are let finish and a baseline " +
                                     "checkpoint takes their output; the incremental checkpoint is measured after it. Without this (--no-settle) " +
                                     "the incremental checkpoint also uploads the compaction output of data written before the first checkpoint.",
                ["restore"] = new JsonObject
                {
                    ["method"] = "An armed static switch makes the keyed function throw on the next record after the incremental checkpoint " +
                                 "(restart strategy: fixed delay 0). Start: the throw. End: the last keyed subtask of the new attempt opens its " +
                                 "function, which StreamTask does right after restoring keyed state and before taking records.",
                    ["seconds"] = Math.Round(big.Restore.Seconds, 3),
                    ["perSubtaskSeconds"] = new JsonArray([.. big.Restore.PerSubtask.Select(s => (JsonNode)Math.Round(s, 3))]),
                    ["restoreLoggedSeconds"] = new JsonArray([.. big.Restore.Logged.Select(s => (JsonNode)Math.Round(s, 3))]),
                    ["newAttemptSourcesStartedSeconds"] = big.Restore.SourcesStarted is { } s ? Math.Round(s, 3) : null,
                    ["replayedKeysCheckedSeconds"] = Math.Round(big.Restore.VerifiedSeconds, 3),
                    ["replayedKeysChecked"] = big.Restore.Verified,
                    ["replayedKeysWrong"] = big.Restore.VerifiedWrong,
                    ["restoredFromCheckpoint"] = big.Restore.RestoredFrom,
                },
                ["peakWorkingSetBytes"] = big.PeakWorkingSet,
                ["problems"] = new JsonArray([.. big.Problems.Select(p => (JsonNode)p)]),
            },
            ["verified"] = (cost?.Verified ?? true) && (big?.Problems.Count ?? 0) == 0,
            ["machine"] = BenchEnvironment.MachineJson(),
        };
    }

    private static JsonNode RunJson(CountRun r) => new JsonObject
    {
        ["backend"] = Name(r.Backend),
        ["records"] = r.Records,
        ["wallSeconds"] = Math.Round(r.WallSeconds, 3),
        ["cpuSeconds"] = Math.Round(r.CpuSeconds, 3),
        ["recordsPerSecond"] = Math.Round(r.RecordsPerSecond),
        ["recordsPerCpuSecond"] = Math.Round(r.RecordsPerCpuSecond),
        ["cpuMicrosPerRecord"] = Math.Round(r.CpuMicrosPerRecord, 4),
        ["checkpointsCompleted"] = r.CheckpointsCompleted,
        ["checkpointsFailed"] = r.CheckpointsFailed,
        ["checkpointFailureReasons"] = new JsonArray([.. r.CheckpointFailures.Select(f => (JsonNode)f)]),
        ["maxCheckpointStateSizeBytes"] = r.MaxCheckpointStateSize,
        ["meanCheckpointSeconds"] = r.MeanCheckpointSeconds is { } c ? Math.Round(c, 3) : null,
        ["otherProcessesCpuSeconds"] = r.OthersCpuSeconds is { } o ? Math.Round(o, 3) : null,
        ["verification"] = r.Verification,
    };

    private static JsonObject PhaseJson(Phase p) => new()
    {
        ["records"] = p.Records,
        ["wallSeconds"] = Math.Round(p.WallSeconds, 3),
        ["cpuSeconds"] = Math.Round(p.CpuSeconds, 3),
        ["recordsPerSecond"] = Math.Round(p.RecordsPerSecond),
    };

    private static JsonObject CheckpointJson(CheckpointRun c) => new()
    {
        ["id"] = c.Id,
        ["endToEndSeconds"] = Math.Round(c.Seconds, 3),
        ["triggerToResultSeconds"] = Math.Round(c.ClientSeconds, 3),
        ["cpuSeconds"] = Math.Round(c.CpuSeconds, 3),
        ["stateSizeBytes"] = c.StateSize,
        ["checkpointedSizeBytes"] = c.CheckpointedSize,
        ["maxSubtaskSyncSeconds"] = Math.Round(c.MaxSyncSeconds, 4),
        ["maxSubtaskAsyncSeconds"] = Math.Round(c.MaxAsyncSeconds, 3),
        ["bytesOnDiskForJobAfter"] = c.StorageBytesAfter,
    };

    private void DeleteRoot()
    {
        try
        {
            if (Directory.Exists(_root))
            {
                Directory.Delete(_root, recursive: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"Could not delete {_root}: {ex.Message}");
        }
    }

    private static double Seconds(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalSeconds;

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN
            : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2]
            : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string Name(StateBackendKind backend) => backend == StateBackendKind.Heap ? "heap" : "RocksDB";

    private static string Met(bool met) => met ? "met" : "NOT met";

    private sealed record CountRun(
        StateBackendKind Backend,
        long Records,
        double WallSeconds,
        double CpuSeconds,
        double? OthersCpuSeconds,
        long CheckpointsCompleted,
        long CheckpointsFailed,
        long MaxCheckpointStateSize,
        double? MeanCheckpointSeconds,
        List<string> CheckpointFailures,
        bool Verified,
        string Verification)
    {
        public double RecordsPerSecond => Records / WallSeconds;

        public double RecordsPerCpuSecond => Records / CpuSeconds;

        public double CpuMicrosPerRecord => CpuSeconds * 1e6 / Records;
    }

    private sealed record CostResult(List<CountRun> Warmups, List<CountRun> Heap, List<CountRun> RocksDb, double Ratio, List<double> PerRound, bool Verified);

    private sealed record Phase(long Records, double WallSeconds, double CpuSeconds)
    {
        public double RecordsPerSecond => Records / WallSeconds;
    }

    private sealed record CheckpointRun(
        long Id,
        double Seconds,
        double ClientSeconds,
        double CpuSeconds,
        long StateSize,
        long CheckpointedSize,
        double MaxSyncSeconds,
        double MaxAsyncSeconds,
        long StorageBytesAfter);

    private sealed record RestoreRun(
        double Seconds,
        List<double> PerSubtask,
        List<double> Logged,
        double? SourcesStarted,
        double VerifiedSeconds,
        long Verified,
        long VerifiedWrong,
        long? RestoredFrom);

    private sealed record BigResult(
        Phase Load,
        Phase Update,
        CheckpointRun First,
        CheckpointRun Second,
        long ChangedKeys,
        double ChangedBytes,
        double UploadRatio,
        RestoreRun Restore,
        long LocalBytesAfterLoad,
        long PeakWorkingSet,
        List<string> Problems);

}
