using Platform.Connectors;
using Platform.Graph;
using Platform.Runtime;
using Platform.Tasks;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

/// <summary>A two-silo cluster of its own whose silos carry out <see cref="CallFaults"/>.</summary>
public sealed class FaultyClusterFixture : IAsyncLifetime
{
    public KillableCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await KillableCluster.StartAsync(silos: 2);

    public async Task DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.DisposeAsync();
        }
    }
}

/// <summary>
/// Reports and grants that do not arrive the first time (the job manager unreachable for a while, an upstream subtask
/// gone under the job manager's feet) are retried or detected, so that the job ends instead of hanging.
/// </summary>
public sealed class LostReportTests(FaultyClusterFixture fixture) : IClassFixture<FaultyClusterFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(1);

    private Platform.Client.PlatformClient Platform => fixture.Cluster.Platform;

    // A job's id starts with its name: a unique name scopes an injected fault to this test's job.
    private static string UniqueName(string what) => $"{what}-{Guid.NewGuid():N}"[..(what.Length + 13)];

    [Fact]
    public async Task A_TaskFinished_report_the_job_manager_did_not_get_is_sent_again_and_the_job_finishes()
    {
        var name = UniqueName("finished-report");
        var job = new StreamJobBuilder(name);
        job.AddSource(new SequenceSource { Count = 2_000 }, "numbers")
            .Map(new Identity<long>(), "identity")
            .SinkTo(new CollectSink<long>(), "collect").Uid("out");
        CallFaults.Fail(nameof(ITaskEventSink.TaskFinished), name, times: 3);
        try
        {
            var jobId = await Platform.SubmitAsync(job);
            var status = await Platform.WaitForCompletionAsync(jobId, Timeout);

            Assert.Equal(0, CallFaults.Remaining(nameof(ITaskEventSink.TaskFinished), name));
            Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
            Assert.Equal(Enumerable.Range(0, 2_000).Select(i => (long)i), (await Platform.GetCollectedAsync<long>(jobId, "out")).Order());
        }
        finally
        {
            CallFaults.Clear(nameof(ITaskEventSink.TaskFinished), name);
        }
    }

    [Fact]
    public async Task A_TaskFailed_report_the_job_manager_did_not_get_is_sent_again_and_the_job_fails_with_the_operators_error()
    {
        var name = UniqueName("failed-report");
        var job = new StreamJobBuilder(name);
        job.AddSource(new SequenceSource { Count = 100_000 }, "numbers")
            .Map(new ThrowingMap { FailOn = 500 }, "throws at 500")
            .SinkTo(new DiscardingSink<long>(), "discard");
        CallFaults.Fail(nameof(ITaskEventSink.TaskFailed), name, times: 3);
        try
        {
            var jobId = await Platform.SubmitAsync(job);
            var status = await Platform.WaitForCompletionAsync(jobId, Timeout);

            Assert.Equal(0, CallFaults.Remaining(nameof(ITaskEventSink.TaskFailed), name));
            Assert.Equal(JobState.Failed, status.State);
            Assert.Equal("boom at record 500", status.Failure?.Message);
        }
        finally
        {
            CallFaults.Clear(nameof(ITaskEventSink.TaskFailed), name);
        }
    }

    [Fact]
    public async Task A_credit_grant_that_lands_on_an_empty_reactivated_upstream_fails_the_attempt_instead_of_hanging()
    {
        var job = new StreamJobBuilder(UniqueName("lost-upstream"));
        job.AddSource(new SequenceSource(), "fast unbounded source")
            .Rebalance()
            .Map(new SlowMap { MillisecondsPerRecord = 1 }, "slow")
            .SinkTo(new DiscardingSink<long>(), "discard");
        var jobId = await Platform.SubmitAsync(job);
        var source = fixture.Cluster.Cluster.Client.GetGrain<IStreamTaskGrain>(new TaskId(jobId, 0, 0).GrainKey);
        var slow = fixture.Cluster.Cluster.Client.GetGrain<IStreamTaskGrain>(new TaskId(jobId, 1, 0).GrainKey);

        // Backpressured: the source waits for credit with a full window of batches queued at the slow subtask.
        await Poll.UntilAsync(async () => (await slow.GetMetrics()).RecordsIn >= 500, Timeout, () => "the slow subtask processes records");

        // The source's activation goes away without the job manager knowing (as when Orleans moves or loses it); the
        // slow subtask's next grant re-activates it empty.
        var attempt = (await Platform.GetStatusAsync(jobId)).Attempt;
        await source.Release(attempt);

        var status = await Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.Equal(JobState.Failed, status.State);
        Assert.Contains("credit grant refused by upstream task grain", status.Failure?.Message);
        Assert.Contains(nameof(PushStatus.NotDeployed), status.Failure?.Message);
        Assert.Contains("slow", status.Failure?.TaskName);
    }
}
