using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Functions;
using Platform.Graph;
using Platform.Runtime;
using Platform.State;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Connectors;

/// <summary>
/// The runtime's two-phase-commit protocol (issue 12, point 1) on a real cluster, through a sink over real files
/// (<see cref="LedgerSink"/>): what a reader sees is every record exactly once, across failures, lost notices, stops.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class TwoPhaseCommitSinkTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    private static StreamJobBuilder Job(string output, long? records, double rate, CheckpointingSettings? checkpointing, RestoreSettings? restore = null)
    {
        var job = new StreamJobBuilder("two-phase-commit")
        {
            DefaultParallelism = 2,
            Checkpointing = checkpointing,
            RestartStrategy = RestartStrategy.FixedDelayRestart(20, TimeSpan.FromMilliseconds(100)),
            RestoreFrom = restore,
        };
        job.AddSource(new SequenceSource { Count = records, RecordsPerSecondPerSubtask = rate }, "numbers").Uid("numbers")
            .Map(new FailOnDemand<long>(), "fail-on-demand").Uid("fail-on-demand")
            .SinkTo(new LedgerSink { Directory = output }, "ledger").Uid("ledger");
        return job;
    }

    private static CheckpointingSettings Checkpoints() => new()
    {
        Interval = TimeSpan.FromMilliseconds(200),
        Storage = CheckpointStorageKind.FileSystem,
        Directory = TestData.NewDirectory("checkpoints"),
    };

    private static void AssertExactlyOnce(IEnumerable<long> expected, List<long> committed)
    {
        var duplicates = committed.GroupBy(n => n).Where(g => g.Count() > 1).Select(g => g.Key).Take(10).ToList();
        Assert.True(duplicates.Count == 0, $"committed more than once: {string.Join(", ", duplicates)}");
        var missing = expected.Except(committed).Take(10).ToList();
        Assert.True(missing.Count == 0, $"never committed: {string.Join(", ", missing)} (of {committed.Count} committed)");
        Assert.Equal(expected.Order(), committed.Order());
    }

    [Fact]
    public async Task Output_is_exactly_once_across_a_failure_and_the_last_records_are_committed_before_the_job_finishes()
    {
        const long records = 12_000;
        var output = TestData.NewDirectory("ledger");
        var jobId = await fixture.Platform.SubmitAsync(Job(output, records, 1_500, Checkpoints()));
        await Poll.UntilAsync(async () => LedgerSink.Commits(output).Length >= 2, Timeout, () => "the sink committed the output of two checkpoints");

        FailureSwitch.Arm(jobId);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.True(status.Restarts >= 1, "the injected failure did not restart the job");
        AssertExactlyOnce(Enumerable.Range(0, (int)records).Select(i => (long)i), LedgerSink.ReadCommitted(output));
        Assert.Empty(LedgerSink.Staged(output));
    }

    [Fact]
    public async Task A_completed_checkpoint_is_committed_although_its_completion_notices_are_lost_for_a_while()
    {
        var output = TestData.NewDirectory("ledger");
        // No periodic checkpoint within the test and an input no test outlives: only the one checkpoint below can commit anything.
        var settings = Checkpoints() with { Interval = TimeSpan.FromHours(1) };
        var jobId = await fixture.Platform.SubmitAsync(Job(output, records: null, 500, settings));
        await Poll.UntilAsync(async () => (await fixture.Platform.GetStatusAsync(jobId)).State == JobState.Running, Timeout, () => "the job runs");

        // More failed notices than one delivery's retries: the job manager's heartbeat must send them again.
        const string notify = nameof(Platform.Tasks.IStreamTaskGrain.NotifyCheckpointComplete);
        CallFaults.Fail(notify, jobId + "/", 14);
        try
        {
            var checkpoint = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
            Assert.Equal(CheckpointStatus.Completed, checkpoint.Status);
            await Poll.UntilAsync(
                () => Task.FromResult(LedgerSink.ReadCommitted(output) is { } committed && committed.Any(n => n % 2 == 0) && committed.Any(n => n % 2 == 1)),
                TimeSpan.FromMinutes(1),
                () => $"both subtasks committed the output of checkpoint {checkpoint.Id} ({CallFaults.Remaining(notify, jobId + "/")} injected failures left)");
            Assert.Equal(0, CallFaults.Remaining(notify, jobId + "/"));
            Assert.Equal(1, (await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).Completed);
        }
        finally
        {
            CallFaults.Clear(notify, jobId + "/");
            await fixture.Platform.CancelAsync(jobId);
        }

        // Each subtask committed a prefix of its numbers: nothing after the checkpoint's barrier, nothing twice.
        var result = LedgerSink.ReadCommitted(output);
        foreach (var subtask in new[] { 0, 1 })
        {
            var mine = result.Where(n => n % 2 == subtask).Order().ToList();
            Assert.Equal(Enumerable.Range(0, mine.Count).Select(i => (long)(subtask + (2 * i))), mine);
        }
    }

    [Fact]
    public async Task A_restore_commits_the_output_of_the_checkpoint_it_restores_from_when_its_notice_never_arrived()
    {
        const long records = 8_000;
        var output = TestData.NewDirectory("ledger");
        var jobId = await fixture.Platform.SubmitAsync(Job(output, records, 500, Checkpoints() with { Interval = TimeSpan.FromHours(1) }));
        await Poll.UntilAsync(async () => (await fixture.Platform.GetStatusAsync(jobId)).State == JobState.Running, Timeout, () => "the job runs");

        // The checkpoint completes, but no subtask ever hears of it; then the job fails and restores from it.
        const string notify = nameof(Platform.Tasks.IStreamTaskGrain.NotifyCheckpointComplete);
        CallFaults.Fail(notify, jobId + "/", 1_000_000);
        try
        {
            var checkpoint = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
            Assert.Equal(CheckpointStatus.Completed, checkpoint.Status);
            Assert.Empty(LedgerSink.ReadCommitted(output));
            FailureSwitch.Arm(jobId);
            await Poll.UntilAsync(async () => (await fixture.Platform.GetStatusAsync(jobId)).Restarts >= 1, Timeout, () => "the job restarts");
        }
        finally
        {
            CallFaults.Clear(notify, jobId + "/");
        }

        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        AssertExactlyOnce(Enumerable.Range(0, (int)records).Select(i => (long)i), LedgerSink.ReadCommitted(output));
        Assert.Contains(LedgerSink.Commits(output), line => line.Split(' ')[2] != "1");
    }

    [Fact]
    public async Task Stop_with_savepoint_commits_what_precedes_it_and_a_job_restored_from_it_continues_exactly_once()
    {
        const long records = 10_000;
        var output = TestData.NewDirectory("ledger");
        var first = await fixture.Platform.SubmitAsync(Job(output, records, 800, Checkpoints()));
        await Poll.UntilAsync(async () => LedgerSink.Commits(output).Length >= 1, Timeout, () => "the sink committed a checkpoint's output");

        var savepoint = await fixture.Platform.StopWithSavepointAsync(first, timeout: Timeout);
        Assert.Equal(JobState.Finished, (await fixture.Platform.GetStatusAsync(first)).State);
        var beforeResume = LedgerSink.ReadCommitted(output);
        Assert.NotEmpty(beforeResume);
        Assert.Empty(LedgerSink.Staged(output));

        // The stopped job committed exactly a prefix of each subtask's numbers (0, 2, 4, ... and 1, 3, 5, ...).
        foreach (var subtask in new[] { 0, 1 })
        {
            var mine = beforeResume.Where(n => n % 2 == subtask).Order().ToList();
            Assert.Equal(Enumerable.Range(0, mine.Count).Select(i => (long)(subtask + (2 * i))), mine);
        }

        var second = await fixture.Platform.SubmitAsync(Job(output, records, 0, Checkpoints(), new RestoreSettings { Path = savepoint.Path }));
        var status = await fixture.Platform.WaitForCompletionAsync(second, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        AssertExactlyOnce(Enumerable.Range(0, (int)records).Select(i => (long)i), LedgerSink.ReadCommitted(output));
    }

    [Fact]
    public async Task Without_checkpoints_the_output_is_committed_when_the_job_ends()
    {
        const long records = 3_000;
        var output = TestData.NewDirectory("ledger");
        var jobId = await fixture.Platform.SubmitAsync(Job(output, records, 0, checkpointing: null));

        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        AssertExactlyOnce(Enumerable.Range(0, (int)records).Select(i => (long)i), LedgerSink.ReadCommitted(output));
    }
    [Fact]
    public async Task A_subtask_that_cannot_write_its_final_snapshot_fails_the_attempt_instead_of_leaving_the_sinks_waiting_forever()
    {
        const long records = 6_000;
        var output = TestData.NewDirectory("ledger");
        var checkpoints = Checkpoints();
        // Keyed state in its own task, the two-phase-commit sink in another (parallelism 1, so not chained): the keyed
        // subtasks finish first and must write final snapshots for any later checkpoint to commit the sink's last output.
        var job = new StreamJobBuilder("final-snapshot-fails")
        {
            DefaultParallelism = 2,
            Checkpointing = checkpoints,
            RestartStrategy = RestartStrategy.FixedDelayRestart(20, TimeSpan.FromMilliseconds(100)),
        };
        job.AddSource(new SequenceSource { Count = records, RecordsPerSecondPerSubtask = 1_000 }, "numbers").Uid("numbers")
            .KeyBy(new ModuloKey { Modulo = 7 })
            .Process(new CountingPassThrough(), "count").Uid("count")
            .SinkTo(new LedgerSink { Directory = output }, "ledger").Uid("ledger").SetParallelism(1);
        var jobId = await fixture.Platform.SubmitAsync(job);

        // A file where the job's shared/ directory belongs: final snapshots (written there) fail, checkpoints do not.
        var blocker = Path.Combine(checkpoints.Directory!, jobId, "shared");
        Directory.CreateDirectory(Path.GetDirectoryName(blocker)!);
        await File.WriteAllTextAsync(blocker, "not a directory");
        try
        {
            await Poll.UntilAsync(
                async () => (await fixture.Platform.GetStatusAsync(jobId)).Restarts >= 1,
                Timeout,
                () => "the attempt whose final snapshots failed was restarted (the sink must not wait forever for a checkpoint that cannot complete)");
        }
        finally
        {
            File.Delete(blocker);
        }

        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Contains(status.RestartCauses, c => c.Message.Contains("final snapshot", StringComparison.Ordinal));
        AssertExactlyOnce(Enumerable.Range(0, (int)records).Select(i => (long)i), LedgerSink.ReadCommitted(output));
        Assert.Empty(LedgerSink.Staged(output));
    }
}

/// <summary>Counts records per key in keyed state and passes each record on unchanged.</summary>
[GenerateSerializer]
public sealed class CountingPassThrough : KeyedProcessFunction<long, long, long>
{
    [NonSerialized] private IValueState<long>? _count;

    public override void Open(IRuntimeContext context) => _count = context.GetState(new ValueStateDescriptor<long>("count"));

    public override void ProcessElement(long value, IKeyedContext<long> context, ICollector<long> output)
    {
        _count!.Update(_count.Value + 1);
        output.Collect(value);
    }
}
