using Microsoft.Extensions.Logging;
using Platform.Tasks;

namespace Platform.Checkpointing;

/// <summary>
/// The two ends of a <see cref="PendingCheckpoint"/>: completion (metadata written last, older checkpoints subsumed,
/// subtasks notified, retention applied) and the one abort path.
/// </summary>
internal sealed partial class CheckpointCoordinatorGrain
{
    private async Task CompleteAsync(PendingCheckpoint pending)
    {
        pending.BeginFinalizing();
        var metadata = new CheckpointMetadata
        {
            JobId = JobId,
            CheckpointId = pending.Id,
            TriggeredAt = pending.TriggeredAt,
            CompletedAt = DateTimeOffset.UtcNow,
            MaxParallelism = S.Start!.MaxParallelism,
            Subtasks = [.. pending.Snapshots],
        };
        var savepoint = pending.Type.Savepoint;
        try
        {
            if (savepoint is not null)
            {
                metadata = metadata with { Subtasks = await FinalSnapshotsIntoSavepointAsync(pending, savepoint) };
                await savepoint.Location.WriteMetadataAsync(storageFactory, metadata);
            }
            else
            {
                await Storage!.WriteMetadataAsync(metadata);
            }
        }
        catch (Exception ex)
        {
            var where = savepoint is null ? Storage!.Description : $"'{savepoint.Location.Directory}'";
            await AbortAsync(pending, CheckpointFailureReason.FinalizeFailed, $"its metadata could not be written to {where}: {ex.Message}");
            return;
        }

        pending.MarkCompleted();
        _pending.Remove(pending.Id);
        _decider.OnEnded(DateTimeOffset.UtcNow);
        _stats.ReportCompleted(pending, metadata.StateSize());
        if (savepoint is not null)
        {
            // A savepoint is not a retained checkpoint: no retention, no base for incremental checkpoints. Only a stop
            // with savepoint commits output (the job ends with it); another savepoint's committables stay pending and
            // go into the next checkpoint (Flink's FLIP-193: a restart never restores from it).
            ForgetStop(pending.Id);
            LogSavepointCompleted(JobId, pending.Id, savepoint.Location.Directory, metadata.StateSize());
            if (pending.Type.IsStop && pending.Attempt == S.Start?.Attempt)
            {
                S.CommitNotice = Math.Max(S.CommitNotice ?? 0, pending.Id);
            }

            await state.WriteStateAsync();
            Wake(pending.Id);
            ResendCommitNotice();
            return;
        }

        _store.Add(metadata);
        _failures.Reset();
        LogCompleted(JobId, pending.Id, metadata.StateSize(), DateTimeOffset.UtcNow - pending.TriggeredAt);

        // Completing n subsumes the checkpoints older than n still in progress (Flink's rule): completions, the latest
        // completed checkpoint and notifications all move forward in id order.
        foreach (var older in _pending.Values.Where(p => p.Id < pending.Id && p.Type.CanBeSubsumed).ToList())
        {
            await AbortAsync(older, CheckpointFailureReason.Subsumed, $"checkpoint {pending.Id} completed first");
        }

        // Notify before anything else can fail: the checkpoint is committed. The notice is persisted below and sent
        // again until every subtask confirmed it (see PublishCommitNotice).
        Wake(pending.Id);
        var start = S.Start;
        PublishCommitNotice(pending.Id);

        try
        {
            await _store.ApplyRetentionAsync(Settings.RetainedCheckpoints, start.Attempt, InUseSharedPaths());
            await state.WriteStateAsync();
        }
        catch (Exception ex)
        {
            LogRetentionFailed(ex, JobId, pending.Id);
        }
    }

    // The one abort path: a failure (counted against the tolerable failures if its reason counts), or an abort because
    // the job restarts or ends (quiet: nothing is reported to the job manager).
    private async Task AbortAsync(PendingCheckpoint pending, CheckpointFailureReason reason, string message)
    {
        if (!_pending.Remove(pending.Id) || !pending.TryAbort())
        {
            return;
        }

        var quiet = reason is CheckpointFailureReason.CoordinatorSuspended or CheckpointFailureReason.CoordinatorShutdown;
        _decider.OnEnded(DateTimeOffset.UtcNow);
        if (pending.Type.IsStop && !quiet)
        {
            // What StopWithSavepointAsync reports: the job does not simply stay stopped.
            message += "; its sources had stopped, so the job restarts from its latest checkpoint";
        }

        _stats.ReportFailed(pending, reason, quiet ? $"aborted: {message}" : message);
        ForgetStop(pending.Id);
        var stopMessage = $"stop with savepoint {pending.Id} failed because {message}";
        if (pending.Type.IsStop && !quiet)
        {
            // Persisted with the outcome: the job manager asks before it lets the attempt finish (see GetStopOutcome).
            S.FailedStop = new FailedStop(pending.Attempt, stopMessage);
        }

        var exceeded = !quiet && S.Triggering && _failures.OnFailure(pending, reason, Settings.TolerableFailedCheckpoints);
        if (exceeded)
        {
            // Persisted: a re-activated coordinator must not trigger checkpoints for an attempt that is being failed over.
            S.Triggering = false;
        }

        if (!quiet)
        {
            LogFailed(JobId, pending.Id, reason, message);
        }

        await _cleaner.DiscardAsync(pending, Storage, InUseSharedPaths(), _store.SharedState);
        await state.WriteStateAsync();
        Wake(pending.Id);
        var listener = GrainFactory.GetGrain<ICheckpointFailureListener>(JobId);
        if (pending.Type.IsStop && !quiet)
        {
            // Not awaited: the job manager awaits calls to this grain, so waiting for it here could deadlock.
            _ = NotifyAsync(listener.CheckpointFailureThresholdExceeded(pending.Attempt, stopMessage));
        }
        else if (exceeded)
        {
            var failure = $"Exceeded the tolerable number of failed checkpoints ({Settings.TolerableFailedCheckpoints}): {_failures.ConsecutiveFailures} failed in a row; the last, checkpoint {pending.Id}, failed because {message}";
            _ = NotifyAsync(listener.CheckpointFailureThresholdExceeded(pending.Attempt, failure));
        }
    }

    private async Task AbortAllAsync(CheckpointFailureReason reason, string message, int? startingAttempt = null)
    {
        foreach (var pending in _pending.Values.OrderBy(p => p.Id).ToList())
        {
            await AbortAsync(pending, reason, message);
        }

        if (Storage is not null)
        {
            // No orphans: remove whatever belongs to no committed checkpoint (aborted, or written by a lost silo), and
            // never hand out an id that is already committed (the coordinator's own state may be behind its storage).
            // A starting attempt's subtasks may already be writing their final snapshots (a short job can finish
            // before this call arrives): those files are not orphans.
            var inUse = InUseSharedPaths();
            var finalPrefix = startingAttempt is { } attempt ? $"final-a{attempt}-" : null;
            var committed = await _store.RecoverAsync(inUse, finalPrefix is null ? null : path => Path.GetFileName(path).StartsWith(finalPrefix, StringComparison.Ordinal));
            if (committed.Count > 0 && _ids.EnsureAbove(committed[^1]) is { } behind)
            {
                LogNextIdRaised(JobId, behind, _ids.Peek);
            }
        }

        await state.WriteStateAsync();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Job {JobId}: ignored the acknowledgement of checkpoint {CheckpointId} by {Task} of attempt {Attempt} (current attempt {Current}; not pending)")]
    private partial void LogAcknowledgementIgnored(string jobId, long checkpointId, TaskId task, int attempt, int? current);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId}: completed checkpoint {CheckpointId} ({Size} bytes in {Duration})")]
    private partial void LogCompleted(string jobId, long checkpointId, long size, TimeSpan duration);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: checkpoint {CheckpointId} failed ({Reason}): {Message}")]
    private partial void LogFailed(string jobId, long checkpointId, CheckpointFailureReason reason, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: applying retention after checkpoint {CheckpointId} failed")]
    private partial void LogRetentionFailed(Exception exception, string jobId, long checkpointId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: the checkpoint coordinator's next id {NextId} is not above the committed checkpoints in storage; continuing at {RaisedTo}")]
    private partial void LogNextIdRaised(string jobId, long nextId, long raisedTo);
}
