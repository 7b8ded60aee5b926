using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Orleans.Streams;
using Platform.Hosting;
using Platform.Runtime;
using Platform.Storage;
using Platform.Tasks;

namespace Platform.Checkpointing;

/// <summary>
/// One per job (Flink's CheckpointCoordinator). Triggers checkpoints by publishing on the job's control stream,
/// collects the subtasks' acknowledgements into a <see cref="PendingCheckpoint"/>, commits it by writing its metadata
/// last, and aborts it through one path otherwise. Its collaborators are Flink's: the id counter, the request decider,
/// the completed-checkpoint store (retention), the cleaner, the statistics tracker and the failure manager. It never
/// awaits a call to the job manager, which awaits calls to it.
/// </summary>
[KeepAlive]
[Orleans.Placement.PreferLocalPlacement] // beside the job manager that activates it
internal sealed partial class CheckpointCoordinatorGrain(
    ILogger<CheckpointCoordinatorGrain> logger,
    CheckpointStorageFactory storageFactory,
    SavepointLocations savepointLocations,
    Diagnostics.StreamingMetrics metrics,
    Microsoft.Extensions.Options.IOptions<StreamingPlatformOptions> options,
    [PersistentState("coordinator", PlatformStreams.StateStorageName)] IPersistentState<CoordinatorState> state)
    : Grain, ICheckpointCoordinatorGrain, ICheckpointAcknowledger, ICheckpointCoordinatorControl
{
    private static readonly TimeSpan TriggerRedeliveryInterval = TimeSpan.FromSeconds(3);
    private readonly Dictionary<long, PendingCheckpoint> _pending = [];
    private readonly Dictionary<long, TaskCompletionSource> _waiters = [];
    private readonly CheckpointRequestDecider _decider = new();
    private readonly CheckpointFailureManager _failures = new();
    private CheckpointIdCounter _ids = null!;
    private CheckpointStatsTracker _stats = null!;
    private CheckpointsCleaner _cleaner = null!;
    private CompletedCheckpointStore _store = null!;
    private (CheckpointStorageKind Kind, string? Directory)? _storageLocation;
    private IGrainTimer? _timer;

    private string JobId => this.GetPrimaryKeyString();

    private CoordinatorState S => state.State;

    // Always the job's own settings, persisted with its latest attempt: also while it restarts or after it ended.
    private CheckpointingSettings Settings => S.Start?.Settings ?? new CheckpointingSettings();

    private ICheckpointStorage? Storage => _store.Storage;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _ids = new CheckpointIdCounter(S);
        _stats = new CheckpointStatsTracker(S, metrics, JobId, options.Value.CheckpointHistorySize);
        _cleaner = new CheckpointsCleaner(logger, JobId, storageFactory);
        _store = new CompletedCheckpointStore(S, JobId, _cleaner);

        // A coordinator re-activated after its silo died picks up where it was: same attempt, same settings, and the
        // trigger schedule re-armed (the job manager's heartbeat activates it again if nothing else calls it).
        if (S.Start is { } start)
        {
            EnsureStorage(start.Settings);
            if (S.Triggering)
            {
                _decider.OnStarted(DateTimeOffset.UtcNow);
                ArmTimer(start.Settings);
            }
        }

        if (S.PendingStop is { } lost)
        {
            await RecoverLostStopAsync(lost);
        }

        ResendCommitNotice();
    }

    public async Task Start(CoordinatorStart start)
    {
        // The storage first: a coordinator whose own state was lost has none yet, and the sweep below must still see
        // the committed checkpoints (orphans to delete, ids never to hand out again).
        EnsureStorage(start.Settings);
        // The previous attempt's final snapshots stand in for nobody now: the sweep may delete their files unless the
        // checkpoint being restored references them.
        S.Finished.Clear();
        await AbortAllAsync(CheckpointFailureReason.CoordinatorSuspended, $"the job restarted with attempt {start.Attempt}", start.Attempt);
        S.Start = start;
        S.Triggering = true;
        if (S.PinnedForRestore is not null)
        {
            S.PinnedUntilAttempt = start.Attempt;
        }

        S.FailedStop = null;
        S.CommitNotice = null;
        S.NoFurtherCheckpoints = null;
        _confirmedNotices.Clear();
        _failures.Reset();
        _decider.OnStarted(DateTimeOffset.UtcNow);
        await state.WriteStateAsync();
        ArmTimer(start.Settings);
        LogStarted(JobId, start.Attempt, start.Settings.Interval, Storage!.Description);
    }

    public Task EnsureScheduled(int attempt)
    {
        if (S.Start?.Attempt == attempt && S.Triggering && _timer is null)
        {
            ArmTimer(S.Start.Settings);
        }

        // The job manager's heartbeat: a commit notice not confirmed by every subtask (a call lost, a coordinator
        // re-activated elsewhere) goes out again.
        if (S.Start?.Attempt == attempt)
        {
            ResendCommitNotice();
        }

        return Task.CompletedTask;
    }

    public async Task<FinalCheckpointAnswer> RequestFinalCheckpoint(int attempt, TaskId task)
    {
        if (S.Start is not { } start || start.Attempt != attempt)
        {
            return FinalCheckpointAnswer.None;
        }

        var waiting = _pending.Values.Where(p => p.Attempt == attempt && p.IsAwaiting(task) && p.Trigger is not null).OrderBy(p => p.Id).Select(p => p.Trigger!).ToList();
        if (waiting.Count > 0)
        {
            return new FinalCheckpointAnswer(waiting);
        }

        if (S.NoFurtherCheckpoints is { } impossible)
        {
            LogFinalCheckpointImpossible(JobId, task, impossible);
            return new FinalCheckpointAnswer([], impossible);
        }

        if (S.PendingStop is not null || !S.Triggering)
        {
            // A stop with savepoint commits the subtask's output when it completes; without triggering, the attempt is
            // being failed over or ended, and the next attempt commits from its checkpoint.
            return FinalCheckpointAnswer.None;
        }

        LogFinalCheckpointRequested(JobId, task);
        var id = await TriggerAsync(manual: false, SnapshotType.Checkpoint, requestId: null, Settings.Timeout);
        return _pending.TryGetValue(id, out var pending) && pending.Trigger is { } trigger ? new FinalCheckpointAnswer([trigger]) : FinalCheckpointAnswer.None;
    }

    public async Task Suspend(string reason)
    {
        // The settings stay (retention on a cancel while restarting follows them); triggering stops, and acknowledgements
        // of the suspended attempt find nothing pending.
        // The attempt's subtasks are being cancelled; the next attempt's sinks commit what the restored checkpoint holds.
        S.Triggering = false;
        S.CommitNotice = null;
        await AbortAllAsync(CheckpointFailureReason.CoordinatorSuspended, reason);
    }

    public async Task OnTaskFinished(TaskId task, SubtaskSnapshot? finalSnapshot, long lastCheckpoint)
    {
        if (finalSnapshot is null)
        {
            // The subtask could not write a final snapshot, so no later checkpoint can include it. Subtasks waiting
            // for a final checkpoint to commit their sinks' output hear why and fail the attempt (RequestFinalCheckpoint).
            if (S.Start is not null && S.NoFurtherCheckpoints is null)
            {
                var reason = $"subtask {task} finished without a final snapshot of its state (writing it failed; see that subtask's log), so no checkpoint after {lastCheckpoint} can complete";
                LogNoFurtherCheckpoints(JobId, task, lastCheckpoint);
                S.NoFurtherCheckpoints = reason;
                S.Triggering = false;
                foreach (var pending in _pending.Values.Where(p => p.Id > lastCheckpoint).ToList())
                {
                    await AbortAsync(pending, CheckpointFailureReason.Declined, reason);
                }

                await state.WriteStateAsync();
            }

            return;
        }

        // Its end of input followed all its records, so its final state is consistent with every checkpoint it did not
        // take part in itself (FLIP-147). For those it did, its own acknowledgement (which may still be on its way) counts.
        S.Finished[task] = finalSnapshot;
        await state.WriteStateAsync();
        foreach (var pending in _pending.Values.Where(p => p.Id > lastCheckpoint).OrderBy(p => p.Id).ToList())
        {
            if (pending.Acknowledge(task, finalSnapshot, SubtaskCheckpointMetrics.Finished, finished: true) && pending.IsFullyAcknowledged)
            {
                await CompleteAsync(pending);
            }
        }
    }

    public async Task Shutdown(JobState finalState)
    {
        // The job ended: no subtask is left to hear of a commit.
        S.Triggering = false;
        S.CommitNotice = null;
        _timer?.Dispose();
        _timer = null;
        if (S.Start is { } start)
        {
            EnsureStorage(start.Settings);
        }

        await AbortAllAsync(CheckpointFailureReason.CoordinatorShutdown, $"the job is {finalState}");
        var keep = finalState == JobState.Failed
            || (finalState == JobState.Canceled && Settings.Retention == CheckpointRetention.RetainOnCancellation);
        if (!keep && Storage is not null)
        {
            await _store.DeleteAllAsync();
        }

        await state.WriteStateAsync();
    }

    public async Task<long> TriggerCheckpoint()
    {
        if (CheckpointRequestDecider.RefuseManual(JobId, Settings, S.Triggering && S.Start is not null, _pending.Values, savepoint: false) is { } refusal)
        {
            throw new InvalidOperationException(refusal);
        }

        return await TriggerAsync(manual: true, SnapshotType.Checkpoint, requestId: null, Settings.Timeout);
    }

    public async Task<CheckpointStats?> WaitForCheckpoint(long checkpointId, TimeSpan maxWait)
    {
        if (_pending.ContainsKey(checkpointId) && maxWait > TimeSpan.Zero)
        {
            if (!_waiters.TryGetValue(checkpointId, out var waiter))
            {
                _waiters[checkpointId] = waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            await Task.WhenAny(waiter.Task, Task.Delay(maxWait));
        }

        return _pending.TryGetValue(checkpointId, out var pending) ? pending.Stats(CheckpointStatus.InProgress) : _stats.Find(checkpointId);
    }

    public Task<CheckpointStatistics> GetStatistics() => Task.FromResult(_stats.Statistics(_pending.Values, _store.Retained));

    public Task<CheckpointStats?> FindSavepoint(string requestId) =>
        _stats.FindRequest(requestId) is { } id ? WaitForCheckpoint(id, TimeSpan.Zero) : Task.FromResult<CheckpointStats?>(null);

    public async Task AcknowledgeCheckpoint(int attempt, TaskId task, long checkpointId, SubtaskSnapshot snapshot, SubtaskCheckpointMetrics metrics)
    {
        if (S.Start is null || attempt != S.Start.Attempt || !_pending.TryGetValue(checkpointId, out var pending))
        {
            // Aborted, subsumed, or of an earlier attempt: what the subtask wrote for it is garbage.
            LogAcknowledgementIgnored(JobId, checkpointId, task, attempt, S.Start?.Attempt);
            if (!_pending.ContainsKey(checkpointId) && !_store.IsRetained(checkpointId) && Storage is { } storage)
            {
                await _cleaner.DiscardLateAsync(checkpointId, snapshot, storage, InUseSharedPaths(), _store.SharedState);
            }

            return;
        }

        if (await FindDiscardedSharedFileAsync(checkpointId, snapshot) is { } discarded)
        {
            // Only possible when checkpoints overlap and the base of this one was dropped meanwhile; the next one takes
            // the newer base. Completing it would commit a checkpoint that cannot be restored.
            // Its checkpoint's own files go with the abort; the shared files this acknowledgement uploaded are not in it.
            await _cleaner.DeleteWrittenByAsync(Storage!, checkpointId, [snapshot], InUseSharedPaths(), _store.SharedState);
            await AbortAsync(pending, CheckpointFailureReason.BaseNotRetained, $"subtask {task} references the shared file '{discarded.Handle.Path}' of checkpoint {discarded.WrittenBy}, which is no longer retained");
            return;
        }

        if (pending.Acknowledge(task, snapshot, metrics) && pending.IsFullyAcknowledged)
        {
            await CompleteAsync(pending);
        }
    }

    public async Task DeclineCheckpoint(int attempt, TaskId task, long checkpointId, string reason)
    {
        if (S.Start is not null && attempt == S.Start.Attempt && _pending.TryGetValue(checkpointId, out var pending))
        {
            await AbortAsync(pending, CheckpointFailureReason.Declined, $"declined by subtask {task}: {reason}");
        }
    }

    private void ArmTimer(CheckpointingSettings settings)
    {
        _timer?.Dispose();
        var tick = settings.Interval is { } interval
            ? TimeSpan.FromMilliseconds(Math.Clamp(interval.TotalMilliseconds / 4, 20, 1000))
            : TimeSpan.FromSeconds(1);
        _timer = this.RegisterGrainTimer(OnTimerAsync, new GrainTimerCreationOptions { DueTime = tick, Period = tick, KeepAlive = true });
    }

    private async Task OnTimerAsync(CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var expired in _pending.Values.Where(p => p.IsExpired(now)).ToList())
        {
            await AbortAsync(
                expired,
                CheckpointFailureReason.Expired,
                $"it expired after {expired.Timeout} with {expired.Acknowledged} of {expired.Total} subtasks acknowledged (missing: {string.Join(", ", expired.Missing.Take(5))})");
        }

        RedeliverUnansweredTriggers(now);
        if (S.Start is not null && _decider.PeriodicDue(Settings, S.Triggering, _pending.Values, now))
        {
            await TriggerAsync(manual: false, SnapshotType.Checkpoint, requestId: null, Settings.Timeout);
        }
    }

    // A trigger published on the control stream can be lost (after a silo failure, the stream's pub-sub was seen to drop
    // the delivery to every source): nothing would ever acknowledge the checkpoint, and with one checkpoint at a time no
    // other would be triggered until it expires. So the subtasks that have not answered get the trigger directly, as a
    // one-way call (never awaited: a task may be awaiting this grain). Sources take each checkpoint once; other subtasks
    // ignore triggers and wait for the barriers.
    private void RedeliverUnansweredTriggers(DateTimeOffset now)
    {
        foreach (var pending in _pending.Values)
        {
            if (pending.Trigger is not { } trigger || pending.TriggerSentAt is not { } sent || now - sent < TriggerRedeliveryInterval
                || pending.Phase != PendingCheckpointPhase.AwaitingAcknowledgements || pending.Attempt != S.Start?.Attempt)
            {
                continue;
            }

            pending.TriggerSentAt = now;
            var missing = pending.Missing.ToList();
            LogTriggerRedelivered(JobId, pending.Id, missing.Count);
            foreach (var task in missing)
            {
                _ = NotifyAsync(GrainFactory.GetGrain<IStreamTaskGrain>(task.GrainKey).DeliverTrigger(trigger));
            }
        }
    }

    private async Task<long> TriggerAsync(bool manual, SnapshotType type, string? requestId, TimeSpan timeout)
    {
        var start = S.Start!;
        var id = _ids.Next();
        if (requestId is not null)
        {
            _stats.RememberRequest(requestId, id);
        }

        var triggeredAt = DateTimeOffset.UtcNow;
        if (type is { IsStop: true, Savepoint: { } stop })
        {
            S.PendingStop = new PendingStop(id, start.Attempt, triggeredAt, triggeredAt + timeout, stop);
        }

        // Persist the id (and a stop) first: a coordinator activated elsewhere must never reuse it.
        await state.WriteStateAsync();
        var pending = new PendingCheckpoint(id, triggeredAt, manual, start.Subtasks) { Type = type, Timeout = timeout, Attempt = start.Attempt };
        foreach (var (task, snapshot) in S.Finished)
        {
            pending.Acknowledge(task, snapshot, SubtaskCheckpointMetrics.Finished, finished: true);
        }

        _pending[id] = pending;
        _stats.ReportTriggered(pending);
        _decider.OnTriggered(triggeredAt);
        try
        {
            var stream = this.GetStreamProvider(PlatformStreams.ProviderName)
                .GetStream<CheckpointTrigger>(StreamId.Create(PlatformStreams.CheckpointTriggerNamespace, JobId));
            pending.Trigger = new CheckpointTrigger(id, start.Attempt, triggeredAt, Settings.Mode, _store.LatestCompleted, type.Savepoint);
            await stream.OnNextAsync(pending.Trigger);
            pending.TriggerSentAt = DateTimeOffset.UtcNow;
            LogTriggered(JobId, id, manual);
        }
        catch (Exception ex)
        {
            // A full memory-stream queue or an unreachable queue: the trigger is not delivered, so say so now.
            await AbortAsync(pending, CheckpointFailureReason.TriggerFailed, $"its trigger could not be published on the job's control stream: {ex.Message}");
            return id;
        }

        if (pending.IsFullyAcknowledged)
        {
            // Every subtask had finished: their final snapshots make the whole checkpoint.
            await CompleteAsync(pending);
        }

        return id;
    }

    private async Task<NativeStateFile?> FindDiscardedSharedFileAsync(long checkpointId, SubtaskSnapshot snapshot)
    {
        var reused = snapshot.Operators.SelectMany(o => o.KeyedState?.SharedFiles ?? []).Where(f => f.WrittenBy != checkpointId).ToList();
        if (reused.Count == 0)
        {
            return null;
        }

        var inUse = InUseSharedPaths();
        bool Known(NativeStateFile f) => _store.SharedState.IsReferenced(f.Handle.Path) || inUse.Contains(f.Handle.Path);
        if (reused.All(Known))
        {
            return null;
        }

        // After a re-activation the registry may not know every retained checkpoint yet.
        await _store.LoadAsync(await Storage!.ListCheckpointsAsync(JobId));
        return reused.FirstOrDefault(f => !Known(f));
    }

    // Shared files no completed checkpoint references yet that must not be deleted: those of checkpoints in progress and
    // the final snapshots of finished subtasks.
    private HashSet<string> InUseSharedPaths() =>
        _pending.Values.SelectMany(p => p.SharedPaths()).Concat(S.Finished.Values.SelectMany(s => s.SharedPaths())).ToHashSet(StringComparer.Ordinal);

    private ICheckpointStorage EnsureStorage(CheckpointingSettings settings)
    {
        var location = storageFactory.Resolve(settings);
        if (Storage is null || location != _storageLocation)
        {
            _store.Storage = storageFactory.Create(location.Kind, location.Directory);
            _storageLocation = location;
        }

        return Storage!;
    }

    private void ForgetStop(long checkpointId)
    {
        if (S.PendingStop?.CheckpointId == checkpointId)
        {
            S.PendingStop = null;
        }
    }

    private void Wake(long checkpointId)
    {
        if (_waiters.Remove(checkpointId, out var waiter))
        {
            waiter.TrySetResult();
        }
    }

    private async Task NotifyAsync(Task call)
    {
        try
        {
            await call;
        }
        catch (Exception ex)
        {
            LogNotifyFailed(ex, JobId);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Checkpoint coordinator of job {JobId} started for attempt {Attempt}: interval {Interval}, storage: {Storage}")]
    private partial void LogStarted(string jobId, int attempt, TimeSpan? interval, string storage);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Job {JobId}: subtask {Task} asked for a checkpoint to commit its last output")]
    private partial void LogFinalCheckpointRequested(string jobId, TaskId task);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId}: checkpoint {CheckpointId}'s trigger delivered directly to the {Count} subtask(s) that have not answered it")]
    private partial void LogTriggerRedelivered(string jobId, long checkpointId, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: subtask {Task} finished without a final snapshot; no checkpoint after {LastCheckpoint} of this attempt can complete")]
    private partial void LogNoFurtherCheckpoints(string jobId, TaskId task, long lastCheckpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: subtask {Task} waits for a final checkpoint that cannot complete ({Reason}); it fails the attempt")]
    private partial void LogFinalCheckpointImpossible(string jobId, TaskId task, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Job {JobId}: triggered checkpoint {CheckpointId} (manual: {Manual})")]
    private partial void LogTriggered(string jobId, long checkpointId, bool manual);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Job {JobId}: a notification from the checkpoint coordinator was not delivered")]
    private partial void LogNotifyFailed(Exception exception, string jobId);
}
