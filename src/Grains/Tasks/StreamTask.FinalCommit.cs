using Microsoft.Extensions.Logging;
using Platform.Runtime;

namespace Platform.Tasks;

/// <summary>
/// The end of a subtask with two-phase-commit sinks (Flink's FLIP-147 final checkpoint): after the input ended, the
/// sinks pre-commit their last transaction, and the subtask stays up, taking part in checkpoints directly (no barrier
/// can reach it any more), until a completed checkpoint covers that output and the sinks committed it. Only then does
/// it report FINISHED, so a bounded job's last records are committed exactly once, never lost.
/// </summary>
internal sealed partial class StreamTask
{
    // How often a subtask waiting for its final checkpoint asks the coordinator again (a trigger or an acknowledgement
    // lost, a checkpoint declined or expired).
    private static readonly TimeSpan FinalCheckpointRequestInterval = TimeSpan.FromSeconds(2);
    private bool _awaitingFinalCheckpoint;

    private async Task CommitFinalOutputAsync()
    {
        var checkpointing = _deployment.Checkpointing is not null;
        foreach (var op in _chain.Operators)
        {
            await op.EndInputAsync(_checkpoints.LastCheckpoint + 1, checkpointing, _cancellation.Token);
        }

        ThrowIfStopped();
        if (!checkpointing || !_chain.HasUncommittedOutput)
        {
            return;
        }

        _awaitingFinalCheckpoint = true;
        LogAwaitingFinalCheckpoint(Id, Attempt);
        var lastRequest = DateTimeOffset.MinValue;
        while (_chain.HasUncommittedOutput)
        {
            ThrowIfStopped();
            if (DateTimeOffset.UtcNow - lastRequest >= FinalCheckpointRequestInterval)
            {
                lastRequest = DateTimeOffset.UtcNow;
                var answer = await _checkpoints.RequestFinalCheckpointAsync();
                if (answer.Impossible is { } reason)
                {
                    // Waiting longer would hang the job: its sinks' last output is committed by the next attempt,
                    // which restores the latest completed checkpoint and replays what came after it.
                    throw new InvalidOperationException($"Subtask {Id} cannot commit its sinks' last output: {reason}. The job restarts from its latest completed checkpoint.");
                }

                foreach (var trigger in answer.Triggers)
                {
                    OnTrigger(trigger);
                }
            }

            while (_triggers.TryDequeue(out var trigger))
            {
                if (trigger.CheckpointId > _checkpoints.LastCheckpoint)
                {
                    await InjectBarrierAsync(trigger);
                }
            }

            if (!_chain.HasUncommittedOutput)
            {
                break;
            }

            // Woken by a trigger, a commit that completed, a failure or a cancellation; otherwise ask again.
            _inputSignal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var signal = _inputSignal.Task;
            await Task.WhenAny(signal, Task.Delay(FinalCheckpointRequestInterval, _cancellation.Token));
        }

        ThrowIfStopped();
        _awaitingFinalCheckpoint = false;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Task {Task} attempt {Attempt}: input ended; waiting for a checkpoint to commit its sinks' last output")]
    private partial void LogAwaitingFinalCheckpoint(TaskId task, int attempt);
}
