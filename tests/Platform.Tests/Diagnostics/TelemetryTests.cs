using System.Diagnostics;
using Platform.Checkpointing;
using Platform.Diagnostics;
using Platform.Runtime;
using Platform.Tests.Infrastructure;
using Spans = Platform.Diagnostics.PlatformTelemetry.Spans;
using Tags = Platform.Diagnostics.PlatformTelemetry.Tags;

namespace Platform.Tests.Diagnostics;

/// <summary>The platform's spans and metrics, as a listener in the test cluster's process sees them.</summary>
[Collection(ClusterCollection.Name)]
public sealed class TelemetryTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task A_checkpoint_is_one_span_with_a_child_per_subtask_and_its_phases()
    {
        using var telemetry = new TelemetryRecorder();
        var settings = new CheckpointingSettings { Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("checkpoints") };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(20_000, 30, 2, 4_000, settings));

        var checkpoint = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
        Assert.Equal(CheckpointStatus.Completed, checkpoint.Status);

        var span = Assert.Single(telemetry.SpansOf(jobId), s => s.OperationName == Spans.Checkpoint && Equals(s.GetTagItem(Tags.CheckpointId), checkpoint.Id));
        Assert.Equal(PlatformTelemetry.CheckpointsActivitySourceName, span.Source.Name);
        Assert.Equal(default, span.ParentSpanId);
        Assert.Equal("checkpointed-word-count", span.GetTagItem(Tags.JobName));
        Assert.Equal("checkpoint", span.GetTagItem(Tags.CheckpointKind));
        Assert.Equal("completed", span.GetTagItem(Tags.Outcome));
        Assert.Equal(checkpoint.StateSize, span.GetTagItem("checkpoint.size"));
        Assert.Equal(checkpoint.TriggeredAt.UtcDateTime, span.StartTimeUtc);

        // One child per subtask of both tasks (source chain and keyed count), within the checkpoint's span.
        var spans = telemetry.SpansOf(jobId);
        var children = spans.Where(s => s.ParentSpanId == span.SpanId).ToList();
        Assert.All(children, c => Assert.Equal(Spans.CheckpointSubtask, c.OperationName));
        Assert.Equal(
            checkpoint.Subtasks.Select(s => (s.TaskName, s.SubtaskIndex)).Order(),
            children.Select(c => ((string)c.GetTagItem(Tags.TaskName)!, (int)c.GetTagItem(Tags.SubtaskIndex)!)).Order());
        Assert.Equal(4, children.Count);
        foreach (var child in children)
        {
            Assert.Equal(span.TraceId, child.TraceId);
            Assert.InRange(child.StartTimeUtc, span.StartTimeUtc, span.StartTimeUtc + span.Duration);
            Assert.InRange(child.StartTimeUtc + child.Duration, span.StartTimeUtc, span.StartTimeUtc + span.Duration);
            var stats = checkpoint.Subtasks.Single(s => s.TaskName == (string)child.GetTagItem(Tags.TaskName)! && s.SubtaskIndex == (int)child.GetTagItem(Tags.SubtaskIndex)!);
            Assert.Equal(stats.SyncDuration.TotalMilliseconds, child.GetTagItem("checkpoint.sync_ms"));
            Assert.Equal(stats.AsyncDuration.TotalMilliseconds, child.GetTagItem("checkpoint.async_ms"));

            // The subtasks took part (none had finished): their sync and async phases are spans of their own, in order.
            var phases = spans.Where(s => s.ParentSpanId == child.SpanId).ToDictionary(s => s.OperationName);
            var sync = phases[Spans.Sync];
            var upload = phases[Spans.Async];
            Assert.Equal(stats.SyncDuration, sync.Duration);
            Assert.True(upload.StartTimeUtc >= sync.StartTimeUtc + sync.Duration, "the async part starts after the sync part");
        }

        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
    }

    [Fact]
    public async Task Metrics_carry_job_task_and_subtask_tags_and_count_exactly()
    {
        const long records = 20_000;
        using var telemetry = new TelemetryRecorder();
        var settings = new CheckpointingSettings { Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("checkpoints") };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(records, 30, 2, 4_000, settings));
        var first = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
        var second = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
        Assert.Equal(CheckpointStatus.Completed, second.Status);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        var stats = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);

        // Records in and out per task and subtask: every generated record once through each task (no restart).
        var source = first.Subtasks.First(s => s.TaskName.Contains("words", StringComparison.Ordinal)).TaskName;
        var count = first.Subtasks.First(s => s.TaskName.Contains("count", StringComparison.Ordinal)).TaskName;
        Assert.Equal(records, Sum(telemetry, "platform.task.records_in", jobId, source));
        Assert.Equal(records, Sum(telemetry, "platform.task.records_out", jobId, source));
        Assert.Equal(records, Sum(telemetry, "platform.task.records_in", jobId, count));
        foreach (var task in new[] { source, count })
        {
            var perSubtask = telemetry.Of("platform.task.records_in", jobId).Where(m => Equals(m.Tags[Tags.TaskName], task)).GroupBy(m => m.SubtaskIndex).ToDictionary(g => g.Key!.Value, g => g.Sum(m => m.Value));
            Assert.Equal(new[] { 0, 1 }, perSubtask.Keys.Order());
            Assert.All(perSubtask.Values, v => Assert.InRange(v, 1, records - 1));
        }

        // Records in and out per chained operator (words → fail-on-demand | count → collect): each takes in what the one
        // before it emitted, and only the sink has no output.
        double Operator(string instrument, string name) =>
            telemetry.Of(instrument, jobId).Where(m => Equals(m.Tags.GetValueOrDefault(Tags.OperatorName), name)).Sum(m => m.Value);
        foreach (var name in new[] { "words", "fail-on-demand", "count" })
        {
            Assert.Equal(records, Operator("platform.operator.records_in", name));
        }

        Assert.Equal(records, Operator("platform.operator.records_out", "words"));
        Assert.Equal(records, Operator("platform.operator.records_out", "fail-on-demand"));
        var updates = Operator("platform.operator.records_out", "count");
        Assert.InRange(updates, 1, double.MaxValue);
        Assert.Equal(updates, Operator("platform.operator.records_in", "collect"));
        Assert.DoesNotContain(telemetry.Of("platform.operator.records_out", jobId), m => Equals(m.Tags.GetValueOrDefault(Tags.OperatorName), "collect"));
        Assert.All(telemetry.Of("platform.operator.records_in", jobId), m =>
        {
            Assert.Equal(m.Tags[Tags.OperatorName] is "words" or "fail-on-demand" ? source : count, m.Tags[Tags.TaskName]);
            Assert.NotNull(m.SubtaskIndex);
            Assert.Equal(m.Tags[Tags.OperatorName] is "collect" ? CheckpointTestJobs.CountsSink : m.Tags[Tags.OperatorName], m.Tags[Tags.OperatorUid]);
        });

        var recordsIn = telemetry.Of("platform.task.records_in", jobId);
        Assert.All(recordsIn, m => Assert.Equal("checkpointed-word-count", m.Tags[Tags.JobName]));
        Assert.DoesNotContain(recordsIn, m => m.Tags.ContainsKey(Tags.CheckpointId));

        // Checkpoint counts are exact, none is left in progress, and the last size is the last completed checkpoint's.
        Assert.Equal(stats.Completed, Sum(telemetry, "platform.checkpoint.completed", jobId));
        Assert.True(stats.Completed >= 2, $"{stats.Completed} checkpoints completed");
        Assert.Equal(stats.Failed, Sum(telemetry, "platform.checkpoint.failed", jobId));
        var inProgress = telemetry.Of("platform.checkpoint.in_progress", jobId);
        Assert.Equal(0, inProgress.Sum(m => m.Value));
        Assert.Equal(stats.Completed + stats.Failed, inProgress.Count(m => m.Value > 0));
        var latest = stats.History.First(h => h.Status == CheckpointStatus.Completed);
        Assert.Equal(latest.CheckpointedSize, telemetry.Of("platform.checkpoint.last_size", jobId)[^1].Value);
        Assert.Equal(latest.StateSize, telemetry.Of("platform.checkpoint.last_full_size", jobId)[^1].Value);
        Assert.Equal(stats.Completed, telemetry.Of("platform.checkpoint.last_duration", jobId).Count);

        // One sync and one alignment measurement per subtask for each checkpoint it took part in (not counted in finished).
        var tookPart = stats.History.SelectMany(h => h.Subtasks).Where(s => !s.Finished).GroupBy(s => (s.TaskName, s.SubtaskIndex)).ToDictionary(g => g.Key, g => g.Count());
        var syncs = telemetry.Of("platform.checkpoint.sync", jobId).GroupBy(m => ((string)m.Tags[Tags.TaskName]!, m.SubtaskIndex!.Value)).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(tookPart.OrderBy(p => p.Key), syncs.OrderBy(p => p.Key));
        Assert.Equal(syncs.Values.Sum(), telemetry.Of("platform.checkpoint.alignment", jobId).Count);
        Assert.Equal(4, syncs.Count);
    }

    [Fact]
    public async Task A_restart_from_a_checkpoint_records_a_restore_span_per_subtask_and_a_restart()
    {
        using var telemetry = new TelemetryRecorder();
        var settings = new CheckpointingSettings { Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("checkpoints") };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(30_000, 30, 2, 2_000, settings));
        var checkpoint = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
        Assert.Equal(CheckpointStatus.Completed, checkpoint.Status);

        FailureSwitch.Arm(jobId);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(1, status.Restarts);
        Assert.Equal(checkpoint.Id, (await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).LatestRestoredId);

        var restores = telemetry.SpansOf(jobId).Where(s => s.OperationName == Spans.RestoreSubtask).ToList();
        Assert.Equal(
            checkpoint.Subtasks.Select(s => (s.TaskName, s.SubtaskIndex)).Order(),
            restores.Select(r => ((string)r.GetTagItem(Tags.TaskName)!, (int)r.GetTagItem(Tags.SubtaskIndex)!)).Order());
        Assert.All(restores, r => Assert.Equal(checkpoint.Id, r.GetTagItem(Tags.CheckpointId)));
        Assert.All(restores, r => Assert.Equal(default, r.ParentSpanId));
        Assert.All(restores, r => Assert.NotEqual(ActivityStatusCode.Error, r.Status));

        // The keyed subtasks read back exactly the keyed state the checkpoint holds.
        Assert.Equal(checkpoint.StateSize, restores.Sum(r => (long)r.GetTagItem("restore.bytes")!));
        Assert.True(checkpoint.StateSize > 0, "the checkpoint holds keyed state");
        Assert.Equal(1, Sum(telemetry, "platform.job.restarts", jobId));
        Assert.Equal(4, telemetry.Of("platform.task.restore_duration", jobId).Count);
    }

    private static double Sum(TelemetryRecorder telemetry, string instrument, string jobId, string? task = null) =>
        telemetry.Of(instrument, jobId).Where(m => task is null || Equals(m.Tags.GetValueOrDefault(Tags.TaskName), task)).Sum(m => m.Value);
}
