using Orleans.Core.Internal;
using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Graph;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Checkpointing;

/// <summary>
/// The checkpoint lifecycle's defects that lost retained checkpoints, deleted savepoints or let a job start over or hang
/// (issue 11), each shown on a real cluster.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CheckpointLifecycleTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    // An input far longer than any test: the job is still running whenever the test acts on it.
    private const long Endless = 100_000_000;

    [Fact]
    public async Task A_checkpoint_whose_trigger_the_control_stream_does_not_deliver_still_completes()
    {
        var settings = new CheckpointingSettings { Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("checkpoints"), Interval = TimeSpan.FromHours(1) };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(Endless, 30, 2, 2_000, settings));
        await Poll.UntilAsync(async () => (await fixture.Platform.GetStatusAsync(jobId)).State == JobState.Running, Timeout, () => "the job runs");

        // Every stream delivery to the job's subtasks fails, as the pub-sub of the trigger stream was seen to drop them
        // after a silo failure (memory streams deliver batches; a single event goes through DeliverImmutable).
        const int armed = 1_000_000;
        string[] deliveries = ["DeliverBatch", "DeliverImmutable"];
        foreach (var method in deliveries)
        {
            CallFaults.Fail(method, jobId + "/", armed);
        }

        try
        {
            var checkpoint = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
            Assert.True(checkpoint.Status == CheckpointStatus.Completed, $"checkpoint {checkpoint.Id} ended {checkpoint.Status}: {checkpoint.FailureReason}");
            Assert.True(deliveries.Any(m => CallFaults.Remaining(m, jobId + "/") < armed), "no stream delivery to the job's subtasks was attempted, so the test proved nothing");
        }
        finally
        {
            foreach (var method in deliveries)
            {
                CallFaults.Clear(method, jobId + "/");
            }

            await fixture.Platform.CancelAsync(jobId);
        }
    }

    [Fact]
    public async Task A_cancel_while_restarting_keeps_the_checkpoints_the_job_retains_on_cancellation()
    {
        var directory = TestData.NewDirectory("checkpoints");
        var settings = new CheckpointingSettings { Storage = CheckpointStorageKind.FileSystem, Directory = directory, Retention = CheckpointRetention.RetainOnCancellation };
        // A restart delay no test waits for: the job stays RESTARTING until it is cancelled.
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(Endless, 30, 2, 2_000, settings, RestartStrategy.FixedDelayRestart(3, TimeSpan.FromHours(1))));
        var checkpoint = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
        Assert.Equal(CheckpointStatus.Completed, checkpoint.Status);

        FailureSwitch.Arm(jobId);
        await Poll.UntilAsync(async () => (await fixture.Platform.GetStatusAsync(jobId)).State == JobState.Restarting, Timeout, () => "the job restarts after its operator failed");
        var canceled = await fixture.Platform.CancelAsync(jobId);

        Assert.Equal(JobState.Canceled, canceled.State);
        Assert.True(File.Exists(Path.Combine(directory, jobId, $"chk-{checkpoint.Id}", "_metadata")), $"checkpoint {checkpoint.Id} was deleted by a cancel while the job was restarting");
    }

    [Fact]
    public async Task A_job_whose_stop_with_savepoint_lost_its_acknowledgements_does_not_finish_and_fails_over_to_its_latest_checkpoint()
    {
        var settings = new CheckpointingSettings { Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("checkpoints"), Timeout = TimeSpan.FromSeconds(20) };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(Endless, 30, 2, 2_000, settings));
        var checkpoint = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
        Assert.Equal(CheckpointStatus.Completed, checkpoint.Status);

        AckFaults.DropAll(jobId);
        try
        {
            var stop = fixture.Platform.StopWithSavepointAsync(jobId, new SavepointRequest(), Timeout);
            JobStatusInfo? seen = null;
            await Poll.UntilAsync(
                async () => (seen = await fixture.Platform.GetStatusAsync(jobId)) is { Attempt: 1 } s && s.Tasks.All(t => t.State == TaskState.Finished),
                Timeout,
                () => $"every subtask finishes after the stop's barrier (job {seen?.State}, attempt {seen?.Attempt}, subtasks {string.Join(", ", seen?.Tasks.Select(t => $"{t.TaskName}#{t.SubtaskIndex} {t.State}") ?? [])})");

            // The stop's savepoint is still pending (its acknowledgements are lost): finishing now would delete it and the
            // checkpoint the job must resume from.
            var whilePending = await fixture.Platform.GetStatusAsync(jobId);
            Assert.Equal(JobState.Running, whilePending.State);

            AckFaults.Release(jobId);
            var failed = await Assert.ThrowsAsync<InvalidOperationException>(() => stop);
            Assert.Contains("expired", failed.Message);
        }
        finally
        {
            AckFaults.Release(jobId);
        }

        await Poll.UntilAsync(
            async () => (await fixture.Platform.GetStatusAsync(jobId)) is { State: JobState.Running, Attempt: 2 },
            Timeout,
            () => "the job restarts from its latest checkpoint");
        var restarted = await fixture.Platform.GetStatusAsync(jobId);
        Assert.Equal(checkpoint.Id, restarted.RestoredFromCheckpoint);
        await fixture.Platform.CancelAsync(jobId);
    }

    [Fact]
    public async Task A_coordinator_that_finds_a_stop_whose_savepoint_was_committed_before_its_state_was_saved_keeps_the_savepoint()
    {
        var settings = new CheckpointingSettings { Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("checkpoints") };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(Endless, 30, 2, 2_000, settings));
        await fixture.Platform.WaitUntilRunningAsync(jobId, timeout: Timeout);
        var coordinator = fixture.Cluster.Client.GetGrain<ICheckpointCoordinatorGrain>(jobId);

        // Hold the stop's acknowledgements, so that the coordinator's persisted state shows the stop in progress.
        AckFaults.HoldAll(jobId);
        Task<SavepointInfo> stop;
        byte[] whilePending;
        string stateFile;
        try
        {
            stop = fixture.Platform.StopWithSavepointAsync(jobId, new SavepointRequest(), Timeout);
            await Poll.UntilAsync(async () => (await coordinator.GetStatistics()).InProgress == 1, Timeout, () => "the stop with savepoint is in progress");
            stateFile = CoordinatorStateFile(jobId);
            whilePending = await File.ReadAllBytesAsync(stateFile);
        }
        finally
        {
            AckFaults.Release(jobId);
        }

        var savepoint = await stop;
        Assert.True(File.Exists(Path.Combine(savepoint.Path, "_metadata")));

        // What a silo loss between writing the savepoint's _metadata and persisting the coordinator's state leaves: a
        // committed savepoint, and persisted state that still says the stop is in progress.
        await File.WriteAllBytesAsync(stateFile, whilePending);
        await coordinator.AsReference<IGrainManagementExtension>().DeactivateOnIdle();
        await Poll.UntilAsync(
            async () => (await coordinator.GetStatistics()).History.Any(h => h.Id == savepoint.CheckpointId && h.Status != CheckpointStatus.InProgress),
            Timeout,
            () => "a new coordinator activation settles the stop it found");

        var stats = await coordinator.GetStatistics();
        Assert.Equal(CheckpointStatus.Completed, stats.History.First(h => h.Id == savepoint.CheckpointId).Status);
        Assert.True(File.Exists(Path.Combine(savepoint.Path, "_metadata")), "the completed savepoint was deleted by the coordinator's next activation");
        Assert.Equal(JobState.Finished, (await fixture.Platform.GetStatusAsync(jobId)).State);
    }

    // The coordinator's control state in the test silos' file-system grain storage ({state}/platform/coordinator/{type}/{key}.state).
    private static string CoordinatorStateFile(string jobId)
    {
        var root = Path.Combine(Path.GetTempPath(), "platform-tests");
        var name = Uri.EscapeDataString(jobId) + ".state";
        return Directory.EnumerateDirectories(root, "cluster-*")
            .Select(cluster => Path.Combine(cluster, "state", "platform", "coordinator"))
            .Where(Directory.Exists)
            .SelectMany(dir => Directory.EnumerateFiles(dir, name, SearchOption.AllDirectories))
            .Single();
    }

    [Fact]
    public async Task A_completed_checkpoint_subsumes_an_older_one_still_in_progress_so_the_latest_completed_never_goes_back()
    {
        var directory = TestData.NewDirectory("checkpoints");
        var settings = new CheckpointingSettings { Storage = CheckpointStorageKind.FileSystem, Directory = directory, MaxConcurrentCheckpoints = 2 };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(Endless, 30, 2, 2_000, settings));
        var first = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
        Assert.Equal(CheckpointStatus.Completed, first.Status);

        var coordinator = fixture.Cluster.Client.GetGrain<ICheckpointCoordinatorGrain>(jobId);
        AckFaults.Hold(jobId, first.Id + 1);
        try
        {
            var held = await coordinator.TriggerCheckpoint();
            Assert.Equal(first.Id + 1, held);
            var newer = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
            Assert.Equal(CheckpointStatus.Completed, newer.Status);

            var stats = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
            var subsumed = Assert.Single(stats.History, h => h.Id == held);
            Assert.Equal(CheckpointStatus.Failed, subsumed.Status);
            Assert.Equal(CheckpointFailureReason.Subsumed, subsumed.FailureCause);
            Assert.Equal(newer.Id, stats.LatestCompleted!.Id);
            Assert.Equal([newer.Id], stats.Retained);
            // A subsumed checkpoint is not a failure of the job's own making.
            Assert.Equal(0, stats.History.Count(h => h.Status == CheckpointStatus.Failed && h.FailureCause != CheckpointFailureReason.Subsumed));
        }
        finally
        {
            AckFaults.Release(jobId);
        }

        // The held acknowledgements arrive late and are discarded; the next checkpoint builds on the newer one.
        var next = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
        Assert.Equal(CheckpointStatus.Completed, next.Status);
        var after = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
        Assert.DoesNotContain(after.History, h => h.Id == first.Id + 1 && h.Status == CheckpointStatus.Completed);
        Assert.False(Directory.Exists(Path.Combine(directory, jobId, $"chk-{first.Id + 1}")), "the subsumed checkpoint's files are left behind");
        await fixture.Platform.CancelAsync(jobId);
    }

    [Fact]
    public async Task A_job_whose_only_checkpoint_cannot_be_restored_fails_naming_it_instead_of_starting_from_scratch()
    {
        var directory = TestData.NewDirectory("checkpoints");
        var settings = new CheckpointingSettings { Storage = CheckpointStorageKind.FileSystem, Directory = directory, RetainedCheckpoints = 1 };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(200_000, 30, 2, 2_000, settings));
        var checkpoint = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
        Assert.Equal(CheckpointStatus.Completed, checkpoint.Status);
        var stateFile = Directory.GetFiles(Path.Combine(directory, jobId, $"chk-{checkpoint.Id}"), "*.state").First();
        File.Delete(stateFile);

        FailureSwitch.Arm(jobId);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Failed, $"Job ended {status.State} (restored from {status.RestoredFromCheckpoint?.ToString() ?? "nothing"}): {status.Failure?.Describe()}");
        Assert.Contains("none can be restored", status.Failure!.Message);
        Assert.Contains($"checkpoint {checkpoint.Id}:", status.Failure.Message);
        Assert.Contains(Path.GetFileName(stateFile), status.Failure.Message);
        // Kept: the job failed, so its checkpoints stay for a repair or a resume.
        Assert.True(File.Exists(Path.Combine(directory, jobId, $"chk-{checkpoint.Id}", "_metadata")));
    }

    [Fact]
    public async Task Periodic_checkpoints_resume_after_the_coordinator_is_lost_though_nothing_else_calls_it()
    {
        var directory = TestData.NewDirectory("checkpoints");
        var interval = TimeSpan.FromSeconds(3);
        var settings = new CheckpointingSettings { Interval = interval, Storage = CheckpointStorageKind.FileSystem, Directory = directory };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(Endless, 30, 2, 2_000, settings));
        long Newest() => Directory.Exists(Path.Combine(directory, jobId))
            ? Directory.GetDirectories(Path.Combine(directory, jobId), "chk-*").Where(d => File.Exists(Path.Combine(d, "_metadata"))).Select(d => long.Parse(Path.GetFileName(d)[4..])).DefaultIfEmpty(0).Max()
            : 0;
        await Poll.UntilAsync(() => Newest() >= 1, Timeout, () => "a periodic checkpoint completes");

        // What a silo loss does to the coordinator alone: its activation, with its timer, is gone. Right after a
        // checkpoint completed no acknowledgement is on its way (the next trigger is seconds away, and any sent meanwhile
        // are lost), and the test reads the checkpoint directory only: no call activates the coordinator again but the
        // platform's own.
        await Poll.UntilAsync(() => Newest() >= 2, Timeout, () => "a second periodic checkpoint completes");
        AckFaults.DropAll(jobId);
        try
        {
            await fixture.Cluster.Client.GetGrain<ICheckpointCoordinatorGrain>(jobId).AsReference<IGrainManagementExtension>().DeactivateOnIdle();
        }
        finally
        {
            AckFaults.Release(jobId);
        }

        var atLoss = Newest();
        await Poll.UntilAsync(() => Newest() >= atLoss + 2, Timeout, () => $"periodic checkpoints resume after checkpoint {atLoss} (newest now {Newest()})");
        await fixture.Platform.CancelAsync(jobId);
    }

    [Fact]
    public async Task A_job_keeps_checkpointing_and_stops_with_a_self_contained_savepoint_after_a_keyed_subtask_finished_holding_state()
    {
        const long finiteRecords = 4_000;
        const int words = 20;
        var settings = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(200), Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("checkpoints") };
        var job = new StreamJobBuilder("partly-finished") { DefaultParallelism = 2, Checkpointing = settings };
        job.AddSource(new WordGenerator { Count = finiteRecords, Words = words, RecordsPerSecondPerSubtask = 4_000 }, "finite words").Uid("finite-words")
            .KeyBy(new WordKey())
            .Process(new CountWords(), "count").Uid("count")
            .SinkTo(new CollectSink<WordCount>(), "collect").Uid(CheckpointTestJobs.CountsSink);
        job.AddSource(new SequenceSource { RecordsPerSecondPerSubtask = 1_000 }, "endless").Uid("endless")
            .Map(new Identity<long>(), "identity").Uid("identity")
            .SinkTo(new DiscardingSink<long>(), "discard").Uid("discard");
        var jobId = await fixture.Platform.SubmitAsync(job);

        await Poll.UntilAsync(
            async () => (await fixture.Platform.GetStatusAsync(jobId)).Tasks.Where(t => t.OperatorUids.Contains("count")).All(t => t.State == TaskState.Finished),
            Timeout,
            () => "the counting subtasks finish with their bounded input");
        var completedAtFinish = (await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).Completed;
        await Poll.UntilAsync(
            async () => (await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).Completed >= completedAtFinish + 2,
            Timeout,
            () => "checkpoints keep completing after subtasks finished holding keyed state");

        var savepoint = await fixture.Platform.StopWithSavepointAsync(jobId, new SavepointRequest(), Timeout);

        // Self-contained: the finished subtasks' final state was copied in beside the savepoint's metadata.
        var states = Directory.GetFiles(savepoint.Path, "*.state", SearchOption.AllDirectories);
        Assert.Equal(2, states.Count(f => Path.GetFileName(f).StartsWith("final-", StringComparison.Ordinal)));

        // The counts the finished subtasks held come back: a job resumed from the savepoint counts the same words again on top.
        var resumed = new StreamJobBuilder("partly-finished-resumed")
        {
            DefaultParallelism = 2,
            Checkpointing = settings,
            RestoreFrom = new RestoreSettings { Path = savepoint.Path, AllowNonRestoredState = true },
        };
        resumed.AddSource(new WordGenerator { Count = finiteRecords, Words = words, RecordsPerSecondPerSubtask = 4_000 }, "more words").Uid("more-words")
            .KeyBy(new WordKey())
            .Process(new CountWords(), "count").Uid("count")
            .SinkTo(new CollectSink<WordCount>(), "collect").Uid(CheckpointTestJobs.CountsSink);
        var resumedId = await fixture.Platform.SubmitAsync(resumed);
        var status = await fixture.Platform.WaitForCompletionAsync(resumedId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Resumed job ended {status.State}: {status.Failure?.Describe()}");
        var expected = CheckpointTestJobs.ExpectedCounts(finiteRecords, words).ToDictionary(p => p.Key, p => 2 * p.Value);
        var counts = WordCountJob.FinalCounts(await fixture.Platform.GetCollectedAsync<WordCount>(resumedId, CheckpointTestJobs.CountsSink));
        Assert.Equal(expected.OrderBy(p => p.Key), counts.OrderBy(p => p.Key));
    }
}
