using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Platform.Checkpointing;
using Platform.Diagnostics;
using Platform.State;
using Platform.Storage;
using Platform.Tasks.Network;
using Platform.Tasks.Operators;

namespace Platform.Tasks.Checkpointing;

/// <summary>
/// Takes one subtask's part of each checkpoint (Flink's <c>SubtaskCheckpointCoordinator</c>). The synchronous part
/// freezes the keyed state (copy-on-write, no copy here), notes the source offset and queues the barrier on every
/// output after the records that precede it. The asynchronous part serializes and writes the frozen state while
/// records flow, and ends in exactly one answer to the job's coordinator: an acknowledgement or a decline. It also
/// restores the keyed state a deployment starts from. Everything runs on the task grain's scheduler, from the task's loop.
/// </summary>
internal sealed partial class SubtaskCheckpointCoordinator(
    TaskDeployment deployment,
    OperatorChain chain,
    ICheckpointAcknowledger coordinator,
    ICheckpointStorage? storage,
    ICheckpointStorage? restoreStorage,
    Func<SnapshotLocation, ICheckpointStorage> savepointStorage,
    SubtaskMetrics metrics,
    CancellationToken cancellation,
    ILogger logger)
{
    // The asynchronous parts in progress, each until it acknowledged or declined.
    private readonly List<AsyncPart> _asyncParts = [];

    private TaskId Id => deployment.Id;

    private int Attempt => deployment.Attempt;

    /// <summary>The last checkpoint this subtask took part in, or -1.</summary>
    public long LastCheckpoint { get; private set; } = -1;

    /// <summary>The checkpoints whose asynchronous part has not answered the coordinator yet.</summary>
    public IEnumerable<long> InProgress => _asyncParts.Where(p => !p.Answered.IsCompleted).Select(p => p.CheckpointId);

    /// <summary>
    /// Restores the keyed state of the deployment's <see cref="TaskDeployment.Restore"/>, if it has any. Every subtask of a
    /// restored deployment records a restore span (a source's restore is its offsets: no bytes).
    /// </summary>
    public async Task RestoreAsync()
    {
        if (deployment.Restore is null)
        {
            return;
        }

        var started = Stopwatch.GetTimestamp();
        using var span = CheckpointTracing.StartRestore(metrics, deployment.RestoredFrom ?? -1, Attempt);
        span?.SetTag("restore.savepoint", deployment.RestoreLocation?.Directory);
        long bytes = 0;
        var snapshotCount = 0;
        try
        {
            if (chain.KeyedState is { } backend && deployment.Restore.FirstOrDefault(r => r.OperatorUid == chain.KeyedOperatorUid) is { } restore)
            {
                (snapshotCount, bytes) = await RestoreKeyedStateAsync(backend, restore);
            }
        }
        catch (Exception ex)
        {
            span?.SetStatus(ActivityStatusCode.Error, ex.Message);
            throw;
        }
        finally
        {
            span?.SetTag("restore.bytes", bytes);
            span?.SetTag("restore.snapshots", snapshotCount);
            metrics.RecordRestore(Stopwatch.GetElapsedTime(started));
        }
    }

    private async Task<(int Snapshots, long Bytes)> RestoreKeyedStateAsync(IKeyedStateBackend backend, OperatorRestore restore)
    {
        // State from a savepoint or another job's checkpoint is read where it is, and its files are never shared by this
        // job's incremental checkpoints (they belong to another directory): -1 tells the backend not to remember them.
        var location = deployment.RestoreLocation;
        var source = (location is null ? null : restoreStorage) ?? storage ?? throw new InvalidOperationException($"Subtask {Id} must restore keyed state but has no checkpoint storage.");
        var snapshots = restore.KeyedState.Where(s => s.KeyGroupEnd >= backend.KeyGroupRange.Start && s.KeyGroupStart <= backend.KeyGroupRange.End).ToList();
        var started = Stopwatch.GetTimestamp();
        await backend.RestoreAsync(snapshots, location is null ? deployment.RestoredFrom ?? -1 : -1, source, location?.JobId ?? Id.JobId, cancellation);
        var bytes = snapshots.Sum(s => s.Size);
        LogRestored(Id, Attempt, deployment.RestoredFrom ?? -1, snapshots.Count, bytes, Stopwatch.GetElapsedTime(started));
        return (snapshots.Count, bytes);
    }

    /// <summary>
    /// The synchronous part of checkpoint <paramref name="barrier"/>: snapshot, then the barrier queued on every
    /// output (the caller flushes). A state that cannot be snapshot declines the checkpoint, not the subtask, and the
    /// barrier still goes downstream so that the subtasks there finish aligning instead of holding their inputs.
    /// </summary>
    public async Task CheckpointAsync(CheckpointBarrier barrier, TimeSpan alignment)
    {
        LastCheckpoint = barrier.CheckpointId;
        var started = Stopwatch.GetTimestamp();
        var offset = chain.Source?.Offset;
        var positions = chain.Source?.SplitPositions;

        // Two-phase-commit sinks pre-commit before the barrier leaves. A failure here fails the subtask (it propagates):
        // the records of the open transaction could not be made durable, and only a restart keeps them.
        var committables = new List<OperatorSnapshot>();
        foreach (var op in chain.Operators)
        {
            if (await op.SnapshotCommittablesAsync(barrier.CheckpointId, barrier.Savepoint is not null, cancellation) is { } pending)
            {
                committables.Add(new OperatorSnapshot { OperatorUid = op.Uid, Committables = pending });
            }
        }

        IKeyedStateSnapshot? keyed;
        var declined = false;
        try
        {
            keyed = barrier.Savepoint switch
            {
                // A savepoint is self-contained: portable, or native with every file of its own (no base).
                { Format: SavepointFormat.Native } => chain.KeyedState?.SnapshotForCheckpoint(new CheckpointSnapshotRequest(barrier.CheckpointId, true, null)),
                not null => chain.KeyedState?.Snapshot(),
                null => chain.KeyedState?.SnapshotForCheckpoint(new CheckpointSnapshotRequest(
                    barrier.CheckpointId,
                    deployment.Checkpointing?.Incremental == true && storage?.SupportsSharedState == true,
                    barrier.BaseCheckpointId)),
            };
        }
        catch (Exception ex)
        {
            LogCheckpointFailed(ex, Id, barrier.CheckpointId);
            await DeclineAsync(barrier.CheckpointId, $"subtask {Id} could not snapshot its state: {ex.Message}");
            keyed = null;
            declined = true;
        }

        ForwardBarrier(barrier);
        var sync = Stopwatch.GetElapsedTime(started);
        metrics.RecordSnapshot(sync, alignment);
        if (!declined)
        {
            // Started before the barrier is flushed: sending may wait for credit, the upload need not.
            _asyncParts.RemoveAll(p => p.Answered.IsCompleted);
            _asyncParts.Add(new AsyncPart(barrier.CheckpointId, UploadAndAcknowledgeAsync(barrier.CheckpointId, barrier.Savepoint, [.. SourceSnapshot(offset, positions), .. committables], keyed, sync, alignment)));
        }
    }

    /// <summary>Waits until every asynchronous part answered the coordinator (a finishing subtask acks before it says it finished).</summary>
    public Task WaitForAsyncPartsAsync() => Task.WhenAll(_asyncParts.Select(p => p.Answered).Where(t => !t.IsCompleted));

    /// <summary>
    /// Asks the coordinator for a checkpoint that covers this subtask's last output (its input ended): the triggers of
    /// the checkpoints in progress that still wait for it, or of one it triggers now. None when the call fails.
    /// </summary>
    public async Task<FinalCheckpointAnswer> RequestFinalCheckpointAsync()
    {
        try
        {
            return await coordinator.RequestFinalCheckpoint(Attempt, Id);
        }
        catch (Exception ex)
        {
            LogFinalCheckpointRequestFailed(ex, Id);
            return FinalCheckpointAnswer.None;
        }
    }

    /// <summary>Tells the coordinator that this subtask cannot take part in <paramref name="checkpointId"/>.</summary>
    public async Task DeclineAsync(long checkpointId, string reason)
    {
        try
        {
            await coordinator.DeclineCheckpoint(Attempt, Id, checkpointId, reason);
        }
        catch (Exception ex)
        {
            LogDeclineFailed(ex, Id);
        }
    }

    /// <summary>
    /// The subtask's state at its end, which every later checkpoint includes in its place (FLIP-147): a source's final
    /// offsets, and keyed state as one portable file under the job's <c>shared/</c> directory, which the coordinator
    /// keeps as long as a retained checkpoint references it. Null when it cannot be written: then no later checkpoint
    /// can complete, and the coordinator stops triggering.
    /// </summary>
    public async Task<SubtaskSnapshot?> FinalSnapshotAsync()
    {
        var operators = SourceSnapshot();
        if (chain.KeyedState is { } backend)
        {
            if (storage is null)
            {
                return null;
            }

            try
            {
                using var keyed = backend.Snapshot();
                var uid = chain.KeyedOperatorUid!;
                var name = $"final-a{Attempt}-{Id.TaskIndex}-{Id.SubtaskIndex}-{uid}-{Guid.NewGuid():N}";
                var state = await keyed.WriteToAsync(new SnapshotTarget(storage, Id.JobId, 0, name, Shared: storage.SupportsSharedState), cancellation);
                operators.Add(new OperatorSnapshot { OperatorUid = uid, KeyedState = state });
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogCheckpointFailed(ex, Id, -1);
                return null;
            }
        }

        return new SubtaskSnapshot { TaskIndex = Id.TaskIndex, SubtaskIndex = Id.SubtaskIndex, Operators = operators };
    }

    /// <summary>The source operator's snapshot (its offset and split positions), or none for a subtask without a source.</summary>
    public List<OperatorSnapshot> SourceSnapshot(long? offset = null, Dictionary<string, string>? positions = null) =>
        chain.Operators.FirstOrDefault(o => o is ISourceOperator) is { } source
            ? [new OperatorSnapshot { OperatorUid = source.Uid, SourceOffset = offset ?? chain.Source!.Offset, SplitPositions = positions ?? chain.Source!.SplitPositions }]
            : [];

    private void ForwardBarrier(CheckpointBarrier barrier)
    {
        // Records written before the barrier go first, in partly filled batches if need be.
        foreach (var writer in chain.Writers)
        {
            writer.SealAll();
        }

        foreach (var output in chain.OutputChannels)
        {
            chain.Pending.Enqueue(new PendingBatch(output, null, 0, barrier));
        }
    }

    private async Task UploadAndAcknowledgeAsync(long checkpointId, SavepointTarget? savepoint, List<OperatorSnapshot> operators, IKeyedStateSnapshot? keyed, TimeSpan sync, TimeSpan alignment)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            long size = 0, written = 0;
            if (keyed is not null)
            {
                var target = (savepoint is null ? null : savepointStorage(savepoint.Location)) ?? storage ?? throw new InvalidOperationException("The subtask has keyed state but no checkpoint storage.");
                var directory = savepoint?.Location.JobId ?? Id.JobId;
                var uid = chain.KeyedOperatorUid!;
                var state = await keyed.WriteToAsync(new SnapshotTarget(target, directory, checkpointId, $"{Id.TaskIndex}-{Id.SubtaskIndex}-{uid}"), cancellation);
                size = state.Size;
                written = state.SizeWrittenBy(checkpointId);
                operators.Add(new OperatorSnapshot { OperatorUid = uid, KeyedState = state });
            }

            keyed?.Dispose();
            keyed = null;
            var snapshot = new SubtaskSnapshot { TaskIndex = Id.TaskIndex, SubtaskIndex = Id.SubtaskIndex, Operators = operators };
            var upload = Stopwatch.GetElapsedTime(started);
            metrics.RecordUpload(upload);
            await coordinator.AcknowledgeCheckpoint(Attempt, Id, checkpointId, snapshot, new SubtaskCheckpointMetrics(sync, upload, alignment, size, written));
        }
        catch (Exception ex)
        {
            keyed?.Dispose();
            LogCheckpointFailed(ex, Id, checkpointId);
            await DeclineAsync(checkpointId, $"subtask {Id} could not write its state: {ex.Message}");
        }
    }

    /// <summary>One checkpoint's asynchronous part: <see cref="Answered"/> completes once it acknowledged or declined.</summary>
    private sealed record AsyncPart(long CheckpointId, Task Answered);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {Task} attempt {Attempt} restored keyed state of checkpoint {CheckpointId} from {Snapshots} snapshot(s), {Bytes} bytes, in {Duration}")]
    private partial void LogRestored(TaskId task, int attempt, long checkpointId, int snapshots, long bytes, TimeSpan duration);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {Task} could not complete its part of checkpoint {CheckpointId}")]
    private partial void LogCheckpointFailed(Exception exception, TaskId task, long checkpointId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Task {Task} could not ask its checkpoint coordinator for a final checkpoint; it asks again")]
    private partial void LogFinalCheckpointRequestFailed(Exception exception, TaskId task);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {Task} could not decline a checkpoint to its checkpoint coordinator")]
    private partial void LogDeclineFailed(Exception exception, TaskId task);
}
