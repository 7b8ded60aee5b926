using Microsoft.Extensions.Logging;
using Platform.Connectors;
using Platform.Runtime;
using Platform.Tasks.Operators;

namespace Platform.Tasks;

/// <summary>
/// The source side of the subtask's loop: checkpoint triggers from the job's control stream, barriers injected between
/// two records, and stop-with-savepoint (with or without draining a bounded input first).
/// </summary>
internal sealed partial class StreamTask
{
    private static readonly TimeSpan IdleSourceDelay = TimeSpan.FromMilliseconds(5);
    private readonly Queue<CheckpointTrigger> _triggers = new();

    /// <summary>A checkpoint trigger from the job's control stream: a source injects the barrier at its next step.</summary>
    public void OnTrigger(CheckpointTrigger trigger)
    {
        if ((_chain.Source is not null || _awaitingFinalCheckpoint) && trigger.Attempt == Attempt && trigger.CheckpointId > _checkpoints.LastCheckpoint && State == TaskState.Running)
        {
            _triggers.Enqueue(trigger);
            if (_awaitingFinalCheckpoint)
            {
                Signal(ref _inputSignal);
            }
        }
        else if (_chain.Source is not null && trigger.Attempt == Attempt && State is TaskState.Failed or TaskState.Canceled)
        {
            // A finished source is covered by its final snapshot; a failed or cancelled one cannot take part.
            _ = _checkpoints.DeclineAsync(trigger.CheckpointId, $"source subtask {Id} is {State}");
        }
        else if (_chain.Source is not null)
        {
            LogTriggerNotTaken(Id, Attempt, trigger.CheckpointId, trigger.Attempt, State, _checkpoints.LastCheckpoint);
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
                if (trigger.CheckpointId <= _checkpoints.LastCheckpoint)
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
                LogInjectingBarrier(Id, Attempt, trigger.CheckpointId);
                await InjectBarrierAsync(trigger);
                if (trigger.Savepoint is { Stop: true })
                {
                    _stopWithoutDrain = !trigger.Savepoint.Drain;
                    // Stop with savepoint: nothing after the savepoint's offsets is read; the end of input follows it.
                    LogStoppedAtSavepoint(Id, trigger.CheckpointId);
                    return;
                }
            }

            var status = source.Emit(_deployment.BatchSize, out var emitted);
            _chain.Counters.RecordsIn += emitted;
            await EmitGeneratedWatermarkIfDueAsync();
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
        await _checkpoints.CheckpointAsync(new CheckpointBarrier(trigger.CheckpointId, trigger.TriggeredAt, trigger.Mode, trigger.BaseCheckpointId, trigger.Savepoint), TimeSpan.Zero);
        await FlushPendingAsync();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Source task {Task} attempt {Attempt} injects the barrier of checkpoint {CheckpointId}")]
    private partial void LogInjectingBarrier(TaskId task, int attempt, long checkpointId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Source task {Task} attempt {Attempt} does not take the trigger of checkpoint {CheckpointId} (trigger of attempt {TriggerAttempt}; task {State}; last checkpoint {LastCheckpoint})")]
    private partial void LogTriggerNotTaken(TaskId task, int attempt, long checkpointId, int triggerAttempt, TaskState state, long lastCheckpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "Source task {Task} stopped after savepoint {CheckpointId}")]
    private partial void LogStoppedAtSavepoint(TaskId task, long checkpointId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {Task} drains its bounded input before savepoint {CheckpointId} (stop with drain)")]
    private partial void LogDraining(TaskId task, long checkpointId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {Task} ignores the trigger of checkpoint {CheckpointId}: it is draining its input for the stop with savepoint {StopCheckpointId}")]
    private partial void LogTriggerIgnoredWhileDraining(TaskId task, long checkpointId, long stopCheckpointId);
}
