using Microsoft.Extensions.Logging;
using Platform.Checkpointing;
using Platform.Runtime;

namespace Platform.Tasks;

/// <summary>
/// Tells the job manager what became of one subtask's attempt. FINISHED and FAILED are retried with backoff until
/// delivered (the job manager's silo may have died, or its call timed out), for as long as the attempt lives: until
/// the task is cancelled, which also happens when it is released or a newer attempt supersedes it. A repeated report
/// is harmless: the job manager ignores reports of a subtask or attempt it has already dealt with. The retries run in
/// the task's loop, so the grain keeps serving calls (a cancellation among them) meanwhile.
/// </summary>
internal sealed partial class TaskReporter(ITaskEventSink jobManager, TaskId id, int attempt, CancellationToken cancellation, ILogger logger)
{
    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(5);

    /// <summary>The subtask restored its state and opened its operators (one-way: sent once).</summary>
    public async Task InitializedAsync()
    {
        try
        {
            await jobManager.TaskInitialized(id, attempt);
        }
        catch (Exception ex)
        {
            LogReportFailed(ex, id, nameof(ITaskEventSink.TaskInitialized));
        }
    }

    /// <summary>The subtask finished; retried until delivered or the attempt is over.</summary>
    public Task FinishedAsync(TaskMetrics metrics, SubtaskSnapshot? finalSnapshot, long lastCheckpoint) =>
        DeliverAsync(nameof(ITaskEventSink.TaskFinished), () => jobManager.TaskFinished(id, attempt, metrics, finalSnapshot, lastCheckpoint));

    /// <summary>The subtask failed; retried until delivered or the attempt is over.</summary>
    public Task FailedAsync(FailureInfo failure) =>
        DeliverAsync(nameof(ITaskEventSink.TaskFailed), () => jobManager.TaskFailed(id, attempt, failure));

    private async Task DeliverAsync(string report, Func<Task> send)
    {
        var delay = FirstRetryDelay;
        for (var tries = 1; ; tries++)
        {
            try
            {
                await send();
                if (tries > 1)
                {
                    LogReportDelivered(id, report, tries);
                }

                return;
            }
            catch (Exception ex)
            {
                LogReportFailed(ex, id, report);
            }

            if (cancellation.IsCancellationRequested)
            {
                // The job manager cancelled or superseded this attempt, or released the task: it needs no report any more.
                LogReportAbandoned(id, report, tries);
                return;
            }

            try
            {
                await Task.Delay(delay, cancellation);
            }
            catch (OperationCanceledException)
            {
                LogReportAbandoned(id, report, tries);
                return;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {Task} could not report {Report} to its job manager")]
    private partial void LogReportFailed(Exception exception, TaskId task, string report);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {Task} reported {Report} to its job manager after {Tries} tries")]
    private partial void LogReportDelivered(TaskId task, string report, int tries);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {Task} stops reporting {Report} after {Tries} tries: its attempt was cancelled, released or superseded")]
    private partial void LogReportAbandoned(TaskId task, string report, int tries);
}
