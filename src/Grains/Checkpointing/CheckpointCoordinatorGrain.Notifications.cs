using Microsoft.Extensions.Logging;
using Platform.Tasks;

namespace Platform.Checkpointing;

/// <summary>
/// Commit notices: when a checkpoint (or a stop with savepoint) completes, every subtask of the attempt hears of it,
/// so that two-phase-commit sinks commit. The notice is persisted with the completion (<see cref="CoordinatorState.CommitNotice"/>)
/// and delivered with retries; one a subtask has not confirmed goes out again on the job manager's heartbeat and
/// after the coordinator is re-activated. A subtask treats notice n as covering every checkpoint up to n, so notices
/// that overtake each other or arrive twice do no harm.
/// </summary>
internal sealed partial class CheckpointCoordinatorGrain
{
    private const int NoticeAttempts = 5;
    private static readonly TimeSpan FirstNoticeRetryDelay = TimeSpan.FromMilliseconds(200);

    // The notice each subtask of the current attempt confirmed, and the subtasks a delivery is under way to.
    private readonly Dictionary<TaskId, long> _confirmedNotices = [];
    private readonly HashSet<TaskId> _deliveringNotices = [];

    /// <summary>Records that <paramref name="checkpointId"/> committed output (the caller persists it) and sends the notice.</summary>
    private void PublishCommitNotice(long checkpointId)
    {
        if (S.CommitNotice is null || checkpointId > S.CommitNotice)
        {
            S.CommitNotice = checkpointId;
        }

        ResendCommitNotice();
    }

    private void ResendCommitNotice()
    {
        if (S.CommitNotice is not { } notice || S.Start is not { } start)
        {
            return;
        }

        foreach (var (task, _) in start.Subtasks)
        {
            if ((!_confirmedNotices.TryGetValue(task, out var confirmed) || confirmed < notice) && _deliveringNotices.Add(task))
            {
                _ = DeliverCommitNoticeAsync(task, start.Attempt);
            }
        }
    }

    private async Task DeliverCommitNoticeAsync(TaskId task, int attempt)
    {
        try
        {
            var grain = GrainFactory.GetGrain<IStreamTaskGrain>(task.GrainKey);
            var delay = FirstNoticeRetryDelay;
            var failures = 0;
            while (S.CommitNotice is { } notice && S.Start?.Attempt == attempt
                && (!_confirmedNotices.TryGetValue(task, out var confirmed) || confirmed < notice))
            {
                try
                {
                    await grain.NotifyCheckpointComplete(attempt, notice);
                    if (S.Start?.Attempt == attempt)
                    {
                        _confirmedNotices[task] = notice;
                    }
                }
                catch (Exception ex)
                {
                    if (++failures >= NoticeAttempts)
                    {
                        // The heartbeat tries again; a subtask that is gone is restarted by the job manager, and the
                        // restored sinks commit from their checkpoint.
                        LogNoticeNotDelivered(ex, JobId, notice, task);
                        return;
                    }

                    await Task.Delay(delay);
                    delay *= 2;
                }
            }
        }
        finally
        {
            _deliveringNotices.Remove(task);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: subtask {Task} did not confirm the completion of checkpoint {CheckpointId}; it is sent again on the next heartbeat")]
    private partial void LogNoticeNotDelivered(Exception exception, string jobId, long checkpointId, TaskId task);
}
