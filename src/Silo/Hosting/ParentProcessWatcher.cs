using System.Diagnostics;

namespace Platform.Silo.Hosting;

/// <summary>
/// Stops the silo when the process that started it exits (<c>Silo:ParentProcessId</c>), so that a silo started by the
/// AppHost never outlives it, even when the AppHost is killed without a chance to stop its children.
/// </summary>
internal sealed partial class ParentProcessWatcher(int parentProcessId, IHostApplicationLifetime lifetime, ILogger<ParentProcessWatcher> logger)
    : BackgroundService
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan OrphanGrace = TimeSpan.FromSeconds(10);

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // A process id can be reused once its process is gone: the start time tells the parent from a newcomer.
        var startedAt = StartTimeOf(parentProcessId);
        using var timer = new PeriodicTimer(PollInterval);
        do
        {
            if (startedAt is null || StartTimeOf(parentProcessId) != startedAt)
            {
                LogParentExited(logger, parentProcessId);
                lifetime.StopApplication();

                // Nobody is left to kill an orphan whose graceful stop hangs (its cluster's membership store may have gone
                // with the parent): leave after a bounded grace instead of running on alone.
                _ = Task.Delay(OrphanGrace, CancellationToken.None).ContinueWith(
                    _ =>
                    {
                        LogForcedExit(logger, OrphanGrace);
                        Environment.Exit(1);
                    },
                    TaskScheduler.Default);
                return;
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    /// <summary>The process's start time; <see cref="DateTime.MinValue"/> when it runs but cannot be inspected; <c>null</c> when it is gone.</summary>
    private static DateTime? StartTimeOf(int processId)
    {
        try
        {
            using var process = Process.GetProcessById(processId);
            return process.HasExited ? null : process.StartTime;
        }
        catch (ArgumentException)
        {
            return null;
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            return DateTime.MinValue;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The process that started this silo ({ParentProcessId}) exited; stopping the silo")]
    private static partial void LogParentExited(ILogger logger, int parentProcessId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The silo did not stop within {Grace} after its parent exited; exiting now")]
    private static partial void LogForcedExit(ILogger logger, TimeSpan grace);
}
