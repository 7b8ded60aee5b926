using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Platform.Benchmarks.KeyedCount;
using Platform.Benchmarks.StateBackends;
using Platform.Checkpointing;
using Platform.Client;
using Platform.Connectors;
using Platform.Diagnostics;
using Platform.Graph;
using Platform.Runtime;
using Platform.State;

namespace Platform.Benchmarks.Checkpointing;

/// <summary>Settings of the checkpointing benchmark.</summary>
internal sealed record CheckpointingBenchSettings
{
    public string? JsonPath { get; init; }
    public long Records { get; init; } = 40_000_000;
    public long Keys { get; init; } = 1_000_000;
    public int Parallelism { get; init; } = 2;
    public int Runs { get; init; } = 3;
    public int WarmupRuns { get; init; } = 1;
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(1);
    public StateBackendKind Backend { get; init; } = StateBackendKind.Heap;
    public bool SkipRecovery { get; init; }
    public string? TempDirectory { get; init; }
    public string CommandLine { get; init; } = "";
}

/// <summary>
/// The keyed-count pipeline over a million keys, with exactly-once checkpoints every second to the file system and, in
/// the same process and interleaved, without checkpoints: the throughput cost of checkpointing, the checkpoints'
/// durations and the subtasks' synchronous pauses; then the recovery time after an injected task failure.
/// </summary>
internal sealed class CheckpointingBenchmark(CheckpointingBenchSettings settings)
{
    private const double TargetThroughputRatio = 0.9;
    private const double TargetCheckpointP99Ms = 1_000;
    private const double TargetSyncPauseP99Ms = 5;
    private const string SourceUid = "keys";
    private const string CountUid = "count";
    private const string SinkUid = "final-counts";
    private static readonly TimeSpan StatisticsPollInterval = TimeSpan.FromMilliseconds(250);

    private readonly string _root = Path.Combine(settings.TempDirectory ?? Path.GetTempPath(), $"platform-bench-checkpointing-{Guid.NewGuid():N}");
    private readonly MeterSamples _meter = new();

    private string CheckpointDirectory => Path.Combine(_root, "checkpoints");

    public async Task<int> RunAsync()
    {
        Console.WriteLine($"checkpointing: {settings.Records:N0} records over {settings.Keys:N0} keys, parallelism {settings.Parallelism}, {Name(settings.Backend)} state, " +
                          $"exactly-once checkpoint every {settings.CheckpointInterval.TotalSeconds:0.###} s to the file system against none; " +
                          $"{settings.WarmupRuns} warm-up + {settings.Runs} timed run(s) per mode, interleaved");
        Console.WriteLine($"machine: {Environment.ProcessorCount} logical CPUs ({BenchEnvironment.CpuModel()}), {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}; " +
                          $"working directory {_root}");
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
                    o.RocksDb.LocalDirectory = Path.Combine(_root, "rocksdb");
                });
            Console.WriteLine($"silo started in {startup.Elapsed.TotalSeconds:F1} s");
            var platform = new PlatformClient(silo.Client);

            var warmups = new List<Run>();
            for (var i = 0; i < settings.WarmupRuns; i++)
            {
                warmups.Add(await CountRunAsync(platform, checkpoints: false, $"warm-up {i + 1}"));
                warmups.Add(await CountRunAsync(platform, checkpoints: true, $"warm-up {i + 1}"));
            }

            // Interleaved (off, on, on, off, ...) so that drift in the machine's load hits both modes alike.
            var timed = new List<Run>();
            for (var i = 0; i < settings.Runs; i++)
            {
                bool[] order = i % 2 == 0 ? [false, true] : [true, false];
                foreach (var checkpoints in order)
                {
                    timed.Add(await CountRunAsync(platform, checkpoints, $"run {i + 1}"));
                }
            }

            var recovery = settings.SkipRecovery ? null : await RecoveryAsync(platform);

            // A job manager releases its task grains just after the job ends; stopping the silo in the middle of that
            // only fills the console with placement errors.
            await Task.Delay(TimeSpan.FromSeconds(2));

            var result = Summarize(warmups, timed, recovery);
            Print(result);
            if (settings.JsonPath is { } path)
            {
                var full = Path.GetFullPath(path);
                Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                await File.WriteAllTextAsync(full, ToJson(silo, result).ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
                Console.WriteLine($"JSON written to {full}");
            }

            return result.Verified ? 0 : 2;
        }
        catch (BenchmarkFailedException ex)
        {
            Console.Error.WriteLine(ex.Message);
            return 2;
        }
        finally
        {
            _meter.Dispose();
            DeleteRoot();
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Throughput with and without checkpoints.

    private StreamJobBuilder Job(string name, bool checkpoints, RestartStrategy? restart = null)
    {
        var job = new StreamJobBuilder(name)
        {
            DefaultParallelism = settings.Parallelism,
            StateBackend = settings.Backend,
            Checkpointing = checkpoints
                ? new CheckpointingSettings
                {
                    Interval = settings.CheckpointInterval,
                    Mode = CheckpointingMode.ExactlyOnce,
                    Storage = CheckpointStorageKind.FileSystem,
                    Directory = CheckpointDirectory,
                }
                : null,
        };
        if (restart is not null)
        {
            job.RestartStrategy = restart;
        }

        job.AddSource(new SpreadKeySource { Count = settings.Records, DistinctKeys = settings.Keys }, "keys").Uid(SourceUid)
            .KeyBy(new IdentityKey())
            .Process(new ProbedCountPerKey { Records = settings.Records, DistinctKeys = settings.Keys }, "count").Uid(CountUid)
            .SinkTo(new CollectSink<long>(), "final-counts").Uid(SinkUid);
        return job;
    }

    private async Task<Run> CountRunAsync(PlatformClient platform, bool checkpoints, string label)
    {
        var job = Job(checkpoints ? "bench-checkpointing-on" : "bench-checkpointing-off", checkpoints);
        CheckpointProbe.Reset();

        // Settle the heap so that one run's garbage is not collected on the next run's clock.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        var machine = BenchEnvironment.MachineBusySeconds();
        var cpu = BenchEnvironment.CpuTime();
        var gc = GcCounters.Now();
        _meter.Start();
        using var progress = ProgressSampler.Start();
        var wall = Stopwatch.StartNew();
        var jobId = await platform.SubmitAsync(job);
        var seen = new Dictionary<long, CheckpointStats>();
        var status = await PollUntilTerminalAsync(platform, jobId, checkpoints ? seen : null);
        wall.Stop();
        var steady = await progress.StopAsync(settings.Records);
        var meter = _meter.Stop();
        var cpuSeconds = (BenchEnvironment.CpuTime() - cpu).TotalSeconds;
        var gcDelta = GcCounters.Now() - gc;
        var others = machine is { } m && BenchEnvironment.MachineBusySeconds() is { } m2 ? Math.Max(0, m2 - m - cpuSeconds) : (double?)null;

        CheckpointStatistics? stats = null;
        if (checkpoints)
        {
            stats = await platform.GetCheckpointStatisticsAsync(jobId);
            Collect(seen, stats);
        }

        var (ok, message) = await VerifyAsync(platform, jobId, status, expectRestart: false);
        var completed = seen.Values.Where(c => c.Status == CheckpointStatus.Completed).OrderBy(c => c.Id).ToList();
        if (checkpoints && ok && completed.Count != stats!.Completed)
        {
            // Every completed checkpoint must be in the figures, not only the history's last entries.
            (ok, message) = (false, $"the coordinator completed {stats.Completed} checkpoints, but the polls saw {completed.Count}");
        }

        var run = new Run(
            checkpoints,
            label,
            settings.Records,
            wall.Elapsed.TotalSeconds,
            steady,
            cpuSeconds,
            others,
            completed,
            [.. seen.Values.Where(c => c.Status == CheckpointStatus.Failed).OrderBy(c => c.Id)],
            meter,
            gcDelta,
            ok,
            message);
        Console.WriteLine($"{label,-10} {(checkpoints ? "checkpoints" : "none"),-11} {run.SteadyRecordsPerSecond,12:N0} records/s steady {run.RecordsPerSecond,12:N0} records/s {run.RecordsPerCpuSecond,12:N0} records/CPU-s " +
                          $"({run.WallSeconds:F2} s wall, {run.CpuSeconds:F2} CPU-s" +
                          (checkpoints ? $", {completed.Count} checkpoint(s) completed, {run.Failed.Count} failed, p99 {Percentile(completed.Select(DurationMs), 0.99):F0} ms, " +
                                         $"sync p99 {Percentile(completed.SelectMany(KeyedSyncMs), 0.99):F2} ms" : "") +
                          $", GC paused {gcDelta.PauseSeconds:F2} s ({gcDelta.Gen2} gen2)" +
                          (others is { } o && o > 0.05 * run.WallSeconds ? $", other processes {o:F2} CPU-s" : "") +
                          $"; {message})");
        if (!ok)
        {
            throw new BenchmarkFailedException($"{label} ({(checkpoints ? "with" : "without")} checkpoints) failed verification: {message}");
        }

        return run;
    }

    // Polls the job (and its checkpoint statistics, when it checkpoints) until it ends. The coordinator's history
    // holds the last 20 checkpoints; at one per second a poll every 250 ms sees each one.
    private static async Task<JobStatusInfo> PollUntilTerminalAsync(PlatformClient platform, string jobId, Dictionary<long, CheckpointStats>? seen)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var status = await platform.GetStatusAsync(jobId);
            if (status.State.IsTerminal())
            {
                return status;
            }

            if (clock.Elapsed > TimeSpan.FromMinutes(30))
            {
                throw new BenchmarkFailedException($"job {jobId} did not end within 30 minutes");
            }

            if (seen is not null)
            {
                Collect(seen, await platform.GetCheckpointStatisticsAsync(jobId));
            }

            await Task.Delay(StatisticsPollInterval);
        }
    }

    private static void Collect(Dictionary<long, CheckpointStats> seen, CheckpointStatistics stats)
    {
        foreach (var checkpoint in stats.History.Where(c => c.Status != CheckpointStatus.InProgress))
        {
            seen[checkpoint.Id] = checkpoint;
        }
    }

    private async Task<(bool Ok, string Message)> VerifyAsync(PlatformClient platform, string jobId, JobStatusInfo status, bool expectRestart)
    {
        if (status.State != JobState.Finished)
        {
            return (false, $"job ended {status.State}: {status.Failure?.Describe()}");
        }

        if (status.Restarts != (expectRestart ? 1 : 0))
        {
            return (false, $"job restarted {status.Restarts} time(s), expected {(expectRestart ? 1 : 0)}: {status.RestartCauses.FirstOrDefault()?.Describe()}");
        }

        // After a restart the tasks' counters cover the last attempt only; the collected output proves the counts.
        if (!expectRestart)
        {
            var read = status.Tasks.Where(t => t.OperatorUids.Contains(SourceUid)).Sum(t => t.RecordsIn);
            var counted = status.Tasks.Where(t => t.OperatorUids.Contains(CountUid)).Sum(t => t.RecordsIn);
            if (read != settings.Records || counted != settings.Records)
            {
                return (false, $"sources read {read:N0} and the counting tasks consumed {counted:N0} records; expected {settings.Records:N0}");
            }
        }

        // ProbedCountPerKey emits a key when its count reaches the formula's value, and again if it passes it.
        var emitted = await platform.GetCollectedAsync<long>(jobId, SinkUid);
        var expected = Math.Min(settings.Records, settings.Keys);
        var keys = new HashSet<long>();
        foreach (var key in emitted)
        {
            var index = BenchKeys.IndexOf(key);
            if (index < 0 || index >= expected)
            {
                return (false, $"unexpected key {key} in the output");
            }

            if (!keys.Add(key))
            {
                return (false, $"key #{index} was counted more than {BenchKeys.ExpectedCount(index, settings.Records, settings.Keys)} times");
            }
        }

        return keys.Count == expected
            ? (true, $"all {expected:N0} keys counted exactly")
            : (false, $"only {keys.Count:N0} of {expected:N0} keys reached their expected count");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Recovery: a task fails once after checkpoints completed; from the failure until records flow again.

    private async Task<Recovery> RecoveryAsync(PlatformClient platform)
    {
        Console.WriteLine();
        Console.WriteLine("== recovery: the counting task fails once; the task and job manager warnings that follow are expected ==");
        CheckpointProbe.Reset();
        var parallelism = settings.Parallelism;

        // No delay: the recovery time should be the platform's, not a back-off we chose.
        var job = Job("bench-checkpointing-recovery", checkpoints: true, RestartStrategy.FixedDelayRestart(1, TimeSpan.Zero));
        var jobId = await platform.SubmitAsync(job);
        try
        {
            // Fail mid-run, once two checkpoints completed (so that the restore has real state to load).
            var clock = Stopwatch.StartNew();
            CheckpointStatistics stats;
            while ((stats = await platform.GetCheckpointStatisticsAsync(jobId)).Completed < 2)
            {
                var s = await platform.GetStatusAsync(jobId);
                if (s.State.IsTerminal() || clock.Elapsed > TimeSpan.FromMinutes(5))
                {
                    throw new BenchmarkFailedException($"the recovery job is {s.State} before two checkpoints completed ({stats.Completed}); use more --records");
                }

                await Task.Delay(50);
            }

            var checkpointedBefore = stats.LatestCompleted!.Id;
            CheckpointProbe.ArmFailure();
            await BenchJobs.WaitUntilAsync(platform, jobId, () => CheckpointProbe.FailedAt != 0, "the injected failure", TimeSpan.FromMinutes(2), allowRestart: true);
            var failedAt = CheckpointProbe.FailedAt;

            // A breakdown: when the job manager's status first shows the new attempt RUNNING (deployed and started; the
            // tasks restore after that). Its per-task record counts come with a task's final report only, so they cannot
            // show records flowing; the function's own first-record timestamps do.
            double? running = null;
            var waited = Stopwatch.StartNew();
            while (CheckpointProbe.FirstRecord.Count(r => r.Key.Attempt > 1) < parallelism)
            {
                if (waited.Elapsed > TimeSpan.FromMinutes(5))
                {
                    throw new BenchmarkFailedException($"records did not flow again within 5 minutes of the failure ({CheckpointProbe.FirstRecord.Count(r => r.Key.Attempt > 1)} of {parallelism} counting subtasks)");
                }

                if (running is null)
                {
                    var s = await platform.GetStatusAsync(jobId);
                    if (s.Attempt > 1 && s.State == JobState.Running)
                    {
                        running = Seconds(failedAt, Stopwatch.GetTimestamp());
                    }
                }

                await Task.Delay(10);
            }

            var perSubtask = CheckpointProbe.FirstRecord.Where(r => r.Key.Attempt > 1).OrderBy(r => r.Key.Subtask).Select(r => Seconds(failedAt, r.Value)).ToList();
            var status = await platform.WaitForCompletionAsync(jobId, TimeSpan.FromMinutes(30));
            var final = await platform.GetCheckpointStatisticsAsync(jobId);
            var (ok, message) = await VerifyAsync(platform, jobId, status, expectRestart: true);
            if (ok && (final.Restored != 1 || status.RestoredFromCheckpoint is not { } restored || restored < checkpointedBefore))
            {
                (ok, message) = (false, $"restored {final.Restored} time(s), from checkpoint {status.RestoredFromCheckpoint?.ToString() ?? "none"}; expected once, from {checkpointedBefore} or later");
            }

            var recovery = new Recovery(perSubtask.Max(), perSubtask, running, status.RestoredFromCheckpoint, ok, message);
            Console.WriteLine($"recovery:  {recovery.Seconds:F2} s from the failure until every counting subtask of the new attempt processed records " +
                              $"(per subtask {string.Join(", ", perSubtask.Select(s => $"{s:F2} s"))}; the job manager reported the new attempt RUNNING by {running?.ToString("F2") ?? "(not seen)"} s; " +
                              $"restored from checkpoint {status.RestoredFromCheckpoint}; {message})");
            if (!ok)
            {
                throw new BenchmarkFailedException($"the recovery run failed verification: {message}");
            }

            return recovery;
        }
        catch
        {
            await BenchJobs.TryCancelAsync(platform, jobId);
            throw;
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Report.

    private Result Summarize(List<Run> warmups, List<Run> timed, Recovery? recovery)
    {
        var on = timed.Where(r => r.Checkpoints).ToList();
        var off = timed.Where(r => !r.Checkpoints).ToList();
        var checkpoints = on.SelectMany(r => r.Completed).ToList();
        return new Result(
            warmups,
            on,
            off,
            Median(on.Select(r => r.SteadyRecordsPerSecond)) / Median(off.Select(r => r.SteadyRecordsPerSecond)),
            Median(on.Select(r => r.RecordsPerSecond)) / Median(off.Select(r => r.RecordsPerSecond)),
            Median(on.Select(r => r.RecordsPerCpuSecond)) / Median(off.Select(r => r.RecordsPerCpuSecond)),
            [.. checkpoints.Select(DurationMs)],
            [.. checkpoints.SelectMany(KeyedSyncMs)],
            [.. checkpoints.SelectMany(c => c.Subtasks).Select(s => s.SyncDuration.TotalMilliseconds)],
            [.. on.SelectMany(r => r.Meter.SyncMs)],
            [.. on.SelectMany(r => r.Meter.DurationMs)],
            recovery,
            timed.All(r => r.Verified) && warmups.All(r => r.Verified) && (recovery?.Verified ?? true));
    }

    private void Print(Result r)
    {
        Console.WriteLine();
        Console.WriteLine("RESULT");
        Console.WriteLine($"  throughputRatio          {r.ThroughputRatio,8:F3}   target ≥ {TargetThroughputRatio}: {Met(r.ThroughputRatio >= TargetThroughputRatio)}  " +
                          $"(steady state, median records/s with {Median(r.On.Select(x => x.SteadyRecordsPerSecond)):N0}, without {Median(r.Off.Select(x => x.SteadyRecordsPerSecond)):N0}; " +
                          $"submit to FINISHED {r.WallClockRatio:F3}; per CPU-second {r.CpuRatio:F3})");
        Console.WriteLine($"  checkpointDurationP50Ms  {Percentile(r.DurationsMs, 0.5),8:F1}");
        Console.WriteLine($"  checkpointDurationP99Ms  {Percentile(r.DurationsMs, 0.99),8:F1}   target < {TargetCheckpointP99Ms}: {Met(Percentile(r.DurationsMs, 0.99) < TargetCheckpointP99Ms)}  " +
                          $"({r.DurationsMs.Count} completed checkpoints of the timed runs; max {r.DurationsMs.DefaultIfEmpty(double.NaN).Max():F1} ms)");
        Console.WriteLine($"  syncPauseP99Ms           {Percentile(r.KeyedSyncMs, 0.99),8:F2}   target < {TargetSyncPauseP99Ms}: {Met(Percentile(r.KeyedSyncMs, 0.99) < TargetSyncPauseP99Ms)}  " +
                          $"({r.KeyedSyncMs.Count} keyed-subtask pauses; p50 {Percentile(r.KeyedSyncMs, 0.5):F2} ms, max {r.KeyedSyncMs.DefaultIfEmpty(double.NaN).Max():F2} ms; " +
                          $"meter, all subtasks: p99 {Percentile(r.MeterSyncMs, 0.99):F2} ms of {r.MeterSyncMs.Count})");
        Console.WriteLine($"  stateKeys                {settings.Keys,8:N0}");
        if (r.Recovery is { } recovery)
        {
            Console.WriteLine($"  recoverySeconds          {recovery.Seconds,8:F2}");
        }
    }

    private JsonObject ToJson(BenchSilo silo, Result r)
    {
        var p99 = Percentile(r.DurationsMs, 0.99);
        var syncP99 = Percentile(r.KeyedSyncMs, 0.99);
        var stateSizes = r.On.SelectMany(x => x.Completed).Select(c => c.StateSize).DefaultIfEmpty(0).ToList();
        return new JsonObject
        {
            ["benchmark"] = "checkpointing",
            ["timestamp"] = DateTimeOffset.UtcNow.ToString("O"),
            ["command"] = settings.CommandLine,
            ["throughputRatio"] = Math.Round(r.ThroughputRatio, 4),
            ["checkpointDurationP50Ms"] = Math.Round(Percentile(r.DurationsMs, 0.5), 1),
            ["checkpointDurationP99Ms"] = Math.Round(p99, 1),
            ["syncPauseP99Ms"] = Math.Round(syncP99, 3),
            ["stateKeys"] = settings.Keys,
            ["recoverySeconds"] = r.Recovery is null ? null : Math.Round(r.Recovery.Seconds, 3),
            ["targets"] = new JsonObject
            {
                ["throughputRatioAtLeast"] = TargetThroughputRatio,
                ["checkpointDurationP99MsBelow"] = TargetCheckpointP99Ms,
                ["syncPauseP99MsBelow"] = TargetSyncPauseP99Ms,
                ["throughputRatioMet"] = r.ThroughputRatio >= TargetThroughputRatio,
                ["checkpointDurationP99Met"] = p99 < TargetCheckpointP99Ms,
                ["syncPauseP99Met"] = syncP99 < TargetSyncPauseP99Ms,
            },
            ["settings"] = new JsonObject
            {
                ["records"] = settings.Records,
                ["keys"] = settings.Keys,
                ["parallelism"] = settings.Parallelism,
                ["stateBackend"] = Name(settings.Backend),
                ["runs"] = settings.Runs,
                ["warmupRuns"] = settings.WarmupRuns,
                ["checkpointIntervalSeconds"] = settings.CheckpointInterval.TotalSeconds,
                ["checkpointingMode"] = "ExactlyOnce",
                ["checkpointStorage"] = "FileSystem (local temp directory)",
                ["batchSize"] = silo.Options.BatchSize,
                ["channelWindow"] = silo.Options.ChannelWindow,
            },
            ["method"] = new JsonObject
            {
                ["throughputRatio"] = $"steady state: median records/s of the timed runs with checkpoints over the median of those without, each run's rate taken between the moments the counting subtasks had processed {ProgressSampler.WindowStart:P0} and {ProgressSampler.WindowEnd:P0} of the records (a shared counter published every {CheckpointProbe.ProcessedStep} records per subtask, sampled every {ProgressSampler.Interval.TotalMilliseconds} ms), so deployment, start-up and the end of input are outside the window; runs interleaved (off on, on off, ...) after warm-ups of each, one process",
                ["wallClockThroughputRatio"] = "the same with each run's records over its submit-to-FINISHED time",
                ["cpuThroughputRatio"] = "the same with records per CPU-second of this process",
                ["checkpointDuration"] = "EndToEndDuration (trigger to completion) of every completed checkpoint of the timed runs with checkpoints, from the coordinator's statistics polled every 250 ms (each run checks that the polls saw as many as the coordinator completed)",
                ["syncPause"] = "SyncDuration of the counting (keyed, stateful) subtasks in every completed checkpoint of the timed runs; syncPauseAllSubtasks adds the sources; meter.syncP99Ms is the meter Platform.Streaming's platform.checkpoint.sync histogram over the same runs (all subtasks, every snapshot taken, in-process MeterListener)",
                ["recoverySeconds"] = "an armed switch makes the counting function throw once, on a record that does not complete its key, after two checkpoints completed (restart strategy: fixed delay 0). Start: the throw. End: the last counting subtask of the new attempt processes its first record (records flowing again; the job manager's per-task record counts arrive with a task's final report only, so they cannot serve). The job then finishes and must have counted every key exactly",
            },
            ["throughput"] = new JsonObject
            {
                ["withCheckpointsSteadyRecordsPerSecond"] = Math.Round(Median(r.On.Select(x => x.SteadyRecordsPerSecond))),
                ["withoutCheckpointsSteadyRecordsPerSecond"] = Math.Round(Median(r.Off.Select(x => x.SteadyRecordsPerSecond))),
                ["wallClockThroughputRatio"] = Math.Round(r.WallClockRatio, 4),
                ["withCheckpointsRecordsPerSecond"] = Math.Round(Median(r.On.Select(x => x.RecordsPerSecond))),
                ["withoutCheckpointsRecordsPerSecond"] = Math.Round(Median(r.Off.Select(x => x.RecordsPerSecond))),
                ["withCheckpointsRecordsPerCpuSecond"] = Math.Round(Median(r.On.Select(x => x.RecordsPerCpuSecond))),
                ["withoutCheckpointsRecordsPerCpuSecond"] = Math.Round(Median(r.Off.Select(x => x.RecordsPerCpuSecond))),
                ["cpuThroughputRatio"] = Math.Round(r.CpuRatio, 4),
                ["ratioPerRound"] = new JsonArray([.. r.On.Zip(r.Off, (a, b) => (JsonNode)Math.Round(a.SteadyRecordsPerSecond / b.SteadyRecordsPerSecond, 4))]),
                ["wallClockRatioPerRound"] = new JsonArray([.. r.On.Zip(r.Off, (a, b) => (JsonNode)Math.Round(a.RecordsPerSecond / b.RecordsPerSecond, 4))]),
            },
            ["checkpoints"] = new JsonObject
            {
                ["completed"] = r.DurationsMs.Count,
                ["failed"] = r.On.Sum(x => x.Failed.Count),
                ["failureReasons"] = new JsonArray([.. r.On.SelectMany(x => x.Failed).Select(f => f.FailureReason ?? "(no reason)").Distinct().Select(f => (JsonNode)f)]),
                ["durationMaxMs"] = Math.Round(r.DurationsMs.DefaultIfEmpty(double.NaN).Max(), 1),
                ["durationMeanMs"] = Math.Round(r.DurationsMs.DefaultIfEmpty(double.NaN).Average(), 1),
                ["stateSizeMaxBytes"] = stateSizes.Max(),
                ["syncPauseKeyedP50Ms"] = Math.Round(Percentile(r.KeyedSyncMs, 0.5), 3),
                ["syncPauseKeyedMaxMs"] = Math.Round(r.KeyedSyncMs.DefaultIfEmpty(double.NaN).Max(), 3),
                ["syncPauseKeyedSamples"] = r.KeyedSyncMs.Count,
                ["syncPauseAllSubtasksP99Ms"] = Math.Round(Percentile(r.AllSyncMs, 0.99), 3),
                ["asyncKeyedP50Ms"] = Math.Round(Percentile(r.On.SelectMany(x => x.Completed).SelectMany(c => c.Subtasks).Where(IsKeyed).Select(s => s.AsyncDuration.TotalMilliseconds), 0.5), 1),
                ["asyncKeyedP99Ms"] = Math.Round(Percentile(r.On.SelectMany(x => x.Completed).SelectMany(c => c.Subtasks).Where(IsKeyed).Select(s => s.AsyncDuration.TotalMilliseconds), 0.99), 1),
                ["alignmentKeyedP99Ms"] = Math.Round(Percentile(r.On.SelectMany(x => x.Completed).SelectMany(c => c.Subtasks).Where(IsKeyed).Select(s => s.AlignmentDuration.TotalMilliseconds), 0.99), 1),
                ["meter"] = new JsonObject
                {
                    ["syncSamples"] = r.MeterSyncMs.Count,
                    ["syncP99Ms"] = Math.Round(Percentile(r.MeterSyncMs, 0.99), 3),
                    ["syncMaxMs"] = Math.Round(r.MeterSyncMs.DefaultIfEmpty(double.NaN).Max(), 3),
                    ["durationSamples"] = r.MeterDurationMs.Count,
                    ["durationP99Ms"] = Math.Round(Percentile(r.MeterDurationMs, 0.99), 1),
                },
            },
            ["recovery"] = r.Recovery is not { } recovery ? null : new JsonObject
            {
                ["seconds"] = Math.Round(recovery.Seconds, 3),
                ["perSubtaskSeconds"] = new JsonArray([.. recovery.PerSubtask.Select(s => (JsonNode)Math.Round(s, 3))]),
                ["jobManagerReportedRunningBySeconds"] = recovery.RunningSeconds is { } f ? Math.Round(f, 3) : null,
                ["restoredFromCheckpoint"] = recovery.RestoredFrom,
                ["verification"] = recovery.Verification,
            },
            ["runs"] = new JsonArray([.. r.On.Concat(r.Off).Select(RunJson)]),
            ["warmupRuns"] = new JsonArray([.. r.Warmups.Select(RunJson)]),
            ["verified"] = r.Verified,
            ["machine"] = BenchEnvironment.MachineJson(),
        };
    }

    private static JsonNode RunJson(Run r) => new JsonObject
    {
        ["label"] = r.Label,
        ["checkpoints"] = r.Checkpoints,
        ["records"] = r.Records,
        ["wallSeconds"] = Math.Round(r.WallSeconds, 3),
        ["steadyWindowSeconds"] = Math.Round(r.Steady.Seconds, 3),
        ["steadyRecordsPerSecond"] = Math.Round(r.SteadyRecordsPerSecond),
        ["cpuSeconds"] = Math.Round(r.CpuSeconds, 3),
        ["recordsPerSecond"] = Math.Round(r.RecordsPerSecond),
        ["recordsPerCpuSecond"] = Math.Round(r.RecordsPerCpuSecond),
        ["checkpointsCompleted"] = r.Completed.Count,
        ["checkpointsFailed"] = r.Failed.Count,
        ["checkpointDurationsMs"] = new JsonArray([.. r.Completed.Select(c => (JsonNode)Math.Round(DurationMs(c), 1))]),
        ["keyedSyncMaxMsPerCheckpoint"] = new JsonArray([.. r.Completed.Select(c => (JsonNode)Math.Round(KeyedSyncMs(c).DefaultIfEmpty(0).Max(), 3))]),
        ["keyedAsyncMaxMsPerCheckpoint"] = new JsonArray([.. r.Completed.Select(c => (JsonNode)Math.Round(c.Subtasks.Where(IsKeyed).Select(s => s.AsyncDuration.TotalMilliseconds).DefaultIfEmpty(0).Max(), 1))]),
        ["otherProcessesCpuSeconds"] = r.OthersCpuSeconds is { } o ? Math.Round(o, 3) : null,
        ["gcPauseSeconds"] = Math.Round(r.Gc.PauseSeconds, 3),
        ["gcCollections"] = new JsonObject { ["gen0"] = r.Gc.Gen0, ["gen1"] = r.Gc.Gen1, ["gen2"] = r.Gc.Gen2 },
        ["allocatedMiB"] = Math.Round(r.Gc.AllocatedBytes / 1048576.0, 1),
        ["verification"] = r.Verification,
    };

    private static bool IsKeyed(SubtaskCheckpointStats s) => s.TaskName.Contains(CountUid, StringComparison.Ordinal);

    private static double DurationMs(CheckpointStats c) => c.EndToEndDuration?.TotalMilliseconds ?? double.NaN;

    private static IEnumerable<double> KeyedSyncMs(CheckpointStats c) => c.Subtasks.Where(IsKeyed).Select(s => s.SyncDuration.TotalMilliseconds);

    // Nearest rank: the smallest sample with at least p of the samples at or below it.
    private static double Percentile(IEnumerable<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN
            : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2]
            : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static double Seconds(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalSeconds;

    private static string Name(StateBackendKind backend) => backend == StateBackendKind.Heap ? "heap" : "RocksDB";

    private static string Met(bool met) => met ? "met" : "NOT met";

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

    /// <summary>The process's garbage collections: pauses, collections per generation and bytes allocated.</summary>
    private readonly record struct GcCounters(double PauseSeconds, int Gen0, int Gen1, int Gen2, long AllocatedBytes)
    {
        public static GcCounters Now() => new(
            GC.GetTotalPauseDuration().TotalSeconds, GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalAllocatedBytes());

        public static GcCounters operator -(GcCounters a, GcCounters b) =>
            new(a.PauseSeconds - b.PauseSeconds, a.Gen0 - b.Gen0, a.Gen1 - b.Gen1, a.Gen2 - b.Gen2, a.AllocatedBytes - b.AllocatedBytes);
    }

    private sealed record Run(
        bool Checkpoints,
        string Label,
        long Records,
        double WallSeconds,
        SteadyWindow Steady,
        double CpuSeconds,
        double? OthersCpuSeconds,
        List<CheckpointStats> Completed,
        List<CheckpointStats> Failed,
        MeterSamples.Window Meter,
        GcCounters Gc,
        bool Verified,
        string Verification)
    {
        public double RecordsPerSecond => Records / WallSeconds;

        public double SteadyRecordsPerSecond => Steady.RecordsPerSecond;

        public double RecordsPerCpuSecond => Records / CpuSeconds;
    }

    private sealed record Recovery(double Seconds, List<double> PerSubtask, double? RunningSeconds, long? RestoredFrom, bool Verified, string Verification);

    private sealed record Result(
        List<Run> Warmups,
        List<Run> On,
        List<Run> Off,
        double ThroughputRatio,
        double WallClockRatio,
        double CpuRatio,
        List<double> DurationsMs,
        List<double> KeyedSyncMs,
        List<double> AllSyncMs,
        List<double> MeterSyncMs,
        List<double> MeterDurationMs,
        Recovery? Recovery,
        bool Verified);
}

/// <summary>
/// The meter <c>Platform.Streaming</c>'s snapshot pauses and checkpoint durations, in process, between
/// <see cref="Start"/> and <see cref="Stop"/> (the silo runs in the benchmark's process; one job at a time).
/// </summary>
internal sealed class MeterSamples : IDisposable
{
    private readonly MeterListener _listener = new();
    private ConcurrentQueue<double> _sync = new();
    private ConcurrentQueue<double> _duration = new();

    public MeterSamples()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == PlatformTelemetry.MeterName && instrument.Name is "platform.checkpoint.sync" or "platform.checkpoint.duration")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<double>((instrument, value, _, _) =>
            (instrument.Name == "platform.checkpoint.sync" ? Volatile.Read(ref _sync) : Volatile.Read(ref _duration)).Enqueue(value));
        _listener.Start();
    }

    /// <summary>Starts a new window of samples.</summary>
    public void Start()
    {
        Volatile.Write(ref _sync, new ConcurrentQueue<double>());
        Volatile.Write(ref _duration, new ConcurrentQueue<double>());
    }

    /// <summary>The samples since <see cref="Start"/>.</summary>
    public Window Stop() => new([.. Volatile.Read(ref _sync)], [.. Volatile.Read(ref _duration)]);

    public void Dispose() => _listener.Dispose();

    /// <summary>Samples of one window, in milliseconds.</summary>
    public sealed record Window(List<double> SyncMs, List<double> DurationMs);
}

/// <summary>The rate of a run between two fractions of its records, away from its start-up and its end.</summary>
internal sealed record SteadyWindow(long Records, double Seconds)
{
    public double RecordsPerSecond => Records / Seconds;
}

/// <summary>
/// Samples <see cref="CheckpointProbe.Processed"/> during a run, to measure its steady-state rate: between the moments
/// the counting subtasks had processed <see cref="WindowStart"/> and <see cref="WindowEnd"/> of the records.
/// </summary>
internal sealed class ProgressSampler : IDisposable
{
    public const double WindowStart = 0.1;
    public const double WindowEnd = 0.9;
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(5);

    private readonly List<(long Timestamp, long Processed)> _samples = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private ProgressSampler() => _loop = Task.Run(LoopAsync);

    public static ProgressSampler Start() => new();

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            _samples.Add((Stopwatch.GetTimestamp(), CheckpointProbe.Processed));
            try
            {
                await Task.Delay(Interval, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>Stops sampling and returns the window of a run of <paramref name="records"/> records.</summary>
    public async Task<SteadyWindow> StopAsync(long records)
    {
        await _stop.CancelAsync();
        await _loop;
        var start = (long)(records * WindowStart);
        var end = (long)(records * WindowEnd);
        var seconds = Stopwatch.GetElapsedTime(Crossing(start), Crossing(end)).TotalSeconds;
        return new SteadyWindow(end - start, seconds);
    }

    // When the processed count reached `threshold`, interpolated between the samples on either side.
    private long Crossing(long threshold)
    {
        var after = _samples.FindIndex(s => s.Processed >= threshold);
        if (after <= 0)
        {
            throw new BenchmarkFailedException($"the run's progress samples never crossed {threshold:N0} records (saw {_samples.LastOrDefault().Processed:N0} in {_samples.Count} samples)");
        }

        var (t0, p0) = _samples[after - 1];
        var (t1, p1) = _samples[after];
        return t0 + (long)((t1 - t0) * (double)(threshold - p0) / (p1 - p0));
    }

    // Only cancels: a run that failed leaves the loop to end by itself (the source has no timer to release).
    public void Dispose() => _stop.Cancel();
}
