using Platform.Diagnostics;

namespace Platform.Checkpointing;

/// <summary>
/// The job's checkpoint statistics (Flink's CheckpointStatsTracker): counters, the recent history, the outcomes of
/// savepoints (kept longer, for retried requests), and the platform's checkpoint metrics and spans. Lives in the
/// persisted state, so that the history survives the loss of the coordinator's silo (Flink's is lost with its JobManager).
/// </summary>
internal sealed class CheckpointStatsTracker(CoordinatorState state, StreamingMetrics metrics, string jobId, int historySize)
{
    private const int MaxRememberedSavepoints = 100;

    private string? JobName => state.Start?.JobName;

    /// <summary>A checkpoint was triggered: it is in progress until it is reported completed or failed.</summary>
    public void ReportTriggered(PendingCheckpoint checkpoint)
    {
        if (!checkpoint.Type.IsSavepoint)
        {
            metrics.CheckpointsInProgress.Add(1, StreamingMetrics.JobTags(jobId, JobName));
        }
    }

    public void ReportCompleted(PendingCheckpoint checkpoint, long stateSize)
    {
        state.Completed++;
        var stats = checkpoint.Stats(CheckpointStatus.Completed) with { StateSize = stateSize };
        if (!checkpoint.Type.IsSavepoint)
        {
            // Flink's checkpoint metrics leave savepoints out; their spans are kept (kind savepoint).
            var tags = StreamingMetrics.JobTags(jobId, JobName);
            var duration = (DateTimeOffset.UtcNow - checkpoint.TriggeredAt).TotalMilliseconds;
            metrics.CheckpointsInProgress.Add(-1, tags);
            metrics.CheckpointsCompleted.Add(1, tags);
            metrics.CheckpointDuration.Record(duration, tags);
            metrics.LastCheckpointDuration.Record(duration, tags);
            metrics.LastCheckpointSize.Record(stats.CheckpointedSize, tags);
            metrics.LastCheckpointFullSize.Record(stateSize, tags);
        }

        CheckpointTracing.RecordCheckpoint(jobId, JobName, checkpoint, stats, failure: null, message: null);
        Record(stats);
    }

    public void ReportFailed(PendingCheckpoint checkpoint, CheckpointFailureReason reason, string message)
    {
        state.Failed++;
        var stats = checkpoint.Stats(CheckpointStatus.Failed) with { FailureReason = message, FailureCause = reason };
        if (!checkpoint.Type.IsSavepoint)
        {
            metrics.CheckpointsInProgress.Add(-1, StreamingMetrics.JobTags(jobId, JobName));
        }

        metrics.CheckpointsFailed.Add(1, StreamingMetrics.FailureTags(jobId, JobName, reason));
        CheckpointTracing.RecordCheckpoint(jobId, JobName, checkpoint, stats, reason, message);
        Record(stats);
    }

    /// <summary>The outcome of a checkpoint or savepoint that ended, if it is still remembered.</summary>
    public CheckpointStats? Find(long checkpointId) =>
        state.History.FirstOrDefault(h => h.Id == checkpointId) ?? state.Savepoints.GetValueOrDefault(checkpointId);

    /// <summary>The savepoint a retried request already triggered.</summary>
    public long? FindRequest(string requestId) => state.SavepointRequests.TryGetValue(requestId, out var id) ? id : null;

    /// <summary>Remembers which savepoint a request triggered (persisted with the id, before the trigger goes out).</summary>
    public void RememberRequest(string requestId, long checkpointId)
    {
        state.SavepointRequests[requestId] = checkpointId;
        while (state.SavepointRequests.Count > MaxRememberedSavepoints)
        {
            state.SavepointRequests.Remove(state.SavepointRequests.MinBy(r => r.Value).Key);
        }
    }

    public CheckpointStatistics Statistics(IEnumerable<PendingCheckpoint> pending, IReadOnlySet<long> retained)
    {
        var inProgress = pending.OrderByDescending(p => p.Id).ToList();
        return new CheckpointStatistics
        {
            Completed = state.Completed,
            Failed = state.Failed,
            InProgress = inProgress.Count,
            Restored = state.Restored,
            LatestRestoredId = state.LatestRestoredId,
            History = [.. inProgress.Select(p => p.Stats(CheckpointStatus.InProgress)).Concat(state.History)],
            SkippedAsCorrupt = [.. state.UnrestorableReasons],
            Retained = [.. retained.Order()],
        };
    }

    private void Record(CheckpointStats stats)
    {
        if (stats.SavepointPath is not null)
        {
            state.Savepoints[stats.Id] = stats;
            while (state.Savepoints.Count > MaxRememberedSavepoints)
            {
                state.Savepoints.Remove(state.Savepoints.Keys.Min());
            }
        }

        state.History.Insert(0, stats);
        if (state.History.Count > historySize)
        {
            state.History.RemoveRange(historySize, state.History.Count - historySize);
        }
    }
}
