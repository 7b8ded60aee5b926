using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Orleans.Streams;
using Platform.Diagnostics;
using Platform.Hosting;
using Platform.Runtime;
using Platform.Storage;
using Platform.Tasks;

namespace Platform.Checkpointing;

/// <summary>What the coordinator keeps durably, so that a job survives the loss of the silo hosting it.</summary>
[GenerateSerializer, Alias("platform.CoordinatorState")]
public sealed class CoordinatorState
{
    [Id(0)] public long NextCheckpointId { get; set; } = 1;
    [Id(1)] public long Completed { get; set; }
    [Id(2)] public long Failed { get; set; }
    [Id(3)] public long Restored { get; set; }
    [Id(4)] public long? LatestRestoredId { get; set; }
    [Id(5)] public List<CheckpointStats> History { get; set; } = [];
    [Id(6)] public HashSet<long> Unrestorable { get; set; } = [];
    [Id(7)] public List<string> UnrestorableReasons { get; set; } = [];
    [Id(8)] public CoordinatorStart? Start { get; set; }
    [Id(9)] public bool Triggering { get; set; }
    [Id(10)] public Dictionary<TaskId, SubtaskSnapshot> Finished { get; set; } = [];
    [Id(11)] public long? PinnedForRestore { get; set; }
    [Id(12)] public int PinnedUntilAttempt { get; set; }

    /// <summary>The latest checkpoint completed or restored: the base that incremental snapshots may share files with.</summary>
    [Id(13)] public long? LatestCompleted { get; set; }

    /// <summary>Savepoint request ids already triggered, with their checkpoint ids (idempotent retries).</summary>
    [Id(14)] public Dictionary<string, long> SavepointRequests { get; set; } = [];

    /// <summary>The outcomes of recent savepoints by id, kept longer than the checkpoint history for retried requests.</summary>
    [Id(15)] public Dictionary<long, CheckpointStats> Savepoints { get; set; } = [];

    /// <summary>
    /// The stop with savepoint in progress, persisted before its trigger goes out: an activation that finds it without
    /// holding it in memory knows the acknowledgements it needs went to a lost activation, and fails it.
    /// </summary>
    [Id(16)] public PendingStop? PendingStop { get; set; }

    /// <summary>The attempt whose stop with savepoint failed, and why: such an attempt must not end FINISHED.</summary>
    [Id(17)] public FailedStop? FailedStop { get; set; }
}

/// <summary>A stop with savepoint that failed: its attempt, and the job's failure message.</summary>
[GenerateSerializer, Immutable, Alias("platform.FailedStop")]
public sealed record FailedStop([property: Id(0)] int Attempt, [property: Id(1)] string Reason);

/// <summary>A stop with savepoint in progress, as the coordinator persists it.</summary>
[GenerateSerializer, Immutable, Alias("platform.PendingStop")]
public sealed record PendingStop(
    [property: Id(0)] long CheckpointId,
    [property: Id(1)] int Attempt,
    [property: Id(2)] DateTimeOffset TriggeredAt,
    [property: Id(3)] DateTimeOffset Deadline,
    [property: Id(4)] SavepointTarget Target);

/// <summary>
/// One per job (Flink's CheckpointCoordinator). Triggers checkpoints by publishing on the job's control stream,
/// collects the subtasks' acknowledgements, commits a checkpoint by writing its metadata last, keeps the retained
/// ones, and aborts (deleting their files) those declined or timed out. It never awaits a call to the job manager,
/// which awaits calls to it.
/// </summary>
[KeepAlive]
[Orleans.Placement.PreferLocalPlacement] // beside the job manager that activates it
internal sealed partial class CheckpointCoordinatorGrain(
    ILogger<CheckpointCoordinatorGrain> logger,
    CheckpointStorageFactory storageFactory,
    SavepointLocations savepointLocations,
    [PersistentState("coordinator", PlatformStreams.StateStorageName)] IPersistentState<CoordinatorState> state)
    : Grain, ICheckpointCoordinatorGrain, ICheckpointAcknowledger, ICheckpointCoordinatorControl
{
    private const int HistorySize = 20;
    private const int MaxRememberedSavepoints = 100;

    /// <summary>How long a draining stop may take when its request does not say (reading the rest of a bounded input).</summary>
    private static readonly TimeSpan DefaultDrainTimeout = TimeSpan.FromMinutes(30);
    private readonly Dictionary<long, PendingCheckpoint> _pending = [];
    private readonly Dictionary<long, TaskCompletionSource> _waiters = [];
    private readonly HashSet<long> _retained = [];
    private readonly Dictionary<TaskId, SubtaskSnapshot> _finished = [];
    private readonly SharedStateRegistry _sharedState = new();
    private CoordinatorStart? _start;
    private ICheckpointStorage? _storage;
    private (CheckpointStorageKind Kind, string? Directory) _storageLocation;
    private IGrainTimer? _timer;
    private bool _triggering;
    private int _consecutiveFailures;
    private DateTimeOffset _lastTrigger = DateTimeOffset.MinValue;
    private DateTimeOffset _lastEnd = DateTimeOffset.MinValue;

    private string JobId => this.GetPrimaryKeyString();

    private CheckpointingSettings Settings => _start?.Settings ?? new CheckpointingSettings();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // A coordinator re-activated after its silo died picks up where it was: same attempt, same settings.
        if (state.State.Start is { } start && state.State.Triggering)
        {
            _start = start;
            _triggering = true;
            foreach (var (task, snapshot) in state.State.Finished)
            {
                _finished[task] = snapshot;
            }

            EnsureStorage(start.Settings);
            ArmTimer(start.Settings);
        }

        if (state.State.PendingStop is { } lost)
        {
            await FailLostStopAsync(lost);
        }
    }

    // The stop's sources stopped (or are draining towards its barrier), but acknowledgements that reached the lost
    // activation are gone and subtasks never send them again, so it cannot complete: adopting it would only delay the
    // failover to its deadline (up to DrainTimeout). It fails now, which fails the job over to its latest retained
    // checkpoint (and deletes its partial savepoint).
    private async Task FailLostStopAsync(PendingStop lost)
    {
        var pending = new PendingCheckpoint(lost.CheckpointId, lost.TriggeredAt, manual: true, state.State.Start?.Subtasks ?? [])
        {
            Savepoint = lost.Target,
            Timeout = lost.Deadline - lost.TriggeredAt,
            Attempt = lost.Attempt,
        };
        _pending[pending.Id] = pending;
        LogLostStop(JobId, lost.CheckpointId);
        await FailAsync(
            pending,
            $"the checkpoint coordinator was lost while stop with savepoint {lost.CheckpointId} was in progress, and the acknowledgements it had received with it");
    }

    public async Task Start(CoordinatorStart start)
    {
        // The storage first: a coordinator whose own state was lost has none yet, and the sweep below must still see
        // the committed checkpoints (orphans to delete, ids never to hand out again).
        EnsureStorage(start.Settings);
        await AbortAllAsync($"the job restarted with attempt {start.Attempt}");
        _start = start;
        _finished.Clear();
        _triggering = true;
        _consecutiveFailures = 0;
        _lastTrigger = DateTimeOffset.UtcNow;
        state.State.Start = start;
        state.State.Triggering = true;
        if (state.State.PinnedForRestore is not null)
        {
            state.State.PinnedUntilAttempt = start.Attempt;
        }

        state.State.Finished.Clear();
        state.State.FailedStop = null;
        await state.WriteStateAsync();
        ArmTimer(start.Settings);
        LogStarted(JobId, start.Attempt, start.Settings.Interval, _storage!.Description);
    }

    private void ArmTimer(CheckpointingSettings settings)
    {
        _timer?.Dispose();
        var tick = settings.Interval is { } interval
            ? TimeSpan.FromMilliseconds(Math.Clamp(interval.TotalMilliseconds / 4, 20, 1000))
            : TimeSpan.FromSeconds(1);
        _timer = this.RegisterGrainTimer(OnTimerAsync, new GrainTimerCreationOptions { DueTime = tick, Period = tick, KeepAlive = true });
    }

    public async Task Suspend(string reason)
    {
        // Acknowledgements of the suspended attempt are refused from now on.
        _triggering = false;
        _start = null;
        state.State.Triggering = false;
        await AbortAllAsync(reason);
    }

    public async Task OnTaskFinished(TaskId task, SubtaskSnapshot? finalSnapshot, long lastCheckpoint)
    {
        if (finalSnapshot is not null)
        {
            // Its end-of-input followed all its records, so its final state is consistent with any checkpoint it did
            // not take part in itself. For those it did, its own acknowledgement (which may still be on its way) counts.
            _finished[task] = finalSnapshot;
            state.State.Finished[task] = finalSnapshot;
            foreach (var pending in _pending.Values.Where(p => p.Id > lastCheckpoint).ToList())
            {
                if (pending.Acknowledge(task, finalSnapshot, SubtaskCheckpointMetrics.Finished) && pending.IsComplete)
                {
                    await CompleteAsync(pending);
                }
            }

            await state.WriteStateAsync();
        }
        else if (_triggering)
        {
            // Checkpoints it took part in (up to lastCheckpoint) still complete with its acknowledgement, which may be on
            // its way: a subtask finishing after a stop-with-savepoint is the usual case. Later ones cannot.
            _triggering = false;
            state.State.Triggering = false;
            foreach (var pending in _pending.Values.Where(p => p.Id > lastCheckpoint).ToList())
            {
                await FailAsync(pending, $"subtask {task} finished holding state, so no further checkpoint can complete");
            }
        }
    }

    public async Task<CheckpointMetadata?> LatestRestorable(CheckpointingSettings settings)
    {
        var storage = EnsureStorage(settings);
        var ids = await storage.ListCheckpointsAsync(JobId);
        foreach (var id in ids.Reverse())
        {
            if (state.State.Unrestorable.Contains(id))
            {
                continue;
            }

            try
            {
                var metadata = await storage.ReadMetadataAsync(JobId, id);
                // Retention must not delete the checkpoint being restored until a newer one completes.
                state.State.PinnedForRestore = id;
                state.State.PinnedUntilAttempt = int.MaxValue; // set to the restoring attempt by Start
                await state.WriteStateAsync();
                return metadata;
            }
            catch (CorruptCheckpointException ex)
            {
                await MarkUnrestorable(id, ex.Message);
            }
        }

        return null;
    }

    public async Task MarkUnrestorable(long checkpointId, string reason)
    {
        LogCorrupt(JobId, checkpointId, reason);
        if (state.State.Unrestorable.Add(checkpointId))
        {
            state.State.UnrestorableReasons.Add($"checkpoint {checkpointId}: {reason}");
        }

        await state.WriteStateAsync();
    }

    public async Task RecordRestore(long checkpointId)
    {
        state.State.Restored++;
        state.State.LatestRestoredId = checkpointId;
        state.State.LatestCompleted = checkpointId;
        await state.WriteStateAsync();
    }

    public async Task Shutdown(JobState finalState)
    {
        _triggering = false;
        _timer?.Dispose();
        _timer = null;
        await AbortAllAsync($"the job is {finalState}");
        var keep = finalState == JobState.Failed
            || (finalState == JobState.Canceled && Settings.Retention == CheckpointRetention.RetainOnCancellation);
        if (!keep && _storage is not null)
        {
            foreach (var id in await _storage.ListCheckpointsAsync(JobId))
            {
                await _storage.DeleteCheckpointAsync(JobId, id);
            }

            await _storage.DeleteAllExceptAsync(JobId, new HashSet<long>());
            await _storage.DeleteSharedStateAsync(JobId, await _storage.ListSharedStateAsync(JobId));
            _sharedState.RetainOnly(new HashSet<long>());
        }
    }

    public Task<string?> FailedStop(int attempt) =>
        Task.FromResult(state.State.FailedStop is { } failed && failed.Attempt == attempt ? failed.Reason : null);

    public async Task<long> TriggerCheckpoint()
    {
        if (_start is null || !_triggering)
        {
            throw new InvalidOperationException($"Job '{JobId}' is not running with checkpoints enabled, or one of its tasks already finished; no checkpoint can be taken now.");
        }

        if (StoppingWith() is { } stop)
        {
            throw new InvalidOperationException($"Job '{JobId}' is stopping with savepoint {stop}; no further checkpoint can be taken.");
        }

        if (_pending.Count >= Math.Max(1, Settings.MaxConcurrentCheckpoints))
        {
            throw new InvalidOperationException(
                $"Checkpoint {string.Join(", ", _pending.Keys)} of job '{JobId}' is still in progress and the job allows {Settings.MaxConcurrentCheckpoints} at a time; try again when it ends.");
        }

        return await TriggerAsync(manual: true);
    }

    public async Task<long> TriggerSavepoint(SavepointRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.RequestId is { } requestId && state.State.SavepointRequests.TryGetValue(requestId, out var existing))
        {
            return existing;
        }

        if (_start is null || !_triggering)
        {
            throw new InvalidOperationException(
                $"Job '{JobId}' is not running with checkpointing settings, or one of its tasks already finished; a savepoint can be taken of a running job " +
                "whose StreamJobBuilder.Checkpointing is set (Interval may stay null).");
        }

        if (StoppingWith() is { } stop)
        {
            throw new InvalidOperationException($"Job '{JobId}' is stopping with savepoint {stop}; no further savepoint can be taken.");
        }

        if (request.Drain && !request.Stop)
        {
            throw new ArgumentException("Drain applies to a stop with savepoint only (SavepointRequest.Stop, or platform stop --drain); a savepoint of a running job cannot drain its sources.", nameof(request));
        }

        if (request.DrainTimeout is not null && !request.Drain)
        {
            throw new ArgumentException("DrainTimeout applies to a draining stop only (SavepointRequest.Drain); leave it unset otherwise.", nameof(request));
        }

        if (request.DrainTimeout is { } drainTimeout && drainTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"DrainTimeout is {drainTimeout}; it must be positive.", nameof(request));
        }

        var location = savepointLocations.NewSavepoint(JobId, request.TargetDirectory);
        var timeout = request.Drain ? request.DrainTimeout ?? DefaultDrainTimeout : Settings.Timeout;
        return await TriggerAsync(manual: true, new SavepointTarget(location, request.Format, request.Stop, request.Drain), request.RequestId, timeout);
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

        return _pending.TryGetValue(checkpointId, out var pending)
            ? pending.Stats(CheckpointStatus.InProgress)
            : state.State.History.FirstOrDefault(h => h.Id == checkpointId) ?? state.State.Savepoints.GetValueOrDefault(checkpointId);
    }

    public Task<CheckpointStatistics> GetStatistics() => Task.FromResult(new CheckpointStatistics
    {
        Completed = state.State.Completed,
        Failed = state.State.Failed,
        InProgress = _pending.Count,
        Restored = state.State.Restored,
        LatestRestoredId = state.State.LatestRestoredId,
        History = [.. _pending.Values.OrderByDescending(p => p.Id).Select(p => p.Stats(CheckpointStatus.InProgress)).Concat(state.State.History)],
        SkippedAsCorrupt = [.. state.State.UnrestorableReasons],
        Retained = [.. state.State.History.Where(h => h.Status == CheckpointStatus.Completed).Select(h => h.Id).Where(_retained.Contains).Order()],
    });

    public async Task AcknowledgeCheckpoint(int attempt, TaskId task, long checkpointId, SubtaskSnapshot snapshot, SubtaskCheckpointMetrics metrics)
    {
        if (_start is null || attempt != _start.Attempt || !_pending.TryGetValue(checkpointId, out var pending))
        {
            // The checkpoint was aborted (or belongs to an earlier attempt): what the subtask wrote for it is garbage.
            if (!_pending.ContainsKey(checkpointId) && !_retained.Contains(checkpointId) && _storage is not null)
            {
                await _storage.DeleteCheckpointAsync(JobId, checkpointId);
                await DeleteSharedFilesWrittenByAsync(checkpointId, [snapshot]);
            }

            return;
        }

        if (await FindDiscardedSharedFileAsync(checkpointId, snapshot) is { } discarded)
        {
            // Only possible when checkpoints overlap and the base of this one was subsumed meanwhile; the next one
            // takes the newer base. Completing it would commit a checkpoint that cannot be restored.
            await DeleteSharedFilesWrittenByAsync(checkpointId, [snapshot]);
            await FailAsync(pending, $"subtask {task} references the shared file '{discarded.Handle.Path}' of checkpoint {discarded.WrittenBy}, which is no longer retained");
            return;
        }

        if (!pending.Acknowledge(task, snapshot, metrics))
        {
            return;
        }

        if (pending.IsComplete)
        {
            await CompleteAsync(pending);
        }
    }

    public async Task DeclineCheckpoint(int attempt, TaskId task, long checkpointId, string reason)
    {
        if (_start is not null && attempt == _start.Attempt && _pending.TryGetValue(checkpointId, out var pending))
        {
            await FailAsync(pending, $"declined by subtask {task}: {reason}");
        }
    }

    private async Task OnTimerAsync(CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var expired in _pending.Values.Where(p => now - p.TriggeredAt > p.Timeout).ToList())
        {
            await FailAsync(expired, $"it expired after {expired.Timeout} with {expired.Acknowledged} of {expired.Total} subtasks acknowledged (missing: {string.Join(", ", expired.Missing.Take(5))})");
        }

        // No periodic checkpoint once a stop was asked for: its sources are stopping (or draining) at the savepoint.
        if (_triggering
            && StoppingWith() is null
            && Settings.Interval is { } interval
            && now - _lastTrigger >= interval
            && now - _lastEnd >= Settings.MinPauseBetweenCheckpoints
            && _pending.Count < Math.Max(1, Settings.MaxConcurrentCheckpoints))
        {
            await TriggerAsync(manual: false);
        }
    }

    /// <summary>The id of the stop-with-savepoint in progress, if any.</summary>
    private long? StoppingWith() => _pending.Values.FirstOrDefault(p => p.Savepoint is { Stop: true })?.Id;

    private async Task<long> TriggerAsync(bool manual, SavepointTarget? savepoint = null, string? requestId = null, TimeSpan? timeout = null)
    {
        var start = _start!;
        var id = state.State.NextCheckpointId++;
        if (requestId is not null)
        {
            // Persisted with the id, before the trigger goes out: a retry after a crash finds it.
            state.State.SavepointRequests[requestId] = id;
            while (state.State.SavepointRequests.Count > MaxRememberedSavepoints)
            {
                state.State.SavepointRequests.Remove(state.State.SavepointRequests.MinBy(r => r.Value).Key);
            }
        }

        var triggeredAt = DateTimeOffset.UtcNow;
        var expiresAfter = timeout ?? Settings.Timeout;
        if (savepoint is { Stop: true })
        {
            state.State.PendingStop = new PendingStop(id, start.Attempt, triggeredAt, triggeredAt + expiresAfter, savepoint);
        }

        // Persist the id first: a coordinator activated elsewhere must never reuse it.
        await state.WriteStateAsync();
        var pending = new PendingCheckpoint(id, triggeredAt, manual, start.Subtasks) { Savepoint = savepoint, Timeout = expiresAfter, Attempt = start.Attempt };
        foreach (var (task, snapshot) in _finished)
        {
            pending.Acknowledge(task, snapshot, SubtaskCheckpointMetrics.Finished);
        }

        _pending[id] = pending;
        _lastTrigger = pending.TriggeredAt;
        try
        {
            var stream = this.GetStreamProvider(PlatformStreams.ProviderName)
                .GetStream<CheckpointTrigger>(StreamId.Create(PlatformStreams.CheckpointTriggerNamespace, JobId));
            await stream.OnNextAsync(new CheckpointTrigger(id, start.Attempt, pending.TriggeredAt, Settings.Mode, state.State.LatestCompleted, savepoint));
            LogTriggered(JobId, id, manual);
        }
        catch (Exception ex)
        {
            // A full memory-stream queue or an unreachable queue: the trigger is not delivered, so say so now.
            await FailAsync(pending, $"its trigger could not be published on the job's control stream: {ex.Message}");
        }

        return id;
    }

    private async Task CompleteAsync(PendingCheckpoint pending)
    {
        var storage = _storage!;
        var metadata = new CheckpointMetadata
        {
            JobId = JobId,
            CheckpointId = pending.Id,
            TriggeredAt = pending.TriggeredAt,
            CompletedAt = DateTimeOffset.UtcNow,
            MaxParallelism = _start!.MaxParallelism,
            Subtasks = [.. pending.Snapshots],
        };
        if (pending.Savepoint is { } savepoint)
        {
            await CompleteSavepointAsync(pending, savepoint, metadata);
            return;
        }

        try
        {
            await storage.WriteMetadataAsync(metadata);
        }
        catch (Exception ex)
        {
            await FailAsync(pending, $"its metadata could not be written to {storage.Description}: {ex.Message}");
            return;
        }

        _pending.Remove(pending.Id);
        _retained.Add(pending.Id);
        _sharedState.Register(pending.Id, metadata.SharedPaths());
        state.State.LatestCompleted = pending.Id;
        _consecutiveFailures = 0;
        _lastEnd = DateTimeOffset.UtcNow;
        state.State.Completed++;
        PlatformMetrics.CheckpointsCompleted.Add(1);
        PlatformMetrics.CheckpointDuration.Record((DateTimeOffset.UtcNow - pending.TriggeredAt).TotalMilliseconds);
        PlatformMetrics.CheckpointSize.Record(metadata.StateSize());
        Record(pending.Stats(CheckpointStatus.Completed) with { StateSize = metadata.StateSize() });
        LogCompleted(JobId, pending.Id, metadata.StateSize(), DateTimeOffset.UtcNow - pending.TriggeredAt);

        // Notify before anything else can fail: the checkpoint is committed.
        Wake(pending.Id);
        foreach (var (task, _) in _start.Subtasks)
        {
            _ = NotifyAsync(GrainFactory.GetGrain<IStreamTaskGrain>(task.GrainKey).NotifyCheckpointComplete(_start.Attempt, pending.Id));
        }

        // Retention: keep the newest N restorable ones, the one just completed included; drop unrestorable ones.
        try
        {
            if (_start.Attempt >= state.State.PinnedUntilAttempt)
            {
                // The attempt that restored from the pinned checkpoint has a newer one now.
                state.State.PinnedForRestore = null;
            }

            var retained = Math.Max(1, Settings.RetainedCheckpoints);
            var committed = await storage.ListCheckpointsAsync(JobId);
            await LoadSharedStateAsync(committed);
            var restorable = committed.Where(id => !state.State.Unrestorable.Contains(id)).OrderByDescending(id => id).ToList();
            var delete = committed.Where(id => state.State.Unrestorable.Contains(id)).Concat(restorable.Skip(retained));
            foreach (var old in delete.Where(id => id != state.State.PinnedForRestore))
            {
                await storage.DeleteCheckpointAsync(JobId, old);
                _retained.Remove(old);
                await DeleteUnreferencedAsync(_sharedState.Unregister(old));
            }

            await state.WriteStateAsync();
        }
        catch (Exception ex)
        {
            LogCleanupFailed(ex, JobId, pending.Id);
        }
    }

    // A savepoint is not a retained checkpoint: no retention, no shared-file registry, no base for incremental
    // checkpoints, no commit notification. Its metadata goes into its own directory, written last.
    private async Task CompleteSavepointAsync(PendingCheckpoint pending, SavepointTarget savepoint, CheckpointMetadata metadata)
    {
        try
        {
            await savepoint.Location.WriteMetadataAsync(storageFactory, metadata);
        }
        catch (Exception ex)
        {
            await FailAsync(pending, $"its metadata could not be written to '{savepoint.Location.Directory}': {ex.Message}");
            return;
        }

        _pending.Remove(pending.Id);
        ForgetStop(pending.Id);
        _lastEnd = DateTimeOffset.UtcNow;
        Record(pending.Stats(CheckpointStatus.Completed) with { StateSize = metadata.StateSize() });
        LogSavepointCompleted(JobId, pending.Id, savepoint.Location.Directory, metadata.StateSize());
        await state.WriteStateAsync();
        Wake(pending.Id);
    }

    private async Task FailAsync(PendingCheckpoint pending, string reason)
    {
        if (!_pending.Remove(pending.Id))
        {
            return;
        }

        // A failed savepoint does not count towards the tolerable checkpoint failures (as in Flink): it must not fail over a
        // healthy job. A failed stop-with-savepoint is different: its sources already stopped, so the job fails over and
        // resumes from its latest checkpoint instead of finishing without the savepoint.
        if (pending.Savepoint is null)
        {
            _consecutiveFailures++;
        }

        _lastEnd = DateTimeOffset.UtcNow;
        state.State.Failed++;
        PlatformMetrics.CheckpointsFailed.Add(1);
        if (pending.Savepoint is { Stop: true })
        {
            // What StopWithSavepointAsync reports: the job does not simply stay stopped.
            reason += "; its sources had stopped, so the job restarts from its latest checkpoint";
        }

        Record(pending.Stats(CheckpointStatus.Failed) with { FailureReason = reason });
        ForgetStop(pending.Id);
        var stopMessage = $"stop with savepoint {pending.Id} failed because {reason}";
        if (pending.Savepoint is { Stop: true })
        {
            // Persisted with the outcome: the job manager asks before it lets the attempt finish (see FailedStop).
            state.State.FailedStop = new FailedStop(pending.Attempt, stopMessage);
        }

        LogFailed(JobId, pending.Id, reason);
        try
        {
            if (pending.Savepoint is { } savepoint)
            {
                await DeleteSavepointDirectoryAsync(savepoint);
            }
            else
            {
                await _storage!.DeleteCheckpointAsync(JobId, pending.Id);
                await DeleteSharedFilesWrittenByAsync(pending.Id, pending.Snapshots);
            }
        }
        catch (Exception ex)
        {
            LogCleanupFailed(ex, JobId, pending.Id);
        }

        await state.WriteStateAsync();
        Wake(pending.Id);
        if (pending.Savepoint is { Stop: true })
        {
            // The stop's own attempt: a coordinator re-activated after its attempt stopped triggering may hold no start.
            _ = NotifyAsync(GrainFactory.GetGrain<ICheckpointFailureListener>(JobId).CheckpointFailureThresholdExceeded(pending.Attempt, stopMessage));
        }
        else if (_start is { } start && _triggering && pending.Savepoint is null && _consecutiveFailures > Settings.TolerableFailedCheckpoints)
        {
            var message = $"Exceeded the tolerable number of failed checkpoints ({Settings.TolerableFailedCheckpoints}): {_consecutiveFailures} failed in a row; the last, checkpoint {pending.Id}, failed because {reason}";
            _triggering = false;
            // Not awaited: the job manager awaits calls to this grain, so waiting for it here could deadlock.
            _ = NotifyAsync(GrainFactory.GetGrain<ICheckpointFailureListener>(JobId).CheckpointFailureThresholdExceeded(start.Attempt, message));
        }
    }

    private async Task AbortAllAsync(string reason)
    {
        foreach (var pending in _pending.Values.ToList())
        {
            // An abort for a restart or a stop is not a checkpoint failure of the job's own making.
            _pending.Remove(pending.Id);
            ForgetStop(pending.Id);
            state.State.Failed++;
            Record(pending.Stats(CheckpointStatus.Failed) with { FailureReason = $"aborted: {reason}" });
            Wake(pending.Id);
            if (pending.Savepoint is { } savepoint)
            {
                await DeleteSavepointDirectoryAsync(savepoint);
            }
            else if (_storage is not null)
            {
                await _storage.DeleteCheckpointAsync(JobId, pending.Id);
                await DeleteSharedFilesWrittenByAsync(pending.Id, pending.Snapshots);
            }
        }

        if (_storage is not null)
        {
            // No orphans: remove whatever belongs to no committed checkpoint (aborted, or written by a lost silo).
            var committed = await _storage.ListCheckpointsAsync(JobId);
            if (committed.Count > 0 && committed[^1] >= state.State.NextCheckpointId)
            {
                // The coordinator's own state is behind its storage (lost, or kept in a store without persistence): never
                // hand out an id that is already committed, or the new checkpoint would collide with a restorable one.
                LogNextIdRaised(JobId, state.State.NextCheckpointId, committed[^1] + 1);
                state.State.NextCheckpointId = committed[^1] + 1;
            }

            await _storage.DeleteAllExceptAsync(JobId, committed.ToHashSet());
            _retained.UnionWith(committed);
            await LoadSharedStateAsync(committed);
            _sharedState.RetainOnly(committed.ToHashSet());
            await _storage.DeleteSharedStateAsync(JobId, (await _storage.ListSharedStateAsync(JobId)).Where(p => !_sharedState.IsReferenced(p)));
        }

        await state.WriteStateAsync();
    }

    private async Task DeleteSavepointDirectoryAsync(SavepointTarget savepoint)
    {
        try
        {
            await savepoint.Location.DeleteAsync(storageFactory);
        }
        catch (Exception ex)
        {
            // A subtask may still be writing into it; it has no _metadata, so it can never be restored.
            LogCleanupFailed(ex, JobId, -1);
        }
    }

    // After a re-activation the registry is rebuilt from the metadata of the committed checkpoints.
    private async Task LoadSharedStateAsync(IEnumerable<long> committed)
    {
        foreach (var id in committed.Where(id => !_sharedState.Contains(id)))
        {
            try
            {
                _sharedState.Register(id, (await _storage!.ReadMetadataAsync(JobId, id)).SharedPaths());
            }
            catch (CorruptCheckpointException ex)
            {
                // It cannot be restored, so it keeps no file alive; files shared with intact checkpoints stay referenced by them.
                LogCorrupt(JobId, id, ex.Message);
                _sharedState.Register(id, []);
            }
        }
    }

    private async Task<NativeStateFile?> FindDiscardedSharedFileAsync(long checkpointId, SubtaskSnapshot snapshot)
    {
        var reused = snapshot.Operators.SelectMany(o => o.KeyedState?.SharedFiles ?? []).Where(f => f.WrittenBy != checkpointId).ToList();
        if (reused.Count == 0)
        {
            return null;
        }

        var pendingPaths = PendingSharedPaths();
        bool Known(NativeStateFile f) => _sharedState.IsReferenced(f.Handle.Path) || pendingPaths.Contains(f.Handle.Path);
        if (reused.All(Known))
        {
            return null;
        }

        // After a re-activation the registry may not know every retained checkpoint yet.
        await LoadSharedStateAsync(await _storage!.ListCheckpointsAsync(JobId));
        return reused.FirstOrDefault(f => !Known(f));
    }

    private HashSet<string> PendingSharedPaths() =>
        _pending.Values.SelectMany(p => p.Snapshots).SelectMany(s => s.Operators).SelectMany(o => o.KeyedState?.SharedFiles ?? [])
            .Select(f => f.Handle.Path).ToHashSet(StringComparer.Ordinal);

    // Files a failed or aborted checkpoint uploaded: nothing else can reference them, since only completed checkpoints are bases.
    private Task DeleteSharedFilesWrittenByAsync(long checkpointId, IEnumerable<SubtaskSnapshot> snapshots) =>
        DeleteUnreferencedAsync(snapshots.SelectMany(s => s.Operators).SelectMany(o => o.KeyedState?.SharedFiles ?? [])
            .Where(f => f.WrittenBy == checkpointId).Select(f => f.Handle.Path));

    private async Task DeleteUnreferencedAsync(IEnumerable<string> paths)
    {
        var pendingPaths = PendingSharedPaths();
        var delete = paths.Where(p => !_sharedState.IsReferenced(p) && !pendingPaths.Contains(p)).ToList();
        if (delete.Count > 0 && _storage is not null)
        {
            await _storage.DeleteSharedStateAsync(JobId, delete);
        }
    }

    private ICheckpointStorage EnsureStorage(CheckpointingSettings settings)
    {
        var location = storageFactory.Resolve(settings);
        if (_storage is null || location != _storageLocation)
        {
            _storage = storageFactory.Create(location.Kind, location.Directory);
            _storageLocation = location;
        }

        return _storage;
    }

    private void Record(CheckpointStats stats)
    {
        if (stats.SavepointPath is not null)
        {
            state.State.Savepoints[stats.Id] = stats;
            while (state.State.Savepoints.Count > MaxRememberedSavepoints)
            {
                state.State.Savepoints.Remove(state.State.Savepoints.Keys.Min());
            }
        }

        state.State.History.Insert(0, stats);
        if (state.State.History.Count > HistorySize)
        {
            state.State.History.RemoveRange(HistorySize, state.State.History.Count - HistorySize);
        }
    }

    private void ForgetStop(long checkpointId)
    {
        if (state.State.PendingStop?.CheckpointId == checkpointId)
        {
            state.State.PendingStop = null;
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

    private sealed class PendingCheckpoint(long id, DateTimeOffset triggeredAt, bool manual, List<(TaskId Id, string TaskName)> subtasks)
    {
        private readonly Dictionary<TaskId, string> _names = subtasks.ToDictionary(s => s.Id, s => s.TaskName);
        private readonly HashSet<TaskId> _missing = [.. subtasks.Select(s => s.Id)];
        private readonly List<SubtaskCheckpointStats> _stats = [];

        public long Id { get; } = id;

        public DateTimeOffset TriggeredAt { get; } = triggeredAt;

        /// <summary>Set when this is a savepoint.</summary>
        public SavepointTarget? Savepoint { get; init; }

        /// <summary>When it expires: the job's checkpoint timeout, or a draining stop's own.</summary>
        public required TimeSpan Timeout { get; init; }

        /// <summary>The attempt it was triggered in.</summary>
        public required int Attempt { get; init; }

        public List<SubtaskSnapshot> Snapshots { get; } = [];

        public int Total => _names.Count;

        public int Acknowledged => _stats.Count;

        public IEnumerable<TaskId> Missing => _missing;

        public bool IsComplete => _missing.Count == 0;

        public bool Acknowledge(TaskId task, SubtaskSnapshot snapshot, SubtaskCheckpointMetrics metrics)
        {
            if (!_missing.Remove(task))
            {
                return false;
            }

            Snapshots.Add(snapshot);
            _stats.Add(new SubtaskCheckpointStats
            {
                TaskName = _names[task],
                SubtaskIndex = task.SubtaskIndex,
                SyncDuration = metrics.SyncDuration,
                AsyncDuration = metrics.AsyncDuration,
                AlignmentDuration = metrics.AlignmentDuration,
                StateSize = metrics.StateSize,
                CheckpointedSize = metrics.CheckpointedSize,
                AcknowledgedAt = DateTimeOffset.UtcNow,
            });
            return true;
        }

        public CheckpointStats Stats(CheckpointStatus status) => new()
        {
            Id = Id,
            Status = status,
            TriggeredAt = TriggeredAt,
            EndToEndDuration = status == CheckpointStatus.InProgress ? null : DateTimeOffset.UtcNow - TriggeredAt,
            StateSize = _stats.Sum(s => s.StateSize),
            CheckpointedSize = _stats.Sum(s => s.CheckpointedSize),
            IsManual = manual,
            Subtasks = [.. _stats],
            SubtasksTotal = Total,
            SavepointPath = Savepoint?.Location.Directory,
        };
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Checkpoint coordinator of job {JobId} started for attempt {Attempt}: interval {Interval}, storage: {Storage}")]
    private partial void LogStarted(string jobId, int attempt, TimeSpan? interval, string storage);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Job {JobId}: triggered checkpoint {CheckpointId} (manual: {Manual})")]
    private partial void LogTriggered(string jobId, long checkpointId, bool manual);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId}: completed checkpoint {CheckpointId} ({Size} bytes in {Duration})")]
    private partial void LogCompleted(string jobId, long checkpointId, long size, TimeSpan duration);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId}: completed savepoint {CheckpointId} at {Path} ({Size} bytes)")]
    private partial void LogSavepointCompleted(string jobId, long checkpointId, string path, long size);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: checkpoint {CheckpointId} failed: {Reason}")]
    private partial void LogFailed(string jobId, long checkpointId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Job {JobId}: checkpoint {CheckpointId} cannot be restored and is skipped: {Reason}")]
    private partial void LogCorrupt(string jobId, long checkpointId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: deleting the files of failed checkpoint {CheckpointId} failed")]
    private partial void LogCleanupFailed(Exception exception, string jobId, long checkpointId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: the checkpoint coordinator's next id {NextId} is not above the committed checkpoints in storage; continuing at {RaisedTo}")]
    private partial void LogNextIdRaised(string jobId, long nextId, long raisedTo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: the checkpoint coordinator was re-activated while stop with savepoint {CheckpointId} was in progress; failing it")]
    private partial void LogLostStop(string jobId, long checkpointId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Job {JobId}: a notification from the checkpoint coordinator was not delivered")]
    private partial void LogNotifyFailed(Exception exception, string jobId);
}
