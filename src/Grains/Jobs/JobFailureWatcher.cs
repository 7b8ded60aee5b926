using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Platform.Runtime;

namespace Platform.Jobs;

/// <summary>
/// Runs in every silo: tells the job managers of running jobs when a silo is declared dead (Orleans' membership),
/// so that jobs whose subtasks ran there restart, and, when the silo starts, wakes the job managers of jobs that
/// should be running (after the whole cluster was stopped and started again on the same storage).
/// </summary>
internal sealed partial class JobFailureWatcher(
    IClusterMembershipService membership,
    IGrainFactory grains,
    ILogger<JobFailureWatcher> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly HashSet<SiloAddress> _dead = [];

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(JobFailureWatcher), ServiceLifecycleStage.Active, OnStartAsync, OnStopAsync);

    private Task OnStartAsync(CancellationToken cancellationToken)
    {
        _dead.UnionWith(membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Dead).Select(m => m.SiloAddress));
        _ = WatchAsync();
        _ = ResumeJobsAsync();
        return Task.CompletedTask;
    }

    private Task OnStopAsync(CancellationToken cancellationToken)
    {
        _stopping.Cancel();
        return Task.CompletedTask;
    }

    private async Task WatchAsync()
    {
        try
        {
            await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(_stopping.Token))
            {
                foreach (var member in snapshot.Members.Values.Where(m => m.Status == SiloStatus.Dead && !_dead.Contains(m.SiloAddress)))
                {
                    LogSiloDead(member.SiloAddress);
                    if (await TryNotifyAsync(member.SiloAddress))
                    {
                        _dead.Add(member.SiloAddress);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            LogWatchFailed(ex);
        }
    }

    // The registry may itself have been on the dead silo: retry for a while rather than give up on the first error.
    private async Task<bool> TryNotifyAsync(SiloAddress dead)
    {
        for (var attempt = 0; attempt < 10 && !_stopping.IsCancellationRequested; attempt++)
        {
            try
            {
                await ForRunningJobsAsync(job => job.OnSiloDown(dead.ToString()));
                return true;
            }
            catch (Exception ex) when (!_stopping.IsCancellationRequested)
            {
                LogNotifyFailed(ex, "(all)");
                await Task.Delay(TimeSpan.FromMilliseconds(200 * (attempt + 1)), _stopping.Token);
            }
        }

        return false;
    }

    private async Task ResumeJobsAsync()
    {
        try
        {
            await ForRunningJobsAsync(job => job.EnsureRecovered());
        }
        catch (Exception ex)
        {
            LogWatchFailed(ex);
        }
    }

    private async Task ForRunningJobsAsync(Func<IJobRecovery, Task> action)
    {
        var jobs = await grains.GetGrain<IJobRegistryGrain>(0).List();
        await Task.WhenAll(jobs.Where(j => !j.State.IsTerminal()).Select(async j =>
        {
            try
            {
                await action(grains.GetGrain<IJobRecovery>(j.JobId));
            }
            catch (Exception ex)
            {
                LogNotifyFailed(ex, j.JobId);
            }
        }));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Silo {Silo} was declared dead; restarting the jobs that ran subtasks on it")]
    private partial void LogSiloDead(SiloAddress silo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Watching the cluster's membership for failed silos stopped")]
    private partial void LogWatchFailed(Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Telling the job manager of job {JobId} about a failure failed")]
    private partial void LogNotifyFailed(Exception exception, string jobId);
}
