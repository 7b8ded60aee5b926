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
    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(10);
    private readonly CancellationTokenSource _stopping = new();

    // Silos whose death is being told, or was told, to every running job; each has a notifier that retries until done.
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
                foreach (var member in snapshot.Members.Values.Where(m => m.Status == SiloStatus.Dead && _dead.Add(m.SiloAddress)))
                {
                    LogSiloDead(member.SiloAddress);
                    // One notifier per dead silo, so that retrying one never delays telling the jobs about the next.
                    _ = NotifyUntilToldAsync(member.SiloAddress);
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

    // The registry or a job manager may have been on the dead silo, or be busy past the call timeout: a silo counts as
    // handled only once every running job's manager was told, and until then this retries, with backoff, for as long
    // as this silo runs. A job manager told twice (by this silo's retry or another silo's watcher) ignores the repeat.
    private async Task NotifyUntilToldAsync(SiloAddress dead)
    {
        var told = new HashSet<string>(StringComparer.Ordinal);
        var delay = FirstRetryDelay;
        for (var tries = 1; !_stopping.IsCancellationRequested; tries++)
        {
            try
            {
                if (await TryNotifyAsync(dead, told))
                {
                    if (tries > 1)
                    {
                        LogSiloHandled(dead, tries);
                    }

                    return;
                }
            }
            catch (Exception ex) when (!_stopping.IsCancellationRequested)
            {
                LogNotifyFailed(ex, "(the job registry)");
            }

            try
            {
                await Task.Delay(delay, _stopping.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
        }
    }

    /// <summary>Tells every running job not yet told; true when none is left.</summary>
    private async Task<bool> TryNotifyAsync(SiloAddress dead, HashSet<string> told)
    {
        var jobs = await grains.GetGrain<IJobRegistryGrain>(0).List();
        var results = await Task.WhenAll(jobs.Where(j => !j.State.IsTerminal() && !told.Contains(j.JobId)).Select(async j =>
        {
            try
            {
                await grains.GetGrain<IJobRecovery>(j.JobId).OnSiloDown(dead.ToString());
                return (j.JobId, Told: true);
            }
            catch (Exception ex)
            {
                LogNotifyFailed(ex, j.JobId);
                return (j.JobId, Told: false);
            }
        }));
        told.UnionWith(results.Where(r => r.Told).Select(r => r.JobId));
        return results.All(r => r.Told);
    }

    private async Task ResumeJobsAsync()
    {
        try
        {
            var jobs = await grains.GetGrain<IJobRegistryGrain>(0).List();
            await Task.WhenAll(jobs.Where(j => !j.State.IsTerminal()).Select(async j =>
            {
                try
                {
                    await grains.GetGrain<IJobRecovery>(j.JobId).EnsureRecovered();
                }
                catch (Exception ex)
                {
                    LogNotifyFailed(ex, j.JobId);
                }
            }));
        }
        catch (Exception ex)
        {
            LogWatchFailed(ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Silo {Silo} was declared dead; restarting the jobs that ran subtasks on it")]
    private partial void LogSiloDead(SiloAddress silo);

    [LoggerMessage(Level = LogLevel.Information, Message = "Every running job was told that silo {Silo} died, after {Tries} tries")]
    private partial void LogSiloHandled(SiloAddress silo, int tries);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Watching the cluster's membership for failed silos stopped")]
    private partial void LogWatchFailed(Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Telling the job manager of job {JobId} about a failure failed")]
    private partial void LogNotifyFailed(Exception exception, string jobId);
}
