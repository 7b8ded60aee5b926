using Platform.Checkpointing;
using Platform.Runtime;
using Platform.Samples;
using Platform.State;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Checkpointing;

[Collection(ClusterCollection.Name)]
public sealed class CheckpointingTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    private async Task<CheckpointStatistics> WaitForCompletedCheckpoints(string jobId, long count)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            var stats = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
            if (stats.Completed >= count)
            {
                return stats;
            }

            var status = await fixture.Platform.GetStatusAsync(jobId);
            Assert.False(status.State.IsTerminal(), $"job ended {status.State} before {count} checkpoints completed: {status.Failure}");
            Assert.True(DateTime.UtcNow < deadline, $"only {stats.Completed} checkpoints completed; latest failure: {stats.LatestFailed?.FailureReason}");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Periodic_checkpoints_complete_report_statistics_and_keep_only_the_retained()
    {
        var directory = TestData.NewDirectory("checkpoints");
        var settings = new CheckpointingSettings
        {
            Interval = TimeSpan.FromMilliseconds(200),
            RetainedCheckpoints = 2,
            Storage = CheckpointStorageKind.FileSystem,
            Directory = directory,
        };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(1_000_000, 50, 2, 2_000, settings));

        // While the job runs, after each of several completed checkpoints: exactly the newest two are retained, in the
        // coordinator's list and on disk (directories whose _metadata is written). Retention deletes the older one just
        // after the newer completes, so each check waits for a moment when the statistics and the disk agree.
        var checkedUpTo = 0L;
        for (var round = 0; round < 4; round++)
        {
            await Poll.UntilAsync(
                async () =>
                {
                    var before = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
                    var onDisk = CommittedCheckpoints(directory, jobId);
                    var after = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
                    var latest = after.LatestCompleted?.Id ?? 0;
                    return latest > checkedUpTo
                        && before.LatestCompleted?.Id == latest
                        && after.Retained.SequenceEqual(before.Retained)
                        && after.Retained.SequenceEqual(after.History.Where(c => c.Status == CheckpointStatus.Completed).Take(2).Select(c => c.Id).Order())
                        && after.Retained.Count == Math.Min(2, after.Completed)
                        && onDisk.SequenceEqual(after.Retained);
                },
                Timeout,
                () => $"after checkpoint {checkedUpTo}, the next completed one leaves exactly the newest 2 retained while the job runs " +
                      $"(retained now: [{string.Join(", ", fixture.Platform.GetCheckpointStatisticsAsync(jobId).GetAwaiter().GetResult().Retained)}], " +
                      $"on disk: [{string.Join(", ", CommittedCheckpoints(directory, jobId))}])");
            var status = await fixture.Platform.GetStatusAsync(jobId);
            Assert.Equal(JobState.Running, status.State);
            checkedUpTo = (await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).LatestCompleted!.Id;
        }

        var stats = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
        Assert.True(stats.Completed >= 4, $"{stats.Completed} checkpoints completed");
        var completed = stats.LatestCompleted!;
        Assert.Equal(CheckpointStatus.Completed, completed.Status);
        Assert.True(completed.StateSize > 0);
        Assert.NotNull(completed.EndToEndDuration);
        Assert.Equal(4, completed.SubtasksTotal);
        Assert.Equal(completed.SubtasksTotal, completed.Subtasks.Count);
        Assert.Contains(completed.Subtasks, s => s.TaskName.Contains("count") && s.StateSize > 0);

        // Sources have no inputs to align: exactly zero. The counting subtasks hold state: a measured synchronous part,
        // an asynchronous part that wrote a file, and an alignment of their two inputs (one barrier per upstream subtask).
        var sources = completed.Subtasks.Where(s => s.TaskName.StartsWith("words", StringComparison.Ordinal)).ToList();
        var counts = completed.Subtasks.Where(s => s.TaskName.StartsWith("count", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, sources.Count);
        Assert.Equal(2, counts.Count);
        Assert.All(sources, s => Assert.Equal(TimeSpan.Zero, s.AlignmentDuration));
        Assert.All(counts, s => Assert.True(s.SyncDuration > TimeSpan.Zero && s.AsyncDuration > TimeSpan.Zero && s.AlignmentDuration > TimeSpan.Zero, $"{s.TaskName}/{s.SubtaskIndex}: {s}"));

        // Every acknowledgement lies between the trigger and the completion.
        Assert.All(completed.Subtasks, s => Assert.InRange(s.AcknowledgedAt, completed.TriggeredAt, completed.TriggeredAt + completed.EndToEndDuration!.Value));

        await fixture.Platform.CancelAsync(jobId);
        Assert.Equal(JobState.Canceled, (await fixture.Platform.WaitForCompletionAsync(jobId, Timeout)).State);
        // Deleted on cancellation (the default retention), leaving nothing behind.
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(directory, jobId)));
    }

    // The checkpoints committed on disk (their _metadata written), oldest first.
    private static List<long> CommittedCheckpoints(string directory, string jobId) => !Directory.Exists(Path.Combine(directory, jobId))
        ? []
        : [.. Directory.EnumerateDirectories(Path.Combine(directory, jobId), "chk-*")
            .Where(d => File.Exists(Path.Combine(d, "_metadata")))
            .Select(d => long.Parse(Path.GetFileName(d)["chk-".Length..], System.Globalization.CultureInfo.InvariantCulture))
            .Order()];

    [Fact]
    public async Task Retained_checkpoints_are_kept_on_disk_with_their_metadata_and_survive_cancellation_when_asked()
    {
        var directory = TestData.NewDirectory("checkpoints");
        var settings = new CheckpointingSettings
        {
            Interval = TimeSpan.FromMilliseconds(150),
            RetainedCheckpoints = 2,
            Storage = CheckpointStorageKind.FileSystem,
            Directory = directory,
            Retention = CheckpointRetention.RetainOnCancellation,
        };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(1_000_000, 50, 2, 2_000, settings));
        await WaitForCompletedCheckpoints(jobId, 5);
        await fixture.Platform.CancelAsync(jobId);
        await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        var checkpoints = Directory.GetDirectories(Path.Combine(directory, jobId)).Select(Path.GetFileName).ToList();
        Assert.Equal(2, checkpoints.Count);
        Assert.All(checkpoints, c => Assert.True(File.Exists(Path.Combine(directory, jobId, c!, "_metadata")), $"{c} has no _metadata"));
        Assert.Empty(Directory.EnumerateFiles(directory, "*.tmp", SearchOption.AllDirectories));
    }

    [Theory]
    [InlineData(CheckpointStorageKind.FileSystem, StateBackendKind.Heap, null)]
    [InlineData(CheckpointStorageKind.InMemory, StateBackendKind.Heap, null)]
    [InlineData(CheckpointStorageKind.FileSystem, StateBackendKind.RocksDb, true)]
    [InlineData(CheckpointStorageKind.FileSystem, StateBackendKind.RocksDb, false)]
    [InlineData(CheckpointStorageKind.InMemory, StateBackendKind.RocksDb, null)]
    public async Task An_operator_failure_restarts_from_the_latest_checkpoint_and_state_is_exactly_once(CheckpointStorageKind storage, StateBackendKind backend, bool? incremental)
    {
        const long records = 30_000;
        const int words = 40;
        var settings = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(100), Storage = storage, Directory = TestData.NewDirectory("checkpoints"), Incremental = incremental };
        var job = CheckpointTestJobs.WordCount(records, words, 3, 4_000, settings);
        job.StateBackend = backend;
        var jobId = await fixture.Platform.SubmitAsync(job);

        await WaitForCompletedCheckpoints(jobId, 2);
        FailureSwitch.Arm(jobId);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(1, status.Restarts);
        Assert.Contains("injected failure", status.RestartCauses[0].Message);
        var stats = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
        Assert.Equal(1, stats.Restored);

        // The sink is at-least-once (records after the checkpoint are emitted again), but the keyed state is exact:
        // each word's highest running count equals its true count, neither more (double counting) nor less (loss).
        var running = await fixture.Platform.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink);
        Assert.Equal(CheckpointTestJobs.ExpectedCounts(records, words).OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));
        Assert.True(running.Count >= records);
    }

    [Fact]
    public async Task A_checkpoint_can_be_triggered_by_hand()
    {
        var settings = new CheckpointingSettings { Storage = CheckpointStorageKind.InMemory };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(1_000_000, 20, 2, 1_000, settings));

        var first = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
        var second = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);

        Assert.Equal(CheckpointStatus.Completed, first.Status);
        Assert.True(first.IsManual);
        Assert.True(second.Id > first.Id);
        var stats = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
        Assert.Equal(2, stats.Completed);
        await fixture.Platform.CancelAsync(jobId);
    }

    [Fact]
    public async Task Triggering_a_checkpoint_of_a_job_without_checkpointing_is_a_clear_error()
    {
        var jobId = await fixture.Platform.SubmitAsync(WordCountJob.Build(TestData.WriteText(10, seed: 1), 1));
        await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => fixture.Platform.TriggerCheckpointAsync(jobId));
        Assert.Contains("not running with checkpoints enabled", error.Message);
    }
}
