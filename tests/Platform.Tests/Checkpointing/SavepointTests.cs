using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Graph;
using Platform.Runtime;
using Platform.Samples;
using Platform.State;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Checkpointing;

/// <summary>Savepoints: take one of a running job, resume new jobs from it at other parallelisms and on other backends.</summary>
[Collection(ClusterCollection.Name)]
public sealed class SavepointTests(ClusterFixture fixture)
{
    private const long Records = 60_000;
    private const int Words = 40;
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    /// <summary>
    /// Generated words (source parallelism fixed at 2: a source resumes each subtask's read position) → running count
    /// per word at <paramref name="countParallelism"/> → collect.
    /// </summary>
    private static StreamJobBuilder WordCount(
        int countParallelism,
        RestoreSettings? from = null,
        StateBackendKind backend = StateBackendKind.Heap,
        string countName = "count",
        int maxParallelism = 128,
        string countUid = "count",
        long? records = Records,
        long? holdAt = null)
    {
        var job = new StreamJobBuilder("savepointed-word-count")
        {
            DefaultParallelism = countParallelism,
            MaxParallelism = maxParallelism,
            StateBackend = backend,
            RestoreFrom = from,
            Checkpointing = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(200), Storage = CheckpointStorageKind.FileSystem },
            RestartStrategy = RestartStrategy.NoRestart,
        };
        ISourceFunction<string> words = new WordGenerator { Count = records, Words = Words, RecordsPerSecondPerSubtask = 5_000 };
        if (holdAt is { } hold)
        {
            // Each source subtask waits at this position (the release file never appears): the job is still running,
            // short of the end, when its savepoint and cancel come, however slow the machine.
            words = new HeldSource<string> { Inner = words, HoldAt = hold, ReleaseFile = Path.Combine(Path.GetTempPath(), $"never-{Guid.NewGuid():N}") };
        }

        job.AddSource(words, "words").Uid("words").SetParallelism(2)
            .KeyBy(new WordKey())
            .Process(new CountWords(), countName).Uid(countUid)
            .SinkTo(new CollectSink<WordCount>(), "collect").Uid(CheckpointTestJobs.CountsSink);
        return job;
    }

    private async Task<string> RunUntilCheckpointedAsync(StreamJobBuilder job)
    {
        var jobId = await fixture.Platform.SubmitAsync(job);
        var deadline = DateTime.UtcNow + Timeout;
        while ((await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).Completed < 1)
        {
            var status = await fixture.Platform.GetStatusAsync(jobId);
            Assert.False(status.State.IsTerminal(), $"job ended {status.State} before its first checkpoint: {status.Failure}");
            Assert.True(DateTime.UtcNow < deadline, "no checkpoint completed");
            await Task.Delay(50);
        }

        return jobId;
    }

    private async Task<SavepointInfo> SavepointAndCancelAsync(string jobId)
    {
        var savepoint = await fixture.Platform.TriggerSavepointAsync(jobId, timeout: Timeout);
        await fixture.Platform.CancelAsync(jobId);
        Assert.Equal(JobState.Canceled, (await fixture.Platform.WaitForCompletionAsync(jobId, Timeout)).State);
        return savepoint;
    }

    private async Task AssertResumesAndFinishesWithExactCountsAsync(string jobId, SavepointInfo from)
    {
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(from.CheckpointId, status.RestoredFromCheckpoint);

        // It resumed where the savepoint was (one running count per record it read, fewer than the whole input), and
        // each word's highest running count equals its true count over the whole input: state carried over exactly.
        var running = await fixture.Platform.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink);
        Assert.InRange(running.Count, 1, Records - 1);
        Assert.Equal(CheckpointTestJobs.ExpectedCounts(Records, Words).OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));
    }

    [Fact]
    public async Task State_carries_over_exactly_through_savepoints_at_parallelism_2_then_4_then_1()
    {
        var first = await SavepointAndCancelAsync(await RunUntilCheckpointedAsync(WordCount(2, holdAt: Records / 3)));
        Assert.True(File.Exists(Path.Combine(first.Path, "_metadata")), "the savepoint is committed by its _metadata");
        Assert.True(first.Size > 0);

        var second = await SavepointAndCancelAsync(await RunUntilCheckpointedAsync(WordCount(4, new RestoreSettings { Path = first.Path }, holdAt: 2 * Records / 3)));
        Assert.NotEqual(first.Path, second.Path);

        var last = await fixture.Platform.SubmitAsync(WordCount(1, new RestoreSettings { Path = second.Path }));
        var restoring = new List<JobStatusInfo>();
        var running = await fixture.Platform.WaitUntilRunningAsync(last, new SynchronousProgress<JobStatusInfo>(restoring.Add), Timeout);
        Assert.NotEmpty(restoring);
        Assert.True(
            running.State.IsTerminal() || running.Tasks.All(t => t.State is TaskState.Running or TaskState.Finished),
            $"restored: {string.Join(", ", running.Tasks.Select(t => $"{t.TaskName}[{t.SubtaskIndex}] {t.State}"))}");
        await AssertResumesAndFinishesWithExactCountsAsync(last, second);
    }

    [Fact]
    public async Task A_savepoint_taken_on_the_heap_resumes_on_RocksDB_from_a_moved_directory_with_a_renamed_operator()
    {
        var savepoint = await SavepointAndCancelAsync(await RunUntilCheckpointedAsync(WordCount(2)));

        // Self-contained: moved elsewhere under the savepoint root, it still restores.
        var moved = Path.Combine(Path.GetDirectoryName(savepoint.Path)!, "moved", Path.GetFileName(savepoint.Path));
        Directory.CreateDirectory(Path.GetDirectoryName(moved)!);
        Directory.Move(savepoint.Path, moved);

        var jobId = await fixture.Platform.SubmitAsync(
            WordCount(3, new RestoreSettings { Path = moved }, StateBackendKind.RocksDb, countName: "count words (renamed, same uid)"));
        await AssertResumesAndFinishesWithExactCountsAsync(jobId, savepoint);
    }

    [Fact]
    public async Task Stop_with_savepoint_then_resume_gives_the_output_of_an_uninterrupted_run()
    {
        var first = await RunUntilCheckpointedAsync(WordCount(2));
        var savepoint = await fixture.Platform.StopWithSavepointAsync(first, timeout: Timeout);
        Assert.Equal(JobState.Finished, (await fixture.Platform.GetStatusAsync(first)).State);

        var second = await fixture.Platform.SubmitAsync(WordCount(3, new RestoreSettings { Path = savepoint.Path }));
        var status = await fixture.Platform.WaitForCompletionAsync(second, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");

        // An uninterrupted run emits, for each word, its running counts 1..n once each. The two runs together must
        // emit exactly that: nothing lost at the stop, nothing emitted twice.
        var before = await fixture.Platform.GetCollectedAsync<WordCount>(first, CheckpointTestJobs.CountsSink);
        var after = await fixture.Platform.GetCollectedAsync<WordCount>(second, CheckpointTestJobs.CountsSink);
        Assert.NotEmpty(before);
        Assert.NotEmpty(after);
        var expected = CheckpointTestJobs.ExpectedCounts(Records, Words)
            .SelectMany(p => Enumerable.Range(1, (int)p.Value).Select(n => $"{p.Key}:{n}"))
            .Order(StringComparer.Ordinal);
        var actual = before.Concat(after).Select(c => $"{c.Word}:{c.Count}").Order(StringComparer.Ordinal);
        Assert.Equal(expected, actual);
    }

    /// <summary>Every running count 1..n of every word once: the sink output of one uninterrupted run.</summary>
    private static IEnumerable<string> UninterruptedOutput() => CheckpointTestJobs.ExpectedCounts(Records, Words)
        .SelectMany(p => Enumerable.Range(1, (int)p.Value).Select(n => $"{p.Key}:{n}"))
        .Order(StringComparer.Ordinal);

    [Fact]
    public async Task Stop_with_drain_reads_bounded_input_to_its_end_before_the_savepoint()
    {
        var first = await RunUntilCheckpointedAsync(WordCount(2));
        var savepoint = await fixture.Platform.StopWithSavepointAsync(first, new SavepointRequest { Drain = true }, Timeout);
        Assert.Equal(JobState.Finished, (await fixture.Platform.GetStatusAsync(first)).State);

        // Drained: the stopped job processed its whole bounded input, exactly once.
        var drained = await fixture.Platform.GetCollectedAsync<WordCount>(first, CheckpointTestJobs.CountsSink);
        Assert.Equal(UninterruptedOutput(), drained.Select(c => $"{c.Word}:{c.Count}").Order(StringComparer.Ordinal));

        // The savepoint holds the final state with the sources at their end: a job resumed from it has nothing left to read.
        var resumed = await fixture.Platform.SubmitAsync(WordCount(3, new RestoreSettings { Path = savepoint.Path }));
        var status = await fixture.Platform.WaitForCompletionAsync(resumed, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(savepoint.CheckpointId, status.RestoredFromCheckpoint);
        Assert.Empty(await fixture.Platform.GetCollectedAsync<WordCount>(resumed, CheckpointTestJobs.CountsSink));
    }

    [Fact]
    public async Task Stop_with_drain_stops_unbounded_sources_at_the_savepoint_and_refuses_drain_without_stop()
    {
        var first = await RunUntilCheckpointedAsync(WordCount(2, records: null));
        var refused = await Assert.ThrowsAsync<ArgumentException>(() => fixture.Platform.TriggerSavepointAsync(first, new SavepointRequest { Drain = true }, Timeout));
        Assert.Contains("stop with savepoint only", refused.Message);

        // An unbounded source has no end to drain to: it stops at the savepoint, and a resumed (bounded) run continues
        // with the next record, so the two runs' output is that of one uninterrupted run.
        var savepoint = await fixture.Platform.StopWithSavepointAsync(first, new SavepointRequest { Drain = true }, Timeout);
        Assert.Equal(JobState.Finished, (await fixture.Platform.GetStatusAsync(first)).State);
        var before = await fixture.Platform.GetCollectedAsync<WordCount>(first, CheckpointTestJobs.CountsSink);
        Assert.InRange(before.Count, 1, Records - 1);

        var second = await fixture.Platform.SubmitAsync(WordCount(2, new RestoreSettings { Path = savepoint.Path }));
        var status = await fixture.Platform.WaitForCompletionAsync(second, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        var after = await fixture.Platform.GetCollectedAsync<WordCount>(second, CheckpointTestJobs.CountsSink);
        Assert.Equal(UninterruptedOutput(), before.Concat(after).Select(c => $"{c.Word}:{c.Count}").Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_native_RocksDB_savepoint_resumes_on_RocksDB_at_another_parallelism()
    {
        var jobId = await RunUntilCheckpointedAsync(WordCount(2, backend: StateBackendKind.RocksDb));
        var savepoint = await fixture.Platform.TriggerSavepointAsync(jobId, new SavepointRequest { Format = SavepointFormat.Native }, Timeout);
        await fixture.Platform.CancelAsync(jobId);
        await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.NotEmpty(Directory.EnumerateFiles(savepoint.Path, "*.sst", SearchOption.AllDirectories));

        var resumed = await fixture.Platform.SubmitAsync(WordCount(3, new RestoreSettings { Path = savepoint.Path }, StateBackendKind.RocksDb));
        await AssertResumesAndFinishesWithExactCountsAsync(resumed, savepoint);
    }

    [Fact]
    public async Task A_retried_request_id_returns_the_same_savepoint_and_a_disposed_savepoint_is_gone()
    {
        var jobId = await RunUntilCheckpointedAsync(WordCount(2));
        var request = new SavepointRequest { RequestId = $"request-{Guid.NewGuid():N}" };
        var first = await fixture.Platform.TriggerSavepointAsync(jobId, request, Timeout);
        var again = await fixture.Platform.TriggerSavepointAsync(jobId, request, Timeout);
        await fixture.Platform.CancelAsync(jobId);

        Assert.Equal(first.Path, again.Path);
        Assert.Equal(first.CheckpointId, again.CheckpointId);
        Assert.Single(Directory.GetDirectories(Path.GetDirectoryName(first.Path)!), d => d.Contains(Path.GetFileName(first.Path)));

        await fixture.Platform.DisposeSavepointAsync(first.Path);
        Assert.False(Directory.Exists(first.Path));
        var error = await Assert.ThrowsAsync<JobValidationException>(() => fixture.Platform.SubmitAsync(WordCount(2, new RestoreSettings { Path = first.Path })));
        Assert.Contains("holds no savepoint", error.Message);
    }

    [Fact]
    public async Task Symbolic_links_under_the_savepoint_root_that_lead_outside_it_are_refused_for_a_target_a_restore_and_a_dispose()
    {
        var jobId = await RunUntilCheckpointedAsync(WordCount(2));
        var first = await fixture.Platform.TriggerSavepointAsync(jobId, timeout: Timeout);
        var root = Path.GetDirectoryName(first.Path)!;
        var outside = TestData.NewDirectory("outside-savepoint-root");
        var leadsOut = Path.Combine(root, $"leads-out-{Guid.NewGuid():N}");
        Directory.CreateSymbolicLink(leadsOut, outside);

        // A target through a link that leads outside: refused, and nothing is written there.
        var target = await Assert.ThrowsAsync<ArgumentException>(() => fixture.Platform.TriggerSavepointAsync(jobId, new SavepointRequest { TargetDirectory = Path.Combine(leadsOut, "sp") }, Timeout));
        Assert.Contains("outside the silos' savepoint root", target.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(outside));

        // A link that stays inside the root is fine.
        var inner = Directory.CreateDirectory(Path.Combine(root, $"inner-{Guid.NewGuid():N}")).FullName;
        var staysIn = Path.Combine(root, $"stays-in-{Guid.NewGuid():N}");
        Directory.CreateSymbolicLink(staysIn, inner);
        var second = await fixture.Platform.TriggerSavepointAsync(jobId, new SavepointRequest { TargetDirectory = staysIn }, Timeout);
        Assert.True(File.Exists(Path.Combine(inner, Path.GetFileName(second.Path), "_metadata")));
        await fixture.Platform.CancelAsync(jobId);

        // A savepoint outside the root, reached through a link inside it: neither restored nor disposed.
        var copy = Path.Combine(outside, "copied-savepoint");
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.GetFiles(first.Path))
        {
            File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        }

        var restore = await Assert.ThrowsAsync<JobValidationException>(() => fixture.Platform.SubmitAsync(WordCount(2, new RestoreSettings { Path = Path.Combine(leadsOut, "copied-savepoint") })));
        Assert.Contains("outside the silos' savepoint and checkpoint roots", restore.Message);
        var dispose = await Assert.ThrowsAsync<ArgumentException>(() => fixture.Platform.DisposeSavepointAsync(Path.Combine(leadsOut, "copied-savepoint")));
        Assert.Contains("outside the silos' savepoint root", dispose.Message);
        Assert.True(File.Exists(Path.Combine(copy, "_metadata")), "the savepoint outside the root was deleted");
    }

    [Fact]
    public async Task Bad_restores_are_refused_at_submission_with_errors_that_say_what_to_do()
    {
        var savepoint = await SavepointAndCancelAsync(await RunUntilCheckpointedAsync(WordCount(2)));
        var root = Path.GetDirectoryName(savepoint.Path)!;

        async Task<string> Refused(StreamJobBuilder job) =>
            (await Assert.ThrowsAsync<JobValidationException>(() => fixture.Platform.SubmitAsync(job))).Message;

        // A missing path, and one outside the silos' roots.
        Assert.Contains("holds no savepoint", await Refused(WordCount(2, new RestoreSettings { Path = Path.Combine(root, "no-such-savepoint") })));
        var outside = TestData.NewDirectory("elsewhere");
        Assert.Contains("outside the silos' savepoint and checkpoint roots", await Refused(WordCount(2, new RestoreSettings { Path = outside })));

        // A damaged savepoint: its metadata no longer matches its checksum.
        var damaged = Path.Combine(root, $"damaged-{Guid.NewGuid():N}");
        Directory.CreateDirectory(damaged);
        var metadata = File.ReadAllText(Path.Combine(savepoint.Path, "_metadata"));
        File.WriteAllText(Path.Combine(damaged, "_metadata"), metadata.Replace("\"maxParallelism\":128", "\"maxParallelism\":129"));
        var corrupt = await Refused(WordCount(2, new RestoreSettings { Path = damaged }));
        Assert.Contains("cannot be restored", corrupt);
        Assert.Contains("checksum", corrupt);

        // Another max parallelism cannot take the key groups.
        var maxParallelism = await Refused(WordCount(2, new RestoreSettings { Path = savepoint.Path }, maxParallelism: 256));
        Assert.Contains("max parallelism 128", maxParallelism);
        Assert.Contains("MaxParallelism = 128", maxParallelism);

        // State of an operator the job no longer has: refused, unless dropping it is allowed.
        var unmatched = await Refused(WordCount(2, new RestoreSettings { Path = savepoint.Path }, countUid: "count-v2"));
        Assert.Contains("uids: count", unmatched);
        Assert.Contains("AllowNonRestoredState", unmatched);
        var allowed = await fixture.Platform.SubmitAsync(WordCount(2, new RestoreSettings { Path = savepoint.Path, AllowNonRestoredState = true }, countUid: "count-v2"));
        Assert.Equal(JobState.Finished, (await fixture.Platform.WaitForCompletionAsync(allowed, Timeout)).State);
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the caller's thread (<see cref="Progress{T}"/> posts to the thread pool).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
