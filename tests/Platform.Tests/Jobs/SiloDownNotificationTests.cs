using Platform.Connectors;
using Platform.Graph;
using Platform.Jobs;
using Platform.Runtime;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

/// <summary>The silos' failure watchers keep telling a job that a silo died until its job manager got the news.</summary>
public sealed class SiloDownNotificationTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task A_dead_silo_is_told_again_to_a_job_manager_that_was_unreachable_the_first_times()
    {
        await using var cluster = await KillableCluster.StartAsync(silos: 3);
        var name = $"silo-down-{Guid.NewGuid():N}"[..22];

        // Sources that emit nothing: once their subtasks are lost, no batch, grant or checkpoint reveals it, so only the
        // watchers' notification can end the job. Without checkpointing it does not restart: it fails, saying why.
        var (jobId, victim) = await SubmitWithSubtasksOnASecondaryWithoutTheJobManagerAsync(cluster, () => IdleJob(name));

        // Both surviving silos' watchers notify; the first four calls find the job manager unreachable.
        CallFaults.Fail(nameof(IJobRecovery.OnSiloDown), jobId, times: 4);
        try
        {
            var handle = cluster.Cluster.SecondarySilos.Single(s => s.SiloAddress.ToString() == victim);
            await cluster.Cluster.KillSiloAsync(handle);

            var status = await cluster.Platform.WaitForCompletionAsync(jobId, Timeout);
            Assert.Equal(0, CallFaults.Remaining(nameof(IJobRecovery.OnSiloDown), jobId));
            Assert.Equal(JobState.Failed, status.State);
            Assert.Equal("SiloLost", status.Failure?.ExceptionType);
            Assert.Contains($"Silo {victim} left the cluster", status.Failure?.Message);
        }
        finally
        {
            CallFaults.Clear(nameof(IJobRecovery.OnSiloDown), jobId);
        }
    }

    [Fact]
    public async Task Subtasks_lost_with_their_silo_fail_the_job_managers_heartbeat_when_no_notification_reaches_it()
    {
        await using var cluster = await KillableCluster.StartAsync(silos: 3);
        var name = $"heartbeat-{Guid.NewGuid():N}"[..22];
        var (jobId, victim) = await SubmitWithSubtasksOnASecondaryWithoutTheJobManagerAsync(cluster, () => IdleJob(name));

        // No watcher's notification ever reaches the job manager (as when it was told while it could not act on it):
        // the idle job's other subtasks never call the lost ones, so only the job manager's heartbeat can find them.
        const int armed = 1_000_000;
        CallFaults.Fail(nameof(IJobRecovery.OnSiloDown), jobId, armed);
        try
        {
            var handle = cluster.Cluster.SecondarySilos.Single(s => s.SiloAddress.ToString() == victim);
            await cluster.Cluster.KillSiloAsync(handle);

            var status = await cluster.Platform.WaitForCompletionAsync(jobId, Timeout);
            Assert.True(CallFaults.Remaining(nameof(IJobRecovery.OnSiloDown), jobId) < armed, "no watcher tried to notify the job manager, so the test proved nothing");
            Assert.Equal(JobState.Failed, status.State);
            Assert.Equal("SubtaskLost", status.Failure?.ExceptionType);
            Assert.Contains("failed the job manager's heartbeat", status.Failure?.Message);
        }
        finally
        {
            CallFaults.Clear(nameof(IJobRecovery.OnSiloDown), jobId);
        }
    }

    /// <summary>Sources that emit nothing: once their subtasks are lost, no batch, grant or checkpoint reveals it.</summary>
    private static StreamJobBuilder IdleJob(string name)
    {
        var job = new StreamJobBuilder(name) { DefaultParallelism = 3 };
        job.AddSource(new SequenceSource { RecordsPerSecondPerSubtask = 0.001 }, "idle source")
            .Rebalance()
            .Map(new Identity<long>(), "identity")
            .SinkTo(new DiscardingSink<long>(), "discard");
        return job;
    }

    private static async Task<(string JobId, string Victim)> SubmitWithSubtasksOnASecondaryWithoutTheJobManagerAsync(KillableCluster cluster, Func<StreamJobBuilder> build)
    {
        var secondaries = cluster.Cluster.SecondarySilos.Select(s => s.SiloAddress.ToString()).ToList();
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var jobId = await cluster.Platform.SubmitAsync(build());
            var status = await cluster.Platform.WaitUntilRunningAsync(jobId, timeout: Timeout);
            var victim = secondaries.FirstOrDefault(s => s != status.JobManagerSilo && status.Tasks.Any(t => t.Silo == s));
            if (victim is not null)
            {
                return (jobId, victim);
            }

            await cluster.Platform.CancelAsync(jobId);
        }

        throw new InvalidOperationException("No submission placed subtasks on a secondary silo that does not host the job manager.");
    }
}
