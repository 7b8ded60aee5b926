using Platform.Diagnostics;

namespace Platform.Checkpointing;

/// <summary>
/// The job's checkpoint statistics (Flink's CheckpointStatsTracker): counters, the recent history, the outcomes of
/// savepoints (kept longer, for retried requests) and the platform's checkpoint metrics. Lives in the persisted state.
/// </summary>
internal sealed class CheckpointStatsTracker(CoordinatorState state)
{
    private const int HistorySize = 20;
    private const int MaxRememberedSavepoints = 100;

    public void ReportCompleted(PendingCheckpoint checkpoint, long stateSize)
    {
        state.Completed++;
        if (!checkpoint.Type.IsSavepoint)
        {
            PlatformMetrics.CheckpointsCompleted.Add(1);
            PlatformMetrics.CheckpointDuration.Record((DateTimeOffset.UtcNow - checkpoint.TriggeredAt).TotalMilliseconds);
            PlatformMetrics.CheckpointSize.Record(stateSize);
        }

        Record(checkpoint.Stats(CheckpointStatus.Completed) with { StateSize = stateSize });
    }

    public void ReportFailed(PendingCheckpoint checkpoint, CheckpointFailureReason reason, string message)
    {
        state.Failed++;
        PlatformMetrics.CheckpointsFailed.Add(1);
        Record(checkpoint.Stats(CheckpointStatus.Failed) with { FailureReason = message, FailureCause = reason });
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
        if (state.History.Count > HistorySize)
        {
            state.History.RemoveRange(HistorySize, state.History.Count - HistorySize);
        }
    }
}
