using System.Diagnostics;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Platform.Benchmarks.StateBackends;
using Platform.Checkpointing;
using Platform.Client;
using Platform.Connectors;
using Platform.Graph;
using Platform.Runtime;
using Platform.State;

namespace Platform.Benchmarks.Savepoints;

/// <summary>Settings of the savepoints benchmark.</summary>
internal sealed record SavepointsSettings
{
    public string? JsonPath { get; init; }
    public long Keys { get; init; } = 10_000_000;
    public int ValueBytes { get; init; } = 100;
    public int Parallelism { get; init; } = 2;
    public int RescaleParallelism { get; init; } = 4;
    public double ChangedFraction { get; init; } = 0.01;
    public long SampleKeys { get; init; } = 20_000;
    public double UpdateSeconds { get; init; } = 4;
    public bool NoSettle { get; init; }
    public bool SkipNativeRestore { get; init; }
    public string? TempDirectory { get; init; }
    public string CommandLine { get; init; } = "";

    public long ChangedKeys => Math.Max(1, (long)Math.Round(Keys * ChangedFraction));
}

/// <summary>
/// Savepoints of a big RocksDB state: a job loads the keys, takes a portable and a native savepoint, and is stopped
/// with a savepoint while updates flow; the stopped job resumes at a higher parallelism of its keyed operator, and
/// new jobs resume from the two earlier savepoints at the same parallelism. Every resumed job checks the state it reads.
/// </summary>
internal sealed class SavepointsBenchmark(SavepointsSettings settings)
{
    private const string SourceUid = "sequence";
    private const string KeyedUid = "value-per-key";

    private readonly string _root = Path.Combine(settings.TempDirectory ?? Path.GetTempPath(), $"platform-bench-savepoints-{Guid.NewGuid():N}");
    private readonly List<string> _problems = [];

    private string CheckpointDirectory => Path.Combine(_root, "checkpoints");

    private string RocksDbDirectory => Path.Combine(_root, "rocksdb");

    private long End => settings.Keys + (2 * settings.ChangedKeys) + settings.SampleKeys;

    public async Task<int> RunAsync()
    {
        Console.WriteLine($"savepoints: {settings.Keys:N0} keys × {settings.ValueBytes} B on RocksDB, parallelism {settings.Parallelism} → {settings.RescaleParallelism} " +
                          $"(sources at {settings.Parallelism}); {settings.ChangedKeys:N0} keys updated across the stop, {settings.SampleKeys:N0} sampled after each restore");
        Console.WriteLine($"machine: {Environment.ProcessorCount} logical CPUs ({BenchEnvironment.CpuModel()}), {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}; " +
                          $"load average {LoadAverage() ?? "unknown"}; working directory {_root}");

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
                    o.SavepointDirectory = Path.Combine(_root, "savepoints");
                    o.RocksDb.LocalDirectory = RocksDbDirectory;
                },
                configureLogging: logging =>
                {
                    logging.AddProvider(restoreLog);
                    logging.AddFilter<RestoreLogCapture>(RestoreLogCapture.Category, LogLevel.Information);
                });
            Console.WriteLine($"silo started in {startup.Elapsed.TotalSeconds:F1} s");
            var platform = new PlatformClient(silo.Client);

            var result = await RunJobsAsync(platform, restoreLog);

            // A job manager releases its task grains just after the job ends; stopping the silo in the middle of that
            // only fills the console with placement errors.
            await Task.Delay(TimeSpan.FromSeconds(2));

            foreach (var problem in _problems)
            {
                Console.Error.WriteLine($"PROBLEM: {problem}");
            }

            PrintSummary(result);
            if (settings.JsonPath is { } path)
            {
                var full = Path.GetFullPath(path);
                Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                await File.WriteAllTextAsync(full, ToJson(silo, result).ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
                Console.WriteLine($"JSON written to {full}");
            }

            return _problems.Count == 0 ? 0 : 2;
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

    private StreamJobBuilder Job(string name, int keyedParallelism, bool samplesOnly, long end, SavepointInfo? from)
    {
        var job = new StreamJobBuilder(name)
        {
            DefaultParallelism = keyedParallelism,
            StateBackend = StateBackendKind.RocksDb,
            RestoreFrom = from is null ? null : new RestoreSettings { Path = from.Path },

            // Savepoints need checkpointing settings; no periodic checkpoints, so that only the measured snapshots run.
            Checkpointing = new CheckpointingSettings
            {
                Interval = null,
                Storage = CheckpointStorageKind.FileSystem,
                Directory = CheckpointDirectory,
                Timeout = TimeSpan.FromMinutes(30),
            },
            RestartStrategy = RestartStrategy.NoRestart,
        };

        // Sources keep their parallelism (each subtask resumes its own offset); only the keyed operator is rescaled.
        job.AddSource(new BigStateSource { End = end }, "sequence").Uid(SourceUid).SetParallelism(settings.Parallelism)
            .KeyBy(new SavepointKey { BigKeys = settings.Keys, ChangedKeys = settings.ChangedKeys, SamplesOnly = samplesOnly })
            .Process(new SavepointedValuePerKey { BigKeys = settings.Keys, ChangedKeys = settings.ChangedKeys, ValueBytes = settings.ValueBytes, SamplesOnly = samplesOnly }, "value-per-key").Uid(KeyedUid)
            .SinkTo(new DiscardingSink<long>(), "discard").Uid("discard");
        return job;
    }

    private async Task<Result> RunJobsAsync(PlatformClient platform, RestoreLogCapture restoreLog)
    {
        var keys = settings.Keys;
        SavepointProbe.Clear();

        // 1. The original job loads the state.
        Console.WriteLine();
        Console.WriteLine($"== Load: {keys:N0} keys, parallelism {settings.Parallelism} ==");
        BigStateProbe.Reset(released: keys);
        GC.Collect();
        var loadStart = Mark.Now();
        var original = await platform.SubmitAsync(Job("bench-savepoints-original", settings.Parallelism, samplesOnly: false, End, from: null));
        var originalProbe = SavepointProbe.For(original);
        try
        {
            await BenchJobs.WaitUntilAsync(platform, original, () => originalProbe.Loaded >= keys, $"loading {keys:N0} keys", TimeSpan.FromMinutes(60), progress: () => originalProbe.Loaded);
            var load = loadStart.Until(Mark.Now());
            Console.WriteLine($"load:        {keys:N0} keys in {load.Seconds:F1} s ({keys / load.Seconds:N0} records/s, {load.CpuSeconds:F1} CPU-s)");
            Check(originalProbe.LoadedOverExisting == 0, $"{originalProbe.LoadedOverExisting:N0} load records found a value already there");
            var localAfterLoad = BenchEnvironment.DirectoryBytes(RocksDbDirectory);

            // A load at full speed leaves RocksDB compactions behind; settled, the savepoints do not compete with them.
            double? settled = null;
            if (!settings.NoSettle)
            {
                settled = (await BenchJobs.SettleCompactionsAsync(RocksDbDirectory)).TotalSeconds;
                Console.WriteLine($"settled:     RocksDB's SST files unchanged for 3 s (waited {settled:F1} s)");
            }

            // 2. Savepoints of the running job, portable (the default) and native.
            Console.WriteLine();
            Console.WriteLine("== Savepoints of the running job ==");
            var portable = await SavepointAsync(platform, original, SavepointFormat.Portable);
            var native = await SavepointAsync(platform, original, SavepointFormat.Native);

            // 3. Stop with a savepoint while updates flow, then resume at the higher parallelism.
            Console.WriteLine();
            Console.WriteLine($"== Rescale: stop with a savepoint, resume at parallelism {settings.RescaleParallelism} ==");
            var rescale = await RescaleAsync(platform, original, originalProbe, restoreLog);

            // 4. New jobs from the savepoints of step 2, at the same parallelism.
            Console.WriteLine();
            Console.WriteLine($"== Restore at parallelism {settings.Parallelism} ==");
            var restore = await RestoreAsync(platform, portable, "portable", restoreLog);
            var nativeRestore = settings.SkipNativeRestore ? null : await RestoreAsync(platform, native, "native", restoreLog);

            return new Result(load, localAfterLoad, settled, portable, native, rescale, restore, nativeRestore, BenchEnvironment.PeakWorkingSet());
        }
        catch
        {
            // A no-op once the job was stopped.
            await BenchJobs.TryCancelAsync(platform, original);
            throw;
        }
    }

    private async Task<SavepointRun> SavepointAsync(PlatformClient platform, string jobId, SavepointFormat format)
    {
        var start = Mark.Now();
        var info = await platform.TriggerSavepointAsync(jobId, new SavepointRequest { Format = format }, TimeSpan.FromMinutes(30));
        var interval = start.Until(Mark.Now());
        var run = await DescribeSavepointAsync(platform, jobId, format, info, interval);
        Console.WriteLine($"{Name(format),-8} savepoint: {run.Interval.Seconds:F2} s ({run.EndToEndSeconds:F2} s from trigger to completion at the coordinator; " +
                          $"subtasks sync ≤{run.MaxSyncSeconds * 1000:F0} ms, async ≤{run.MaxAsyncSeconds:F2} s), {BenchJobs.Bytes(info.Size)} of state, " +
                          $"{BenchJobs.Bytes(run.BytesOnDisk)} in {run.Files} files, {run.Interval.CpuSeconds:F1} CPU-s{Others(run.Interval)}");
        return run;
    }

    private static async Task<SavepointRun> DescribeSavepointAsync(PlatformClient platform, string jobId, SavepointFormat format, SavepointInfo info, Interval interval)
    {
        // The coordinator's own figures for the savepoint, if it still has them (a stopped job's coordinator may be gone).
        CheckpointStats? stats = null;
        try
        {
            stats = (await platform.GetCheckpointStatisticsAsync(jobId)).History.FirstOrDefault(c => c.Id == info.CheckpointId);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Console.WriteLine($"(no statistics for savepoint {info.CheckpointId}: {ex.Message})");
        }

        var files = Directory.Exists(info.Path) ? Directory.EnumerateFiles(info.Path, "*", SearchOption.AllDirectories).Count() : 0;
        return new SavepointRun(
            format,
            info,
            interval,
            stats?.EndToEndDuration?.TotalSeconds,
            stats is null || stats.Subtasks.Count == 0 ? 0 : stats.Subtasks.Max(s => s.SyncDuration.TotalSeconds),
            stats is null || stats.Subtasks.Count == 0 ? 0 : stats.Subtasks.Max(s => s.AsyncDuration.TotalSeconds),
            BenchEnvironment.DirectoryBytes(info.Path),
            files);
    }

    private async Task<RescaleRun> RescaleAsync(PlatformClient platform, string original, SavepointProbe originalProbe, RestoreLogCapture restoreLog)
    {
        var keys = settings.Keys;
        var changed = settings.ChangedKeys;
        var to = settings.RescaleParallelism;

        // Updates are paced so that records are flowing when the stop comes (half of them are processed by then).
        var rate = changed / settings.UpdateSeconds;
        using var pacing = new CancellationTokenSource();
        var pacer = PaceAsync(keys, keys + changed, rate, pacing.Token);
        try
        {
            await BenchJobs.WaitUntilAsync(platform, original, () => originalProbe.Updated >= Math.Max(1, changed / 2), "half of the updates", TimeSpan.FromMinutes(10));

            var stop = Mark.Now();
            var stopSavepoint = await platform.StopWithSavepointAsync(original, timeout: TimeSpan.FromMinutes(30));
            var stopped = Mark.Now();
            var stopRun = await DescribeSavepointAsync(platform, original, SavepointFormat.Portable, stopSavepoint, stop.Until(stopped));
            var originalStatus = await platform.GetStatusAsync(original);
            var updatesBeforeStop = originalProbe.Updated;
            Console.WriteLine($"stop:        {stopRun.Interval.Seconds:F2} s from the stop request until the job FINISHED ({stopRun.EndToEndSeconds:F2} s savepoint at the coordinator, " +
                              $"{BenchJobs.Bytes(stopSavepoint.Size)} of state); {updatesBeforeStop:N0} of {changed:N0} updates before the stop{Others(stopRun.Interval)}");

            // Resume at the higher parallelism from the stop's savepoint.
            restoreLog.Restored.Clear();
            var submit = Mark.Now();
            var rescaled = await platform.SubmitAsync(Job("bench-savepoints-rescaled", to, samplesOnly: false, End, stopSavepoint));
            var submitted = Stopwatch.GetTimestamp();
            var probe = SavepointProbe.For(rescaled);
            try
            {
                await BenchJobs.WaitUntilAsync(platform, rescaled, () => probe.Opened.Count >= to, "the rescaled subtasks to restore", TimeSpan.FromMinutes(30));
                await BenchJobs.WaitUntilAsync(platform, rescaled, () => !probe.FirstRecord.IsEmpty, "the rescaled job's first record", TimeSpan.FromMinutes(10));

                // Checks follow the updates only once all are done: a check of a key must not overtake its update.
                await BenchJobs.WaitUntilAsync(
                    platform, rescaled, () => updatesBeforeStop + probe.Updated >= changed,
                    $"the rest of the {changed:N0} updates (an update lost at the stop never comes)", TimeSpan.FromSeconds(settings.UpdateSeconds) + TimeSpan.FromMinutes(2));
                await pacing.CancelAsync();
                BigStateProbe.Released = long.MaxValue;
                var status = await platform.WaitForCompletionAsync(rescaled, TimeSpan.FromMinutes(30));
                var rescaleInterval = stop.Until(Mark.Now());

                var opened = probe.Opened.OrderBy(o => o.Key).Select(o => Seconds(submit.Timestamp, o.Value)).ToList();
                var firsts = probe.FirstRecord.OrderBy(f => f.Key).Select(f => Seconds(stop.Timestamp, f.Value)).ToList();
                var logged = LoggedSince(restoreLog, submit.Timestamp);
                var restoredAt = probe.Opened.Values.Max();
                var firstRecordAt = probe.FirstRecord.Values.Min();
                var run = new RescaleRun(
                    stopRun,
                    Seconds(stop.Timestamp, firstRecordAt),
                    probe.FirstRecord.Count == to ? Seconds(stop.Timestamp, probe.FirstRecord.Values.Max()) : null,
                    Seconds(stopped.Timestamp, submit.Timestamp),
                    Seconds(submit.Timestamp, submitted),
                    Seconds(submit.Timestamp, restoredAt),
                    Seconds(restoredAt, firstRecordAt),
                    opened,
                    firsts,
                    logged,
                    SourcesStarted(submit.Timestamp),
                    updatesBeforeStop,
                    probe.Updated,
                    originalProbe.UpdatedWrong + probe.UpdatedWrong,
                    probe.CheckedUpdated,
                    probe.CheckedUpdatedWrong,
                    probe.Sampled,
                    probe.SampledWrong,
                    rescaleInterval);

                // Nothing lost or repeated: the two jobs' sources read the whole sequence once between them, every
                // update found the loaded value (a repeated one would find its own), and every updated key holds it.
                Check(originalStatus.State == JobState.Finished, $"the stopped job is {originalStatus.State}, not FINISHED");
                CheckFinished(status, stopSavepoint, "rescaled");
                Check(probe.Loaded == 0, $"the rescaled job loaded {probe.Loaded:N0} keys again (its sources did not resume at the savepoint's offsets)");
                Check(run.UpdatesBeforeStop + run.UpdatesAfterRestore == changed, $"{run.UpdatesBeforeStop:N0} updates before the stop and {run.UpdatesAfterRestore:N0} after: expected {changed:N0} in all");
                Check(run.UpdatesWrong == 0, $"{run.UpdatesWrong:N0} updates did not find the loaded value (repeated or lost state); first: {originalProbe.FirstWrong(SavepointLayout.Kind.Update) ?? probe.FirstWrong(SavepointLayout.Kind.Update)}");
                Check(run.UpdatedChecked == changed && run.UpdatedLost == 0, $"{run.UpdatedLost:N0} of {run.UpdatedChecked:N0} updated keys (expected {changed:N0}) did not hold the update; first: {probe.FirstWrong(SavepointLayout.Kind.CheckUpdated)}");
                Check(run.Sampled == settings.SampleKeys && run.SampledWrong == 0, $"{run.SampledWrong:N0} of {run.Sampled:N0} sampled keys (expected {settings.SampleKeys:N0}) had a wrong value; first: {probe.FirstWrong(SavepointLayout.Kind.Sample)}");
                var read = RecordsIn(originalStatus, SourceUid) + RecordsIn(status, SourceUid);
                var processed = RecordsIn(originalStatus, KeyedUid) + RecordsIn(status, KeyedUid);
                Check(read == End && processed == End, $"the sources of the two jobs read {read:N0} records and their keyed subtasks took {processed:N0}; expected {End:N0} each");
                Check(logged.Count >= to, $"only {logged.Count} of {to} rescaled subtasks logged a restore");

                Console.WriteLine($"rescale:     {run.Seconds:F2} s from the stop request to the first record of the job at parallelism {to} " +
                                  $"(stop {stopRun.Interval.Seconds:F2} s, then submit → restored {run.SubmitToRestoredSeconds:F2} s [subtasks {Join(opened)}; logged {Join(logged)}], " +
                                  $"restored → first record {run.RestoredToFirstRecordSeconds:F2} s; every subtask processing at {run.AllSubtasksSeconds?.ToString("F2") ?? "–"} s)");
                Console.WriteLine($"checked:     {run.UpdatesBeforeStop:N0} + {run.UpdatesAfterRestore:N0} updates, {run.UpdatesWrong} wrong; {run.UpdatedChecked:N0} updated keys, {run.UpdatedLost} lost; " +
                                  $"{run.Sampled:N0} samples, {run.SampledWrong} wrong; {read:N0} records read by the two jobs' sources (expected {End:N0})");
                return run;
            }
            catch
            {
                await BenchJobs.TryCancelAsync(platform, rescaled);
                throw;
            }
        }
        finally
        {
            await pacing.CancelAsync();
            await pacer;
        }
    }

    // Raises the sources' limit from `from` to `to` at `rate` records per second.
    private static async Task PaceAsync(long from, long to, double rate, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            while (!cancellation.IsCancellationRequested)
            {
                var limit = Math.Min(to, from + (long)(rate * clock.Elapsed.TotalSeconds));
                BigStateProbe.Released = Math.Max(BigStateProbe.Released, limit);
                if (limit >= to)
                {
                    return;
                }

                await Task.Delay(10, cancellation);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task<RestoreRun> RestoreAsync(PlatformClient platform, SavepointRun from, string label, RestoreLogCapture restoreLog)
    {
        var parallelism = settings.Parallelism;
        restoreLog.Restored.Clear();

        // The samples are there from the start, as a backlog is when a job resumes.
        BigStateProbe.Released = long.MaxValue;
        var submit = Mark.Now();
        var jobId = await platform.SubmitAsync(Job($"bench-savepoints-restored-{label}", parallelism, samplesOnly: true, settings.Keys + settings.SampleKeys, from.Info));
        var submitted = Stopwatch.GetTimestamp();
        var probe = SavepointProbe.For(jobId);
        try
        {
            await BenchJobs.WaitUntilAsync(platform, jobId, () => probe.Opened.Count >= parallelism, $"the subtasks restoring the {label} savepoint", TimeSpan.FromMinutes(30));
            var interval = submit.Until(Mark.Now());
            var status = await platform.WaitForCompletionAsync(jobId, TimeSpan.FromMinutes(30));
            var opened = probe.Opened.OrderBy(o => o.Key).Select(o => Seconds(submit.Timestamp, o.Value)).ToList();
            var logged = LoggedSince(restoreLog, submit.Timestamp);
            var run = new RestoreRun(
                label,
                opened.Max(),
                Seconds(submit.Timestamp, submitted),
                opened,
                logged,
                SourcesStarted(submit.Timestamp),
                probe.FirstRecord.IsEmpty ? null : Seconds(submit.Timestamp, probe.FirstRecord.Values.Min()),
                probe.Sampled,
                probe.SampledWrong,
                status.RestoredFromCheckpoint,
                interval);

            CheckFinished(status, from.Info, $"restored ({label})");
            Check(probe.Loaded + probe.Updated + probe.CheckedUpdated == 0, $"the job restored from the {label} savepoint replayed records from before it");
            Check(run.Sampled == settings.SampleKeys && run.SampledWrong == 0,
                $"{run.SampledWrong:N0} of {run.Sampled:N0} keys sampled after restoring the {label} savepoint (expected {settings.SampleKeys:N0}) had a wrong value; first: {probe.FirstWrong(SavepointLayout.Kind.Sample)}");
            Check(RecordsIn(status, SourceUid) == settings.SampleKeys, $"the job restored from the {label} savepoint read {RecordsIn(status, SourceUid):N0} records; expected {settings.SampleKeys:N0}");
            Check(logged.Count >= parallelism, $"only {logged.Count} of {parallelism} subtasks logged restoring the {label} savepoint");
            Console.WriteLine($"{label,-8} restore: {run.Seconds:F2} s from submit until every keyed subtask ran on restored state (subtasks {Join(opened)}; logged {Join(logged)}; " +
                              $"submit call {run.SubmitCallSeconds:F2} s; sources started at {run.SourcesStartedSeconds?.ToString("F2") ?? "–"} s); " +
                              $"{run.Sampled:N0} sampled keys checked, {run.SampledWrong} wrong; {interval.CpuSeconds:F1} CPU-s{Others(interval)}");
            return run;
        }
        catch
        {
            await BenchJobs.TryCancelAsync(platform, jobId);
            throw;
        }
    }

    private void CheckFinished(JobStatusInfo status, SavepointInfo from, string which)
    {
        Check(status.State == JobState.Finished, $"the {which} job ended {status.State}: {status.Failure?.Describe()}");
        Check(status.RestoredFromCheckpoint == from.CheckpointId, $"the {which} job restored from checkpoint {status.RestoredFromCheckpoint?.ToString() ?? "none"}, not the savepoint's {from.CheckpointId}");
        Check(status.Restarts == 0, $"the {which} job restarted {status.Restarts} time(s)");
    }

    private void Check(bool holds, string problem)
    {
        if (!holds)
        {
            _problems.Add(problem);
        }
    }

    private static long RecordsIn(JobStatusInfo status, string uid) => status.Tasks.Where(t => t.OperatorUids.Contains(uid)).Sum(t => t.RecordsIn);

    private static List<double> LoggedSince(RestoreLogCapture log, long since) =>
        [.. log.Restored.Where(r => r.Timestamp > since).Select(r => Seconds(since, r.Timestamp))];

    private static double? SourcesStarted(long since) =>
        BigStateProbe.ReadersCreated.Where(t => t > since).Select(t => (double?)Seconds(since, t)).Min();

    // ---------------------------------------------------------------------------------------------------------------
    // Report.

    private void PrintSummary(Result r)
    {
        Console.WriteLine();
        Console.WriteLine($"RESULT ({settings.Keys:N0} keys × {settings.ValueBytes} B: {BenchJobs.Bytes(r.Portable.Info.Size)} in a portable savepoint)");
        Console.WriteLine($"  savepointSeconds        {r.Portable.Interval.Seconds,8:F2} s   portable, the running job ({BenchJobs.Bytes(r.Portable.BytesOnDisk)} on disk)");
        Console.WriteLine($"  nativeSavepointSeconds  {r.Native.Interval.Seconds,8:F2} s   native RocksDB files ({BenchJobs.Bytes(r.Native.BytesOnDisk)} on disk)");
        Console.WriteLine($"  restoreSeconds          {r.Restore.Seconds,8:F2} s   portable, parallelism {settings.Parallelism}: submit → every keyed subtask on restored state");
        if (r.NativeRestore is { } n)
        {
            Console.WriteLine($"  nativeRestoreSeconds    {n.Seconds,8:F2} s   native, parallelism {settings.Parallelism}");
        }

        Console.WriteLine($"  rescaleSeconds          {r.Rescale.Seconds,8:F2} s   {settings.Parallelism} → {settings.RescaleParallelism}: stop request → first record of the new job " +
                          $"(stop {r.Rescale.Stop.Interval.Seconds:F2} s + submit → restored {r.Rescale.SubmitToRestoredSeconds:F2} s + restored → first record {r.Rescale.RestoredToFirstRecordSeconds:F2} s)");
        Console.WriteLine($"  verified                {(_problems.Count == 0 ? "yes" : $"NO: {_problems.Count} problem(s)")}");
        if (r.Portable.Info.Size < 900L * 1024 * 1024)
        {
            Console.WriteLine($"  (the state is {BenchJobs.Bytes(r.Portable.Info.Size)}, not ~1 GB: the defaults, --keys 10000000 --value-bytes 100, give the issue's size)");
        }
    }

    private JsonObject ToJson(BenchSilo silo, Result r) => new()
    {
        ["benchmark"] = "savepoints",
        ["timestamp"] = DateTimeOffset.UtcNow.ToString("O"),
        ["command"] = settings.CommandLine,
        ["runtimeCommit"] = GitCommits().Runtime,
        ["headCommit"] = GitCommits().Head,
        ["savepointSeconds"] = Round(r.Portable.Interval.Seconds),
        ["nativeSavepointSeconds"] = Round(r.Native.Interval.Seconds),
        ["restoreSeconds"] = Round(r.Restore.Seconds),
        ["nativeRestoreSeconds"] = r.NativeRestore is { } n ? Round(n.Seconds) : null,
        ["rescaleSeconds"] = Round(r.Rescale.Seconds),
        ["verified"] = _problems.Count == 0,
        ["problems"] = new JsonArray([.. _problems.Select(p => (JsonNode)p)]),
        ["methods"] = new JsonObject
        {
            ["savepointSeconds"] = "Wall time of PlatformClient.TriggerSavepointAsync (portable format) on the running, idle job: from the call until it " +
                                   "returns the completed savepoint. savepoint.endToEndSeconds is the coordinator's trigger-to-completion time.",
            ["nativeSavepointSeconds"] = "The same with SavepointRequest { Format = Native } (RocksDB's own files, every file copied into the savepoint).",
            ["restoreSeconds"] = "A new job submitted with RestoreFrom = the portable savepoint, same parallelism: from just before SubmitAsync until the last " +
                                 "keyed subtask opens its function, which StreamTask does right after restoring its keyed state and before taking a record. " +
                                 "restore.restoreLoggedSeconds: the subtasks' own 'restored keyed state' log lines, a second witness.",
            ["rescaleSeconds"] = "From just before PlatformClient.StopWithSavepointAsync (updates flowing) until the first record processed by the job " +
                                 "resumed from that savepoint with the keyed operator at the higher parallelism (sources keep theirs). It includes the " +
                                 "stop (savepoint, then the job FINISHED), submitting, and restoring.",
            ["verified"] = "Every resumed job checks each value it reads: the rescaled one finishes the updates (each must find the loaded value: a " +
                           "repeated update finds its own), checks every updated key (an update lost at the stop leaves the loaded value) and a " +
                           "sample of keys, and the two jobs' sources must have read the whole sequence once between them; the jobs restored from " +
                           "the earlier savepoints check a sample of keys. Every job must end FINISHED, restored from the right savepoint.",
        },
        ["settings"] = new JsonObject
        {
            ["keys"] = settings.Keys,
            ["valueBytes"] = settings.ValueBytes,
            ["parallelism"] = settings.Parallelism,
            ["rescaleParallelism"] = settings.RescaleParallelism,
            ["sourceParallelism"] = settings.Parallelism,
            ["changedKeys"] = settings.ChangedKeys,
            ["sampleKeys"] = settings.SampleKeys,
            ["updateSeconds"] = settings.UpdateSeconds,
            ["compactionsSettled"] = !settings.NoSettle,
            ["stateBackend"] = "RocksDb",
            ["maxParallelism"] = JobGraph.DefaultMaxParallelism,
            ["storage"] = "local file system (temporary directory): savepoints, checkpoints and RocksDB on the same disk",
            ["rocksDbBlockCacheBytes"] = silo.Options.RocksDb.BlockCacheSize,
            ["rocksDbWriteBufferBytes"] = silo.Options.RocksDb.WriteBufferSize,
            ["rocksDbMaxWriteBufferNumber"] = silo.Options.RocksDb.MaxWriteBufferNumber,
            ["batchSize"] = silo.Options.BatchSize,
            ["channelWindow"] = silo.Options.ChannelWindow,
        },
        ["state"] = new JsonObject
        {
            ["keys"] = settings.Keys,
            ["valueBytes"] = settings.ValueBytes,
            ["stateBytes"] = r.Portable.Info.Size,
            ["rocksDbLocalBytesAfterLoad"] = r.LocalBytesAfterLoad,
            ["loadSeconds"] = Round(r.Load.Seconds),
            ["loadRecordsPerSecond"] = Math.Round(settings.Keys / r.Load.Seconds),
            ["loadCpuSeconds"] = Round(r.Load.CpuSeconds),
            ["settleSeconds"] = r.SettleSeconds is { } s ? Round(s) : null,
        },
        ["savepoint"] = SavepointJson(r.Portable),
        ["nativeSavepoint"] = SavepointJson(r.Native),
        ["restore"] = RestoreJson(r.Restore),
        ["nativeRestore"] = r.NativeRestore is { } nr ? RestoreJson(nr) : null,
        ["rescale"] = new JsonObject
        {
            ["fromParallelism"] = settings.Parallelism,
            ["toParallelism"] = settings.RescaleParallelism,
            ["seconds"] = Round(r.Rescale.Seconds),
            ["stopSeconds"] = Round(r.Rescale.Stop.Interval.Seconds),
            ["stopToSubmitSeconds"] = Round(r.Rescale.StopToSubmitSeconds),
            ["submitToRestoredSeconds"] = Round(r.Rescale.SubmitToRestoredSeconds),
            ["submitToFirstSubtaskRestoredSeconds"] = Round(r.Rescale.PerSubtaskOpened.Min()),
            ["restoredToFirstRecordSeconds"] = Round(r.Rescale.RestoredToFirstRecordSeconds),
            ["allSubtasksProcessingSeconds"] = r.Rescale.AllSubtasksSeconds is { } a ? Round(a) : null,
            ["partsMethod"] = "stopSeconds: StopWithSavepointAsync's call (savepoint completed and the job FINISHED). submitToRestoredSeconds: from " +
                              "just before SubmitAsync until the last keyed subtask opened its function (submitToFirstSubtaskRestoredSeconds: the first). " +
                              "restoredToFirstRecordSeconds: from the last subtask's restore to the first record any keyed subtask processed (negative " +
                              "when a subtask restored early and processed records before the last one restored); the parts add up to seconds. allSubtasksProcessingSeconds: stop request until every keyed subtask processed a record.",
            ["stopSavepoint"] = SavepointJson(r.Rescale.Stop),
            ["submitCallSeconds"] = Round(r.Rescale.SubmitCallSeconds),
            ["perSubtaskRestoredSeconds"] = Array(r.Rescale.PerSubtaskOpened),
            ["restoreLoggedSeconds"] = Array(r.Rescale.Logged),
            ["perSubtaskFirstRecordSecondsFromStop"] = Array(r.Rescale.PerSubtaskFirstRecord),
            ["sourcesStartedSeconds"] = r.Rescale.SourcesStartedSeconds is { } ss ? Round(ss) : null,
            ["updatesBeforeStop"] = r.Rescale.UpdatesBeforeStop,
            ["updatesAfterRestore"] = r.Rescale.UpdatesAfterRestore,
            ["updatesWrong"] = r.Rescale.UpdatesWrong,
            ["updatedKeysChecked"] = r.Rescale.UpdatedChecked,
            ["updatedKeysLost"] = r.Rescale.UpdatedLost,
            ["sampledKeys"] = r.Rescale.Sampled,
            ["sampledKeysWrong"] = r.Rescale.SampledWrong,
            ["untilFinishedSeconds"] = Round(r.Rescale.UntilFinished.Seconds),
        },
        ["peakWorkingSetBytes"] = r.PeakWorkingSet,
        ["machine"] = BenchEnvironment.MachineJson(),
        ["loadAverageAtEnd"] = LoadAverage(),
    };

    private static JsonObject SavepointJson(SavepointRun s) => new()
    {
        ["format"] = Name(s.Format),
        ["seconds"] = Round(s.Interval.Seconds),
        ["endToEndSeconds"] = s.EndToEndSeconds is { } e ? Round(e) : null,
        ["maxSubtaskSyncSeconds"] = Math.Round(s.MaxSyncSeconds, 4),
        ["maxSubtaskAsyncSeconds"] = Round(s.MaxAsyncSeconds),
        ["sizeBytes"] = s.Info.Size,
        ["bytesOnDisk"] = s.BytesOnDisk,
        ["files"] = s.Files,
        ["checkpointId"] = s.Info.CheckpointId,
        ["cpuSeconds"] = Round(s.Interval.CpuSeconds),
        ["otherProcessesCpuSeconds"] = s.Interval.OthersCpuSeconds is { } o ? Round(o) : null,
    };

    private static JsonObject RestoreJson(RestoreRun r) => new()
    {
        ["savepointFormat"] = r.Label,
        ["seconds"] = Round(r.Seconds),
        ["submitCallSeconds"] = Round(r.SubmitCallSeconds),
        ["perSubtaskSeconds"] = Array(r.PerSubtask),
        ["restoreLoggedSeconds"] = Array(r.Logged),
        ["sourcesStartedSeconds"] = r.SourcesStartedSeconds is { } s ? Round(s) : null,
        ["firstRecordSeconds"] = r.FirstRecordSeconds is { } f ? Round(f) : null,
        ["sampledKeys"] = r.Sampled,
        ["sampledKeysWrong"] = r.SampledWrong,
        ["restoredFromCheckpoint"] = r.RestoredFrom,
        ["cpuSeconds"] = Round(r.Interval.CpuSeconds),
        ["otherProcessesCpuSeconds"] = r.Interval.OthersCpuSeconds is { } o ? Round(o) : null,
    };

    private static JsonArray Array(IEnumerable<double> values) => new([.. values.Select(v => (JsonNode)Round(v))]);

    private static double Round(double value) => Math.Round(value, 3);

    private static string Join(IEnumerable<double> seconds) => string.Join(", ", seconds.Select(s => $"{s:F2} s"));

    private static string Others(Interval interval) =>
        interval.OthersCpuSeconds is { } o && o > 0.1 * interval.Seconds ? $"; other processes {o:F1} CPU-s meanwhile" : "";

    private static string Name(SavepointFormat format) => format == SavepointFormat.Native ? "native" : "portable";

    private static double Seconds(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalSeconds;

    private static string? LoadAverage()
    {
        try
        {
            return File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    // The repository's HEAD and the last commit that changed src/ (the runtime), found from the benchmark's binaries,
    // which are built under the repository; "(src/ modified)" when the runtime had uncommitted changes.
    private static (string? Head, string? Runtime) GitCommits()
    {
        try
        {
            string? Git(string arguments)
            {
                using var git = Process.Start(new ProcessStartInfo("git", $"-C \"{AppContext.BaseDirectory}\" {arguments}") { RedirectStandardOutput = true, RedirectStandardError = true });
                if (git is null)
                {
                    return null;
                }

                var output = git.StandardOutput.ReadToEnd().Trim();
                return git.WaitForExit(5000) && git.ExitCode == 0 && output.Length > 0 ? output : null;
            }

            var runtime = Git("log -1 --format=%H -- :/src");
            var modified = Git("status --porcelain -- :/src") is not null;
            return (Git("rev-parse HEAD"), runtime is not null && modified ? $"{runtime} (src/ modified)" : runtime);
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return (null, null);
        }
    }

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

    /// <summary>A point in time, with this process's CPU time and the machine's busy time then.</summary>
    private readonly record struct Mark(long Timestamp, TimeSpan Cpu, double? MachineBusy)
    {
        public static Mark Now() => new(Stopwatch.GetTimestamp(), BenchEnvironment.CpuTime(), BenchEnvironment.MachineBusySeconds());

        public Interval Until(Mark end)
        {
            var cpu = (end.Cpu - Cpu).TotalSeconds;
            return new Interval(
                Stopwatch.GetElapsedTime(Timestamp, end.Timestamp).TotalSeconds,
                cpu,
                MachineBusy is { } a && end.MachineBusy is { } b ? Math.Max(0, b - a - cpu) : null);
        }
    }

    /// <summary>Wall seconds, this process's CPU seconds, and the CPU seconds other processes used meanwhile.</summary>
    private sealed record Interval(double Seconds, double CpuSeconds, double? OthersCpuSeconds);

    private sealed record SavepointRun(
        SavepointFormat Format,
        SavepointInfo Info,
        Interval Interval,
        double? EndToEndSeconds,
        double MaxSyncSeconds,
        double MaxAsyncSeconds,
        long BytesOnDisk,
        int Files);

    private sealed record RestoreRun(
        string Label,
        double Seconds,
        double SubmitCallSeconds,
        List<double> PerSubtask,
        List<double> Logged,
        double? SourcesStartedSeconds,
        double? FirstRecordSeconds,
        long Sampled,
        long SampledWrong,
        long? RestoredFrom,
        Interval Interval);

    private sealed record RescaleRun(
        SavepointRun Stop,
        double Seconds,
        double? AllSubtasksSeconds,
        double StopToSubmitSeconds,
        double SubmitCallSeconds,
        double SubmitToRestoredSeconds,
        double RestoredToFirstRecordSeconds,
        List<double> PerSubtaskOpened,
        List<double> PerSubtaskFirstRecord,
        List<double> Logged,
        double? SourcesStartedSeconds,
        long UpdatesBeforeStop,
        long UpdatesAfterRestore,
        long UpdatesWrong,
        long UpdatedChecked,
        long UpdatedLost,
        long Sampled,
        long SampledWrong,
        Interval UntilFinished);

    private sealed record Result(
        Interval Load,
        long LocalBytesAfterLoad,
        double? SettleSeconds,
        SavepointRun Portable,
        SavepointRun Native,
        RescaleRun Rescale,
        RestoreRun Restore,
        RestoreRun? NativeRestore,
        long PeakWorkingSet);
}
