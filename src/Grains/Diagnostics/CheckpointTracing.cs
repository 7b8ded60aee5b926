using System.Diagnostics;
using Platform.Checkpointing;

namespace Platform.Diagnostics;

/// <summary>
/// The spans of checkpoints and restores on <see cref="PlatformTelemetry.CheckpointsActivitySourceName"/>. A checkpoint's
/// span and its subtasks' spans are made by the coordinator when the checkpoint ends, with explicit start and end times
/// from what it already has: its trigger time, and each acknowledgement's arrival and timings (alignment, sync, async).
/// So nothing new crosses a grain boundary, every time of one trace comes from one clock (no skew between silos), and a
/// span never stays open across grain turns (an exporter only sees spans that ended anyway). The price: a subtask's span
/// ends when its acknowledgement arrived, so it is shifted late by the acknowledgement's latency.
/// </summary>
internal static class CheckpointTracing
{
    public static readonly ActivitySource Source = new(PlatformTelemetry.CheckpointsActivitySourceName, "1.0");

    /// <summary>Records the spans of a checkpoint that ended (completed or failed).</summary>
    public static void RecordCheckpoint(string jobId, string? jobName, PendingCheckpoint pending, CheckpointStats stats, CheckpointFailureReason? failure, string? message)
    {
        if (!Source.HasListeners())
        {
            return;
        }

        // A root of its own: the call that happened to end the checkpoint (an acknowledgement, a timer) is not its parent.
        var ambient = Activity.Current;
        Activity.Current = null;
        try
        {
            var end = DateTimeOffset.UtcNow;
            var tags = new ActivityTagsCollection
            {
                [PlatformTelemetry.Tags.JobId] = jobId,
                [PlatformTelemetry.Tags.JobName] = jobName ?? "",
                [PlatformTelemetry.Tags.CheckpointId] = pending.Id,
                [PlatformTelemetry.Tags.CheckpointKind] = pending.Type switch { { IsStop: true } => "stop-with-savepoint", { IsSavepoint: true } => "savepoint", _ => "checkpoint" },
                [PlatformTelemetry.Tags.Outcome] = failure is null ? "completed" : "failed",
                ["checkpoint.manual"] = pending.IsManual,
                ["checkpoint.attempt"] = pending.Attempt,
                ["checkpoint.size"] = stats.StateSize,
                ["checkpoint.checkpointed_size"] = stats.CheckpointedSize,
                ["checkpoint.subtasks.acknowledged"] = pending.Acknowledged,
                ["checkpoint.subtasks.total"] = pending.Total,
            };
            if (failure is { } reason)
            {
                tags[PlatformTelemetry.Tags.FailureReason] = reason.ToString();
            }

            using var checkpoint = Source.StartActivity(PlatformTelemetry.Spans.Checkpoint, ActivityKind.Internal, default(ActivityContext), tags, startTime: pending.TriggeredAt);
            if (checkpoint is null)
            {
                return;
            }

            foreach (var subtask in stats.Subtasks)
            {
                RecordSubtask(checkpoint, subtask, pending.TriggeredAt);
            }

            if (failure is not null)
            {
                checkpoint.SetStatus(ActivityStatusCode.Error, message);
            }

            End(checkpoint, pending.TriggeredAt, end);
        }
        finally
        {
            Activity.Current = ambient;
        }
    }

    private static void RecordSubtask(Activity checkpoint, SubtaskCheckpointStats subtask, DateTimeOffset triggeredAt)
    {
        // The acknowledgement's timings, laid back from its arrival; never before the trigger (a subtask counted in with
        // its final snapshot, FLIP-147, took no part and shows as an empty span at the trigger).
        var end = subtask.Finished ? triggeredAt : subtask.AcknowledgedAt;
        var total = subtask.AlignmentDuration + subtask.SyncDuration + subtask.AsyncDuration;
        var start = end - total < triggeredAt ? triggeredAt : end - total;
        var tags = new ActivityTagsCollection
        {
            [PlatformTelemetry.Tags.TaskName] = subtask.TaskName,
            [PlatformTelemetry.Tags.SubtaskIndex] = subtask.SubtaskIndex,
            ["subtask.finished"] = subtask.Finished,
            ["checkpoint.alignment_ms"] = subtask.AlignmentDuration.TotalMilliseconds,
            ["checkpoint.sync_ms"] = subtask.SyncDuration.TotalMilliseconds,
            ["checkpoint.async_ms"] = subtask.AsyncDuration.TotalMilliseconds,
            ["checkpoint.size"] = subtask.StateSize,
            ["checkpoint.checkpointed_size"] = subtask.CheckpointedSize,
        };
        using var span = Source.StartActivity(PlatformTelemetry.Spans.CheckpointSubtask, ActivityKind.Internal, checkpoint.Context, tags, startTime: start);
        if (span is null)
        {
            return;
        }

        if (!subtask.Finished)
        {
            // Every subtask that took part has a sync and an async phase, even one shorter than the clock's resolution
            // (an empty state uploads in no measurable time); alignment only where the subtask aligned inputs.
            var at = start;
            at = Phase(span, PlatformTelemetry.Spans.Alignment, at, subtask.AlignmentDuration, end, always: false);
            at = Phase(span, PlatformTelemetry.Spans.Sync, at, subtask.SyncDuration, end, always: true);
            Phase(span, PlatformTelemetry.Spans.Async, at, subtask.AsyncDuration, end, always: true);
        }

        End(span, start, end);
    }

    private static DateTimeOffset Phase(Activity parent, string name, DateTimeOffset start, TimeSpan duration, DateTimeOffset limit, bool always)
    {
        var end = start + duration > limit ? limit : start + duration;
        if (end > start || always)
        {
            using var phase = Source.StartActivity(name, ActivityKind.Internal, parent.Context, startTime: start);
            if (phase is not null)
            {
                End(phase, start, end);
            }
        }

        return end;
    }

    // Stopping an activity whose duration is zero stamps it with the current time: an empty span gets one tick instead.
    private static void End(Activity activity, DateTimeOffset start, DateTimeOffset end) =>
        activity.SetEndTime((end > start ? end : start + TimeSpan.FromTicks(1)).UtcDateTime);

    /// <summary>Starts the span of one subtask's restore; the caller adds what it restored and disposes it.</summary>
    public static Activity? StartRestore(SubtaskMetrics metrics, long checkpointId, int attempt)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        // A root of its own, like a checkpoint's: the grain call that started the subtask is not its parent.
        var ambient = Activity.Current;
        Activity.Current = null;
        var tags = new ActivityTagsCollection();
        foreach (var tag in metrics.Tags)
        {
            tags[tag.Key] = tag.Value;
        }

        tags[PlatformTelemetry.Tags.CheckpointId] = checkpointId;
        tags["task.attempt"] = attempt;
        var activity = Source.StartActivity(PlatformTelemetry.Spans.RestoreSubtask, ActivityKind.Internal, default(ActivityContext), tags);
        Activity.Current = ambient;
        return activity;
    }
}
