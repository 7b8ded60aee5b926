using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Diagnostics;
using Platform.Runtime;
using Platform.State;
using Platform.Storage;
using Platform.Tasks.Checkpointing;
using Platform.Tasks.Network;
using Platform.Tasks.Operators;

namespace Platform.Tasks;

/// <summary>
/// One subtask of one attempt (Flink's <c>StreamTask</c> with its mailbox loop). Incoming calls only queue batches
/// and credits; a single loop started from the grain's context does the work, so no grain turn ever waits for
/// another call (that would deadlock a non-reentrant grain), and the loop interleaves with calls at its awaits.
/// Barrier alignment is the <see cref="BarrierAligner"/>'s, each checkpoint's synchronous and asynchronous parts the
/// <see cref="SubtaskCheckpointCoordinator"/>'s, and reports to the job manager the <see cref="TaskReporter"/>'s.
/// </summary>
internal sealed partial class StreamTask : ITaskRuntime, IOperatorHost
{
    private const int BatchesBetweenYields = 8;

    // Slow user code can hold the grain's thread for long; yield at least this often so calls (credits, status,
    // cancellation) are served and the silo's thread pool is not starved.
    private static readonly TimeSpan MaxTimeBetweenYields = TimeSpan.FromMilliseconds(20);
    private long _lastYield = Stopwatch.GetTimestamp();

    private readonly TaskDeployment _deployment;
    private readonly OperatorChain _chain;
    private readonly InputChannel[] _inputs;
    private readonly TaskReporter _reports;
    private readonly ILogger _logger;
    private readonly long _grantThreshold;
    private readonly CancellationTokenSource _cancellation = new();
    private TaskCompletionSource? _inputSignal;
    private TaskCompletionSource? _drainSignal;
    private Exception? _failure;
    private int _nextInput;
    private int _endedInputs;

    private readonly BarrierAligner _aligner;
    private readonly SubtaskCheckpointCoordinator _checkpoints;
    private readonly SubtaskMetrics _metrics;
    private readonly TimeProvider _processingClock;
    private long _lastNotified = -1;

    public StreamTask(
        TaskDeployment deployment,
        OperatorChain chain,
        IGrainFactory grains,
        ICheckpointStorage? storage,
        ICheckpointStorage? restoreStorage,
        Func<SnapshotLocation, ICheckpointStorage> savepointStorage,
        SubtaskMetrics metrics,
        ILogger logger)
    {
        _deployment = deployment;
        _chain = chain;
        _metrics = metrics;
        _logger = logger;
        _reports = new TaskReporter(grains.GetGrain<ITaskEventSink>(deployment.Id.JobId), deployment.Id, deployment.Attempt, _cancellation.Token, logger);
        _inputs = [.. deployment.Inputs.Select(spec => new InputChannel(spec, grains.GetGrain<IStreamTaskGrain>(spec.Upstream.GrainKey)))];
        _aligner = new BarrierAligner(_inputs.Length);
        // The savepoint storage is a savepoint's own directory or blob folder, not the job's checkpoint storage.
        _checkpoints = new SubtaskCheckpointCoordinator(
            deployment, chain, grains.GetGrain<ICheckpointAcknowledger>(deployment.Id.JobId), storage, restoreStorage, savepointStorage, metrics, _cancellation.Token, logger);
        _grantThreshold = Math.Max(1, deployment.ChannelWindow / 2);
        _processingClock = chain.Context.Clock;
        foreach (var op in chain.Operators)
        {
            op.Host = this;
        }
    }

    CancellationToken IOperatorHost.Cancellation => _cancellation.Token;

    void IOperatorHost.Fail(Exception exception) => Fail(exception);

    void IOperatorHost.Wake() => Signal(ref _inputSignal);

    public int Attempt => _deployment.Attempt;

    public TaskId Id => _deployment.Id;

    public TaskState State { get; private set; } = TaskState.Created;

    public TaskMetrics Metrics
    {
        get
        {
            long blocked = 0;
            foreach (var channel in _chain.OutputChannels)
            {
                blocked += channel.BackpressuredTicks;
            }

            return new(_chain.Counters.RecordsIn, _chain.Counters.RecordsOut, System.Diagnostics.Stopwatch.GetElapsedTime(0, blocked).TotalMilliseconds);
        }
    }

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
            await _checkpoints.RestoreAsync();

            // Open from the tail so that every operator's downstream is ready before it emits.
            for (var i = _chain.Operators.Count - 1; i >= 0; i--)
            {
                await _chain.Operators[i].OpenAsync(_chain.Context);
            }

            await _reports.InitializedAsync();
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

            await FireTimersAtEndOfInputAsync();
            foreach (var op in _chain.Operators)
            {
                await op.FinishAsync(_cancellation.Token);
            }

            await EmitFinalWatermarkAsync();
            await EmitEndOfInputAsync();
            await CommitFinalOutputAsync();

            // A finished subtask acknowledges the checkpoints it took part in before it says it finished, so they
            // can complete (a stop-with-savepoint relies on it).
            await _checkpoints.WaitForAsyncPartsAsync();
            State = TaskState.Finished;
            // Before the job manager hears of the end: what it reports is then in the metrics already.
            _metrics.Publish(_chain);
            LogFinished(Id, Attempt, _chain.Counters.RecordsIn, _chain.Counters.RecordsOut);
            var final = await _checkpoints.FinalSnapshotAsync();
            await _reports.FinishedAsync(Metrics, final, _checkpoints.LastCheckpoint);
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
            await _reports.FailedAsync(Describe(failure));
        }
        finally
        {
            _metrics.Publish(_chain);
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

            _chain.Poison?.Dispose();
        }
    }

    private async Task RunInputsAsync()
    {
        var processed = 0;
        while (_endedInputs < _inputs.Length)
        {
            ThrowIfStopped();
            if (TryTakeBatch(out var index, out var batch))
            {
                var channel = _inputs[index];
                if (batch.Payload is { } payload)
                {
                    _chain.Gates[channel.Spec.Gate].Process(payload);
                    _chain.Counters.RecordsIn += batch.RecordCount;
                }

                GrantCreditIfDue(channel);
                switch (batch.Control)
                {
                    case EndOfInput:
                        channel.Ended = true;
                        _endedInputs++;
                        await OnInputEndedEventTimeAsync(index);
                        await CheckpointIfAlignedAsync(_aligner.OnEndOfInput(index));
                        break;
                    case Watermark or WatermarkStatus:
                        await OnInputEventTimeAsync(index, batch.Control);
                        break;
                    case CheckpointBarrier barrier:
                        _stopWithoutDrain |= barrier.Savepoint is { Stop: true, Drain: false };
                        var step = _aligner.OnBarrier(index, barrier);
                        if (step.Abandoned is { } abandoned)
                        {
                            await _checkpoints.DeclineAsync(abandoned, $"subtask {Id} received barrier {barrier.CheckpointId} before aligning checkpoint {abandoned}");
                        }

                        await CheckpointIfAlignedAsync(step);
                        break;
                }

                await EmitGeneratedWatermarkIfDueAsync();
                FireProcessingTimersIfDue();
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
                await WaitForInputAsync();
            }
        }
    }

    /// <summary>
    /// Waits for the next input, but no longer than until the chain's generator is due to emit (it notices idleness
    /// too) or the head's next processing-time timer; fires what is due when it wakes.
    /// </summary>
    private async Task WaitForInputAsync()
    {
        var wait = Timeout.InfiniteTimeSpan;
        if (_chain.WatermarkGenerator is not null)
        {
            // A generator downstream of an exchange emits on its interval while no input comes.
            await EmitGeneratedWatermarkIfDueAsync();
            wait = _deployment.AutoWatermarkInterval;
        }

        var (fired, nextTimer) = FireProcessingTimersIfDue();
        if (fired)
        {
            // What the timers emitted leaves now (and sinks make it visible); then the loop looks at its input again.
            SealAll();
            await FlushPendingAsync();
            if (_chain.HasSinks)
            {
                await FlushSinksAsync();
            }

            return;
        }

        if (nextTimer is { } next)
        {
            var untilTimer = TimeSpan.FromMilliseconds(Math.Max(1, next - _processingClock.GetUtcNow().ToUnixTimeMilliseconds()));
            wait = wait == Timeout.InfiniteTimeSpan || untilTimer < wait ? untilTimer : wait;
        }

        if (_chain.Pending.Count > 0)
        {
            await FlushPendingAsync();
            return;
        }

        _inputSignal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (wait == Timeout.InfiniteTimeSpan)
        {
            await _inputSignal.Task;
        }
        else
        {
            await Task.WhenAny(_inputSignal.Task, Task.Delay(wait, _processingClock, _cancellation.Token));
        }
    }

    private async Task CheckpointIfAlignedAsync(AlignmentStep step)
    {
        if (step.Aligned is { } barrier)
        {
            await _checkpoints.CheckpointAsync(barrier, step.AlignmentDuration);
            await FlushPendingAsync();
        }
    }

    private bool DueToYield() => Stopwatch.GetElapsedTime(_lastYield) >= MaxTimeBetweenYields;

    private async Task YieldAsync()
    {
        _lastYield = Stopwatch.GetTimestamp();
        await Task.Yield();
    }

    private bool TryTakeBatch(out int index, out ChannelBatch batch)
    {
        for (var i = 0; i < _inputs.Length; i++)
        {
            index = (_nextInput + i) % _inputs.Length;
            if (!_aligner.IsBlocked(index) && _inputs[index].TryTake(out batch))
            {
                _nextInput = index + 1;
                return true;
            }
        }

        index = -1;
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
        PushStatus status;
        try
        {
            status = await upstream.GrantCredit(Attempt, outputChannel, consumed);
        }
        catch (Exception ex)
        {
            // The sender also learns the consumed count from every push answer; a lost grant only matters when the
            // sender itself is gone: the next grant reaches whatever activation replaced it, and is refused there.
            LogGrantFailed(ex, Id);
            return;
        }

        if (status != PushStatus.Accepted && !Cancelled)
        {
            // The upstream subtask is gone (an empty re-activation) or belongs to another attempt: the rest of this
            // input would never arrive. Failing the attempt restarts the job instead of leaving it waiting forever.
            Fail(new InvalidOperationException(
                $"Task {Id} (attempt {Attempt}) had a credit grant refused by upstream task grain {upstream.GetPrimaryKeyString()}: {status}. " +
                "The upstream subtask no longer runs this attempt, so its input would never arrive."));
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
        // Once per batch step (input batch or source read): the counters' deltas go to the metrics.
        _metrics.Publish(_chain);
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

    [LoggerMessage(Level = LogLevel.Debug, Message = "Task {Task} attempt {Attempt} finished: {RecordsIn} records in, {RecordsOut} out")]
    private partial void LogFinished(TaskId task, int attempt, long recordsIn, long recordsOut);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {Task} attempt {Attempt} failed")]
    private partial void LogFailed(Exception exception, TaskId task, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Closing operator '{Operator}' of task {Task} failed")]
    private partial void LogCloseFailed(Exception exception, string @operator, TaskId task);

    [LoggerMessage(Level = LogLevel.Debug, Message = "A credit grant from task {Task} was not delivered")]
    private partial void LogGrantFailed(Exception exception, TaskId task);


}
