using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Diagnostics;
using Platform.Runtime;
using Platform.State;
using Platform.Storage;
using Platform.Tasks.Network;
using Platform.Tasks.Operators;

namespace Platform.Tasks;

/// <summary>
/// One subtask of one attempt (Flink's <c>StreamTask</c> with its mailbox loop). Incoming calls only queue batches
/// and credits; a single loop started from the grain's context does the work, so no grain turn ever waits for
/// another call (that would deadlock a non-reentrant grain), and the loop interleaves with calls at its awaits.
/// </summary>
internal sealed partial class StreamTask : ITaskRuntime
{
    private const int BatchesBetweenYields = 8;

    // Slow user code can hold the grain's thread for long; yield at least this often so calls (credits, status,
    // cancellation) are served and the silo's thread pool is not starved.
    private static readonly TimeSpan MaxTimeBetweenYields = TimeSpan.FromMilliseconds(20);
    private long _lastYield = Stopwatch.GetTimestamp();
    private static readonly TimeSpan IdleSourceDelay = TimeSpan.FromMilliseconds(5);

    private readonly TaskDeployment _deployment;
    private readonly OperatorChain _chain;
    private readonly InputChannel[] _inputs;
    private readonly ITaskEventSink _jobManager;
    private readonly ICheckpointAcknowledger _coordinator;
    private readonly ICheckpointStorage? _storage;
    private readonly Queue<CheckpointTrigger> _triggers = new();
    private readonly ILogger _logger;
    private readonly long _grantThreshold;
    private readonly CancellationTokenSource _cancellation = new();
    private TaskCompletionSource? _inputSignal;
    private TaskCompletionSource? _drainSignal;
    private Exception? _failure;
    private int _nextInput;
    private int _endedInputs;

    // Barrier alignment: the checkpoint being aligned and when its first barrier came; channels record what they delivered.
    private long _aligning = -1;
    private long _alignmentStarted;
    private long _lastCheckpoint = -1;
    private long _lastNotified = -1;

    // Reads the savepoint or other job's checkpoint in the deployment's RestoreLocation.
    private readonly ICheckpointStorage? _restoreStorage;

    // The asynchronous parts of checkpoints in progress (writing state, acknowledging).
    private readonly List<Task> _asyncParts = [];

    // The storage a savepoint's files are written to: its own directory or blob folder, not the job's checkpoint storage.
    private readonly Func<SnapshotLocation, ICheckpointStorage> _savepointStorage;

    public StreamTask(
        TaskDeployment deployment,
        OperatorChain chain,
        IGrainFactory grains,
        ICheckpointStorage? storage,
        ICheckpointStorage? restoreStorage,
        Func<SnapshotLocation, ICheckpointStorage> savepointStorage,
        ILogger logger)
    {
        _savepointStorage = savepointStorage;
        _restoreStorage = restoreStorage;
        _deployment = deployment;
        _chain = chain;
        _logger = logger;
        _storage = storage;
        _jobManager = grains.GetGrain<ITaskEventSink>(deployment.Id.JobId);
        _coordinator = grains.GetGrain<ICheckpointAcknowledger>(deployment.Id.JobId);
        _inputs = [.. deployment.Inputs.Select(spec => new InputChannel(spec, grains.GetGrain<IStreamTaskGrain>(spec.Upstream.GrainKey)))];
        _grantThreshold = Math.Max(1, deployment.ChannelWindow / 2);
    }

    public int Attempt => _deployment.Attempt;

    public TaskId Id => _deployment.Id;

    public TaskState State { get; private set; } = TaskState.Created;

    public TaskMetrics Metrics => new(_chain.Counters.RecordsIn, _chain.Counters.RecordsOut);

    private bool Cancelled => _cancellation.IsCancellationRequested;

    /// <summary>Queues a batch received on an input channel.</summary>
    public PushAck OnBatch(ChannelBatch batch)
    {
        if ((uint)batch.Channel >= (uint)_inputs.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(batch), $"Task {Id} has no input channel {batch.Channel}.");
        }

        var channel = _inputs[batch.Channel];
        if (channel.Offer(batch))
        {
            Signal(ref _inputSignal);
        }

        return new PushAck(PushStatus.Accepted, channel.NextSequence);
    }

    /// <summary>Applies a credit grant from the receiver of an output channel.</summary>
    public void OnCredit(int outputChannel, long consumed)
    {
        if ((uint)outputChannel < (uint)_chain.OutputChannels.Length)
        {
            _chain.OutputChannels[outputChannel].OnCredit(consumed);
        }
    }

    /// <summary>A checkpoint trigger from the job's control stream: a source injects the barrier at its next step.</summary>
    public void OnTrigger(CheckpointTrigger trigger)
    {
        if (_chain.Source is not null && trigger.Attempt == Attempt && trigger.CheckpointId > _lastCheckpoint && State == TaskState.Running)
        {
            _triggers.Enqueue(trigger);
        }
        else if (_chain.Source is not null && trigger.Attempt == Attempt && State is TaskState.Failed or TaskState.Canceled)
        {
            // A finished source is covered by its final snapshot; a failed or cancelled one cannot take part.
            _ = DeclineAsync(trigger.CheckpointId, $"source subtask {Id} is {State}");
        }
    }

    /// <summary>A checkpoint completed: operators may commit what they pre-committed for it.</summary>
    public void OnCheckpointComplete(long checkpointId)
    {
        // Notifications travel as separate calls and may overtake each other; n covers every checkpoint up to n.
        if (checkpointId <= _lastNotified)
        {
            return;
        }

        _lastNotified = checkpointId;
        foreach (var op in _chain.Operators)
        {
            op.NotifyCheckpointComplete(checkpointId);
        }
    }

    /// <summary>Stops the loop at its next step.</summary>
    public void Cancel()
    {
        if (!Cancelled)
        {
            _cancellation.Cancel();
            WakeAll();
            if (State == TaskState.Created)
            {
                // Never started, so its loop will not close the operators: release the keyed state (a RocksDB
                // instance and its directory) here. Functions were never opened, so they are not closed.
                State = TaskState.Canceled;
                _chain.KeyedState?.Dispose();
            }
        }
    }

    /// <summary>Runs the subtask to its end, then reports FINISHED or FAILED to the job manager.</summary>
    public async Task RunAsync()
    {
        if (Cancelled)
        {
            return;
        }

        State = TaskState.Running;
        try
        {
            // Return from Start at once: restoring state and opening user functions run in the loop, never in the
            // job manager's call (a slow Open would otherwise hold up the deployment of every other subtask).
            await Task.Yield();
            await RestoreKeyedStateAsync();

            // Open from the tail so that every operator's downstream is ready before it emits.
            for (var i = _chain.Operators.Count - 1; i >= 0; i--)
            {
                await _chain.Operators[i].OpenAsync(_chain.Context);
            }

            await ReportAsync(() => _jobManager.TaskInitialized(Id, Attempt));
            if (_chain.Source is { } source)
            {
                await RunSourceAsync(source);
            }
            else
            {
                await RunInputsAsync();
            }

            if (Cancelled)
            {
                State = TaskState.Canceled;
                return;
            }

            foreach (var op in _chain.Operators)
            {
                await op.FinishAsync(_cancellation.Token);
            }

            await EmitEndOfInputAsync();

            // A finished subtask acknowledges the checkpoints it took part in before it says it finished, so they
            // can complete (a stop-with-savepoint relies on it).
            await Task.WhenAll(_asyncParts.Where(t => !t.IsCompleted));
            State = TaskState.Finished;
            LogFinished(Id, Attempt, _chain.Counters.RecordsIn, _chain.Counters.RecordsOut);
            var final = await FinalSnapshotAsync();
            await ReportAsync(() => _jobManager.TaskFinished(Id, Attempt, Metrics, final, _lastCheckpoint));
        }
        catch (Exception ex) when (Cancelled && _failure is null && ex is OperationCanceledException)
        {
            State = TaskState.Canceled;
        }
        catch (Exception ex)
        {
            var failure = ex;
            State = TaskState.Failed;
            LogFailed(failure, Id, Attempt);
            await ReportAsync(() => _jobManager.TaskFailed(Id, Attempt, Describe(failure)));
        }
        finally
        {
            foreach (var op in _chain.Operators)
            {
                try
                {
                    await op.CloseAsync();
                }
                catch (Exception ex)
                {
                    LogCloseFailed(ex, op.Name, Id);
                }
            }
        }
    }

    private async Task RunSourceAsync(ISourceOperator source)
    {
        var iterations = 0;
        CheckpointTrigger? draining = null;
        while (true)
        {
            ThrowIfStopped();
            while (_triggers.TryDequeue(out var trigger))
            {
                if (trigger.CheckpointId <= _lastCheckpoint)
                {
                    continue; // A redelivered or overtaken trigger.
                }

                if (draining is not null)
                {
                    // The coordinator triggers nothing after a stop; a manual checkpoint cannot overtake the stop's barrier.
                    LogTriggerIgnoredWhileDraining(Id, trigger.CheckpointId, draining.CheckpointId);
                    continue;
                }

                if (trigger.Savepoint is { Stop: true, Drain: true } && source.IsBounded)
                {
                    // A draining stop: read the rest of the input first; the savepoint's barrier follows the last record.
                    draining = trigger;
                    LogDraining(Id, trigger.CheckpointId);
                    continue;
                }

                // Between two records: the offset recorded here is exactly where a restore resumes.
                await InjectBarrierAsync(trigger);
                if (trigger.Savepoint is { Stop: true })
                {
                    // Stop with savepoint: nothing after the savepoint's offsets is read; the end of input follows it.
                    LogStoppedAtSavepoint(Id, trigger.CheckpointId);
                    return;
                }
            }

            var status = source.Emit(_deployment.BatchSize, out var emitted);
            _chain.Counters.RecordsIn += emitted;
            PlatformMetrics.RecordsIn.Add(emitted);
            await FlushPendingAsync();
            if (emitted > 0 && _chain.HasSinks)
            {
                await FlushSinksAsync();
            }

            if (status == ReadStatus.EndOfInput)
            {
                if (draining is not null)
                {
                    await InjectBarrierAsync(draining);
                    LogStoppedAtSavepoint(Id, draining.CheckpointId);
                }

                return;
            }

            if (status == ReadStatus.NothingAvailable)
            {
                SealAll();
                await FlushPendingAsync();
                await Task.Delay(IdleSourceDelay, _cancellation.Token);
            }
            else if (++iterations % BatchesBetweenYields == 0 || DueToYield())
            {
                // Let queued calls (credits, cancellation, checkpoint triggers) run between batches.
                await YieldAsync();
            }
        }
    }

    private async Task InjectBarrierAsync(CheckpointTrigger trigger)
    {
        _lastCheckpoint = trigger.CheckpointId;
        await CheckpointAsync(new CheckpointBarrier(trigger.CheckpointId, trigger.TriggeredAt, trigger.Mode, trigger.BaseCheckpointId, trigger.Savepoint), TimeSpan.Zero);
    }

    private async Task RunInputsAsync()
    {
        var processed = 0;
        while (_endedInputs < _inputs.Length)
        {
            ThrowIfStopped();
            if (TryTakeBatch(out var channel, out var batch))
            {
                if (batch.Payload is { } payload)
                {
                    _chain.Gates[channel.Spec.Gate].Process(payload);
                    _chain.Counters.RecordsIn += batch.RecordCount;
                    PlatformMetrics.RecordsIn.Add(batch.RecordCount);
                }

                GrantCreditIfDue(channel);
                switch (batch.Control)
                {
                    case EndOfInput:
                        channel.Ended = true;
                        _endedInputs++;
                        // A finished channel counts as aligned.
                        await CompleteAlignmentIfReadyAsync();

                        break;
                    case CheckpointBarrier barrier:
                        await OnBarrierAsync(channel, barrier);
                        break;
                }

                await FlushPendingAsync();
                if (_chain.HasSinks)
                {
                    await FlushSinksAsync();
                }

                if (++processed % BatchesBetweenYields == 0 || DueToYield())
                {
                    await YieldAsync();
                }
            }
            else if (SealAll())
            {
                // Input is idle: send partly filled batches now rather than hold records back, then look again.
                await FlushPendingAsync();
            }
            else
            {
                _inputSignal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                await _inputSignal.Task;
            }
        }
    }

    private async Task OnBarrierAsync(InputChannel channel, CheckpointBarrier barrier)
    {
        if (barrier.CheckpointId <= _lastCheckpoint || (_aligning >= 0 && barrier.CheckpointId < _aligning))
        {
            return; // A barrier of a checkpoint this task already took or gave up.
        }

        if (_aligning >= 0 && barrier.CheckpointId > _aligning)
        {
            // A newer barrier overtook the one being aligned: that checkpoint cannot complete here any more.
            var abandoned = _aligning;
            ResetAlignment();
            await DeclineAsync(abandoned, $"subtask {Id} received barrier {barrier.CheckpointId} before aligning checkpoint {abandoned}");
        }

        if (_aligning < 0)
        {
            _aligning = barrier.CheckpointId;
            _alignedBarrier = barrier;
            _alignmentStarted = Stopwatch.GetTimestamp();
        }

        channel.BarrierSeen = barrier.CheckpointId;
        if (barrier.Mode == CheckpointingMode.ExactlyOnce)
        {
            // Exactly-once: records behind the barrier wait until every input delivered it (they belong to the next checkpoint).
            channel.Blocked = true;
        }

        await CompleteAlignmentIfReadyAsync();
    }

    private CheckpointBarrier? _alignedBarrier;

    private async Task CompleteAlignmentIfReadyAsync()
    {
        if (_aligning < 0 || _alignedBarrier is null || !_inputs.All(c => c.BarrierSeen == _aligning || c.Ended))
        {
            return;
        }

        var aligned = _alignedBarrier;
        var alignment = Stopwatch.GetElapsedTime(_alignmentStarted);
        _lastCheckpoint = aligned.CheckpointId;
        ResetAlignment();
        await CheckpointAsync(aligned, alignment);
    }

    private void ResetAlignment()
    {
        _aligning = -1;
        _alignedBarrier = null;
        foreach (var input in _inputs)
        {
            input.Blocked = false;
        }
    }

    /// <summary>
    /// Takes this subtask's part of a checkpoint. Synchronous part: freeze the keyed state (copy-on-write, no copy
    /// here), note the source offset, and send the barrier downstream after every record that precedes it. The
    /// asynchronous part (serializing and writing the frozen state, then acknowledging) runs while records flow.
    /// </summary>
    private async Task CheckpointAsync(CheckpointBarrier barrier, TimeSpan alignment)
    {
        var started = Stopwatch.GetTimestamp();
        var offset = _chain.Source?.Offset;
        IKeyedStateSnapshot? keyed;
        var declined = false;
        try
        {
            keyed = barrier.Savepoint switch
            {
                // A savepoint is self-contained: portable, or native with every file of its own (no base).
                { Format: SavepointFormat.Native } => _chain.KeyedState?.SnapshotForCheckpoint(new CheckpointSnapshotRequest(barrier.CheckpointId, true, null)),
                not null => _chain.KeyedState?.Snapshot(),
                null => _chain.KeyedState?.SnapshotForCheckpoint(new CheckpointSnapshotRequest(
                    barrier.CheckpointId,
                    _deployment.Checkpointing?.Incremental == true && _storage?.SupportsSharedState == true,
                    barrier.BaseCheckpointId)),
            };
        }
        catch (Exception ex)
        {
            // This checkpoint fails, not the subtask: its state is untouched. The barrier still goes downstream, so
            // that the subtasks there finish aligning instead of holding their inputs until the next one.
            LogCheckpointFailed(ex, Id, barrier.CheckpointId);
            await DeclineAsync(barrier.CheckpointId, $"subtask {Id} could not snapshot its state: {ex.Message}");
            keyed = null;
            declined = true;
        }

        SealAll();
        foreach (var output in _chain.OutputChannels)
        {
            _chain.Pending.Enqueue(new PendingBatch(output, null, 0, barrier));
        }

        var sync = Stopwatch.GetElapsedTime(started);
        PlatformMetrics.SyncDuration.Record(sync.TotalMilliseconds);
        PlatformMetrics.AlignmentDuration.Record(alignment.TotalMilliseconds);
        if (!declined)
        {
            TrackAsyncPart(CompleteCheckpointAsync(barrier.CheckpointId, barrier.Savepoint, offset, keyed, sync, alignment));
        }

        await FlushPendingAsync();
    }

    private async Task CompleteCheckpointAsync(long checkpointId, SavepointTarget? savepoint, long? offset, IKeyedStateSnapshot? keyed, TimeSpan sync, TimeSpan alignment)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            var operators = SourceSnapshot(offset);
            long size = 0, written = 0;
            if (keyed is not null)
            {
                var storage = (savepoint is null ? null : _savepointStorage(savepoint.Location)) ?? _storage ?? throw new InvalidOperationException("The subtask has keyed state but no checkpoint storage.");
                var directory = savepoint?.Location.JobId ?? Id.JobId;
                var uid = _chain.KeyedOperatorUid!;
                var state = await keyed.WriteToAsync(new SnapshotTarget(storage, directory, checkpointId, $"{Id.TaskIndex}-{Id.SubtaskIndex}-{uid}"), _cancellation.Token);
                size = state.Size;
                written = state.SizeWrittenBy(checkpointId);
                operators.Add(new OperatorSnapshot { OperatorUid = uid, KeyedState = state });
            }

            keyed?.Dispose();
            keyed = null;
            var snapshot = new SubtaskSnapshot { TaskIndex = Id.TaskIndex, SubtaskIndex = Id.SubtaskIndex, Operators = operators };
            var metrics = new SubtaskCheckpointMetrics(sync, Stopwatch.GetElapsedTime(started), alignment, size, written);
            await _coordinator.AcknowledgeCheckpoint(Attempt, Id, checkpointId, snapshot, metrics);
        }
        catch (Exception ex)
        {
            keyed?.Dispose();
            LogCheckpointFailed(ex, Id, checkpointId);
            await DeclineAsync(checkpointId, $"subtask {Id} could not write its state: {ex.Message}");
        }
    }

    /// <summary>
    /// The subtask's state at its end, which every later checkpoint includes in its place (FLIP-147): a source's final
    /// offsets, and keyed state as one portable file under the job's <c>shared/</c> directory, which the coordinator
    /// keeps as long as a retained checkpoint references it. Null when it cannot be written: then no later checkpoint
    /// can complete, and the coordinator stops triggering.
    /// </summary>
    private async Task<SubtaskSnapshot?> FinalSnapshotAsync()
    {
        var operators = SourceSnapshot();
        if (_chain.KeyedState is { } backend)
        {
            if (_storage is not { } storage)
            {
                return null;
            }

            try
            {
                using var keyed = backend.Snapshot();
                var uid = _chain.KeyedOperatorUid!;
                var name = $"final-a{Attempt}-{Id.TaskIndex}-{Id.SubtaskIndex}-{uid}-{Guid.NewGuid():N}";
                var state = await keyed.WriteToAsync(new SnapshotTarget(storage, Id.JobId, 0, name, Shared: storage.SupportsSharedState), _cancellation.Token);
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

    private void TrackAsyncPart(Task part)
    {
        _asyncParts.RemoveAll(t => t.IsCompleted);
        _asyncParts.Add(part);
    }

    private List<OperatorSnapshot> SourceSnapshot(long? offset = null) =>
        _chain.Operators.FirstOrDefault(o => o is ISourceOperator) is { } source
            ? [new OperatorSnapshot { OperatorUid = source.Uid, SourceOffset = offset ?? _chain.Source!.Offset }]
            : [];

    private async Task DeclineAsync(long checkpointId, string reason)
    {
        try
        {
            await _coordinator.DeclineCheckpoint(Attempt, Id, checkpointId, reason);
        }
        catch (Exception ex)
        {
            LogReportFailed(ex, Id);
        }
    }

    private async Task RestoreKeyedStateAsync()
    {
        if (_chain.KeyedState is not { } backend || _deployment.Restore?.FirstOrDefault(r => r.OperatorUid == _chain.KeyedOperatorUid) is not { } restore)
        {
            return;
        }

        // State from a savepoint or another job's checkpoint is read where it is, and its files are never shared by this
        // job's incremental checkpoints (they belong to another directory): -1 tells the backend not to remember them.
        var location = _deployment.RestoreLocation;
        var storage = (location is null ? null : _restoreStorage) ?? _storage ?? throw new InvalidOperationException($"Subtask {Id} must restore keyed state but has no checkpoint storage.");
        var snapshots = restore.KeyedState.Where(s => s.KeyGroupEnd >= backend.KeyGroupRange.Start && s.KeyGroupStart <= backend.KeyGroupRange.End).ToList();
        var started = Stopwatch.GetTimestamp();
        await backend.RestoreAsync(snapshots, location is null ? _deployment.RestoredFrom ?? -1 : -1, storage, location?.JobId ?? Id.JobId, _cancellation.Token);
        LogRestored(Id, Attempt, _deployment.RestoredFrom ?? -1, snapshots.Count, snapshots.Sum(s => s.Size), Stopwatch.GetElapsedTime(started));
    }

    private bool DueToYield() => Stopwatch.GetElapsedTime(_lastYield) >= MaxTimeBetweenYields;

    private async Task YieldAsync()
    {
        _lastYield = Stopwatch.GetTimestamp();
        await Task.Yield();
    }

    private bool TryTakeBatch(out InputChannel channel, out ChannelBatch batch)
    {
        for (var i = 0; i < _inputs.Length; i++)
        {
            var index = (_nextInput + i) % _inputs.Length;
            if (!_inputs[index].Blocked && _inputs[index].TryTake(out batch))
            {
                channel = _inputs[index];
                _nextInput = index + 1;
                return true;
            }
        }

        channel = null!;
        batch = null!;
        return false;
    }

    private void GrantCreditIfDue(InputChannel channel)
    {
        if (channel.Ended || channel.NextSequence - channel.Granted < _grantThreshold)
        {
            return;
        }

        channel.Granted = channel.NextSequence;
        _ = GrantAsync(channel.Upstream, channel.Spec.UpstreamOutputChannel, channel.NextSequence);
    }

    private async Task GrantAsync(IStreamTaskGrain upstream, int outputChannel, long consumed)
    {
        try
        {
            await upstream.GrantCredit(Attempt, outputChannel, consumed);
        }
        catch (Exception ex)
        {
            // The sender also learns the consumed count from every push answer; a lost grant only matters when the
            // sender itself is gone, which the job manager handles.
            LogGrantFailed(ex, Id);
        }
    }

    private bool SealAll()
    {
        foreach (var writer in _chain.Writers)
        {
            writer.SealAll();
        }

        return _chain.Pending.Count > 0;
    }

    private async ValueTask FlushPendingAsync()
    {
        while (_chain.Pending.TryDequeue(out var batch))
        {
            await batch.Channel.SendAsync(this, batch.Payload, batch.Count, batch.Control);
        }
    }

    private async ValueTask FlushSinksAsync()
    {
        foreach (var op in _chain.Operators)
        {
            if (op.NeedsFlush)
            {
                await op.FlushAsync(_cancellation.Token);
            }
        }
    }

    private async Task EmitEndOfInputAsync()
    {
        SealAll();
        foreach (var channel in _chain.OutputChannels)
        {
            _chain.Pending.Enqueue(new PendingBatch(channel, null, 0, EndOfInput.Instance));
        }

        await FlushPendingAsync();
        while (_chain.OutputChannels.Any(c => c.InFlight > 0))
        {
            ThrowIfStopped();
            _drainSignal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await _drainSignal.Task;
        }

        ThrowIfStopped();
    }

    public void ThrowIfStopped()
    {
        if (_failure is not null)
        {
            throw _failure;
        }

        _cancellation.Token.ThrowIfCancellationRequested();
    }

    public void Track(OutputChannel channel, Task<PushAck> call) => _ = ObservePushAsync(channel, call);

    private async Task ObservePushAsync(OutputChannel channel, Task<PushAck> call)
    {
        try
        {
            var ack = await call;
            channel.OnCallCompleted();
            if (ack.Status == PushStatus.Accepted)
            {
                channel.OnCredit(ack.Consumed);
            }
            else
            {
                Fail(new InvalidOperationException(
                    $"Task {Id} (attempt {Attempt}) had a batch refused by downstream task grain {channel.Target.GetPrimaryKeyString()}: {ack.Status}."));
            }
        }
        catch (Exception ex)
        {
            channel.OnCallCompleted();
            Fail(ex);
        }

        if (channel.InFlight == 0)
        {
            Signal(ref _drainSignal);
        }
    }

    private void Fail(Exception ex)
    {
        _failure ??= ex;
        WakeAll();
    }

    private void WakeAll()
    {
        Signal(ref _inputSignal);
        Signal(ref _drainSignal);
        foreach (var channel in _chain.OutputChannels)
        {
            channel.WakeWaiter();
        }
    }

    private static void Signal(ref TaskCompletionSource? signal)
    {
        var waiter = signal;
        signal = null;
        waiter?.TrySetResult();
    }

    private FailureInfo Describe(Exception ex)
    {
        var root = ex is OperatorException { InnerException: { } inner } ? inner : ex;
        return new FailureInfo
        {
            OperatorName = (ex as OperatorException)?.OperatorName,
            TaskName = _deployment.TaskName,
            SubtaskIndex = Id.SubtaskIndex,
            ExceptionType = root.GetType().FullName,
            Message = root.Message,
            StackTrace = root.StackTrace,
        };
    }

    private async Task ReportAsync(Func<Task> report)
    {
        try
        {
            await report();
        }
        catch (Exception ex)
        {
            LogReportFailed(ex, Id);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Task {Task} attempt {Attempt} finished: {RecordsIn} records in, {RecordsOut} out")]
    private partial void LogFinished(TaskId task, int attempt, long recordsIn, long recordsOut);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {Task} attempt {Attempt} failed")]
    private partial void LogFailed(Exception exception, TaskId task, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Closing operator '{Operator}' of task {Task} failed")]
    private partial void LogCloseFailed(Exception exception, string @operator, TaskId task);

    [LoggerMessage(Level = LogLevel.Debug, Message = "A credit grant from task {Task} was not delivered")]
    private partial void LogGrantFailed(Exception exception, TaskId task);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {Task} could not complete its part of checkpoint {CheckpointId}")]
    private partial void LogCheckpointFailed(Exception exception, TaskId task, long checkpointId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Source task {Task} stopped after savepoint {CheckpointId}")]
    private partial void LogStoppedAtSavepoint(TaskId task, long checkpointId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {Task} drains its bounded input before savepoint {CheckpointId} (stop with drain)")]
    private partial void LogDraining(TaskId task, long checkpointId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {Task} ignores the trigger of checkpoint {CheckpointId}: it is draining its input for the stop with savepoint {StopCheckpointId}")]
    private partial void LogTriggerIgnoredWhileDraining(TaskId task, long checkpointId, long stopCheckpointId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {Task} attempt {Attempt} restored keyed state of checkpoint {CheckpointId} from {Snapshots} snapshot(s), {Bytes} bytes, in {Duration}")]
    private partial void LogRestored(TaskId task, int attempt, long checkpointId, int snapshots, long bytes, TimeSpan duration);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {Task} could not report to its job manager")]
    private partial void LogReportFailed(Exception exception, TaskId task);
}
