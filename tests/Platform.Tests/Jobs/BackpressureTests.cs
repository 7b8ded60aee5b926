using Platform.Connectors;
using Platform.Graph;
using Platform.Runtime;
using Platform.Tasks;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

[Collection(ClusterCollection.Name)]
public sealed class BackpressureTests(ClusterFixture fixture)
{
    [Fact]
    public async Task A_slow_operator_bounds_what_a_fast_source_has_in_flight()
    {
        var job = new StreamJobBuilder("backpressure");
        job.AddSource(new SequenceSource(), "fast unbounded source")
            .Rebalance()
            .Map(new SlowMap { MillisecondsPerRecord = 1 }, "slow")
            .SinkTo(new DiscardingSink<long>(), "discard");

        var jobId = await fixture.Platform.SubmitAsync(job);
        try
        {
            var status = await fixture.Platform.GetStatusAsync(jobId);
            Assert.Equal(2, status.Tasks.Count);
            var source = fixture.Cluster.Client.GetGrain<IStreamTaskGrain>(new TaskId(jobId, 0, 0).GrainKey);
            var slow = fixture.Cluster.Client.GetGrain<IStreamTaskGrain>(new TaskId(jobId, 1, 0).GrainKey);

            // Wait until the slow operator has done real work, then compare what the source sent with what was consumed.
            var deadline = DateTime.UtcNow.AddMinutes(1);
            while ((await slow.GetMetrics()).RecordsIn < 1_000)
            {
                Assert.True(DateTime.UtcNow < deadline, "the slow operator processed too little");
                await Task.Delay(50);
            }

            for (var sample = 0; sample < 5; sample++)
            {
                // Read the sender first: whatever the receiver consumes meanwhile only lowers the difference, so the
                // bound below is exact. Window (4 batches of 64) waiting at the receiver, one being processed, one being filled.
                var sent = (await source.GetMetrics()).RecordsOut;
                var consumed = (await slow.GetMetrics()).RecordsIn;
                Assert.True(sent - consumed <= (4 + 2) * 64, $"the source is {sent - consumed} records ahead of the slow operator");
                await Task.Delay(100);
            }
        }
        finally
        {
            await fixture.Platform.CancelAsync(jobId);
        }

        Assert.Equal(JobState.Canceled, (await fixture.Platform.WaitForCompletionAsync(jobId, TimeSpan.FromMinutes(1))).State);
    }
}
