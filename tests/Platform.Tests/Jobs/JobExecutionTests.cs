using Platform.Connectors;
using Platform.Graph;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

[Collection(ClusterCollection.Name)]
public sealed class JobExecutionTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task A_keyed_two_input_co_process_job_enriches_every_event_exactly()
    {
        const int users = 50;
        const long events = 20_000;
        // Profiles for every user but the last five: their events must never be emitted.
        var profiles = Enumerable.Range(0, users - 5)
            .SelectMany(u => new[] { new Profile(u, $"country-{u % 7}", 1), new Profile(u, $"country-{u % 7}-v2", 2) })
            .ToList();

        var jobId = await fixture.Platform.SubmitAsync(EnrichmentJob.Build(events, users, profiles, parallelism: 3));
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        var enriched = await fixture.Platform.GetCollectedAsync<EnrichedEvent>(jobId, EnrichmentJob.CollectSinkUid);

        var expectedEvents = Enumerable.Range(0, (int)events).Where(s => s % users < users - 5).ToList();
        Assert.Equal(expectedEvents.Count, enriched.Count);
        Assert.Equal(expectedEvents.Select(s => (long)s), enriched.Select(e => e.Sequence).Order());
        foreach (var e in enriched)
        {
            Assert.StartsWith($"country-{e.UserId % 7}", e.Country);
            Assert.Equal(e.ProfileVersion == 2 ? $"country-{e.UserId % 7}-v2" : $"country-{e.UserId % 7}", e.Country);
        }

        // The running total per user ends at the sum of that user's amounts: the reducing state saw every event once.
        foreach (var user in enriched.GroupBy(e => e.UserId))
        {
            var expectedTotal = expectedEvents.Where(s => s % users == user.Key).Sum(s => (long)(s % 7) + 1);
            Assert.Equal(expectedTotal, user.Max(e => e.TotalAmount));
        }

        var keyed = status.Tasks.Where(t => t.KeyGroupStart is not null).ToList();
        Assert.Equal(3, keyed.Count);
        Assert.Equal(ClusterFixture.Silos, keyed.Select(t => t.Silo).Distinct().Count());
    }

    [Fact]
    public async Task A_subtask_is_initializing_until_its_operators_are_open_and_running_after()
    {
        var gate = OpenGate.Create();
        var job = new StreamJobBuilder("gated-open") { DefaultParallelism = 2 };
        job.AddSource(new SequenceSource { Count = 10_000 }, "numbers")
            .KeyBy(new ModuloKey { Modulo = 10 })
            .Process(new GatedSumPerKey { Gate = gate }, "gated sum").Uid("gated-sum")
            .SinkTo(new DiscardingSink<KeyValuePair<long, long>>(), "discard");
        var jobId = await fixture.Platform.SubmitAsync(job);
        try
        {
            // The keyed subtasks are held in Open: the job runs, but they are still initializing.
            var deadline = DateTime.UtcNow + Timeout;
            JobStatusInfo status;
            while (true)
            {
                status = await fixture.Platform.GetStatusAsync(jobId);
                if (status.State == JobState.Running && status.Tasks.Where(t => t.TaskName.Contains("gated sum", StringComparison.Ordinal)).All(t => t.State == TaskState.Initializing))
                {
                    break;
                }

                Assert.True(DateTime.UtcNow < deadline, $"the gated subtasks never showed as initializing: {string.Join(", ", status.Tasks.Select(t => $"{t.TaskName}[{t.SubtaskIndex}] {t.State}"))}");
                await Task.Delay(50);
            }

            Assert.Equal(2, status.Tasks.Count(t => t.TaskName.Contains("gated sum", StringComparison.Ordinal)));
        }
        finally
        {
            OpenGate.Release(gate);
        }

        var running = await fixture.Platform.WaitUntilRunningAsync(jobId, timeout: Timeout);
        Assert.All(running.Tasks, t => Assert.NotEqual(TaskState.Initializing, t.State));
        Assert.Equal(JobState.Finished, (await fixture.Platform.WaitForCompletionAsync(jobId, Timeout)).State);
    }

    [Fact]
    public async Task An_operator_that_throws_fails_the_job_with_its_name_and_message()
    {
        var job = new StreamJobBuilder("failing") { DefaultParallelism = 2 };
        job.AddSource(new SequenceSource { Count = 100_000 }, "numbers")
            .Map(new ThrowingMap { FailOn = 4_321 }, "explode").Uid("explode")
            .KeyBy(new LongKey())
            .Process(new SumPerKey(), "sum")
            .SinkTo(new DiscardingSink<KeyValuePair<long, long>>(), "discard");

        var jobId = await fixture.Platform.SubmitAsync(job);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.Equal(JobState.Failed, status.State);
        Assert.NotNull(status.Failure);
        Assert.Equal("explode", status.Failure!.OperatorName);
        Assert.Equal("boom at record 4321", status.Failure.Message);
        Assert.Equal(typeof(InvalidOperationException).FullName, status.Failure.ExceptionType);
        Assert.Contains("Operator 'explode'", status.Failure.Describe());
        Assert.Contains(status.Tasks, t => t.State == TaskState.Failed);
    }

    [Fact]
    public async Task A_failing_chained_operator_is_named_not_its_upstream()
    {
        var job = new StreamJobBuilder("failing-in-chain");
        job.AddSource(new SequenceSource { Count = 1_000 }, "numbers")
            .Filter(new EvenOnly(), "even")
            .Map(new ThrowingMap { FailOn = 500 }, "explode-after-filter")
            .SinkTo(new DiscardingSink<long>(), "discard");

        var jobId = await fixture.Platform.SubmitAsync(job);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.Equal(JobState.Failed, status.State);
        Assert.Equal("explode-after-filter", status.Failure!.OperatorName);
        // Source, filter, map and sink are chained into one task.
        Assert.Single(status.Tasks);
    }

    [Fact]
    public async Task A_running_job_can_be_cancelled_and_is_listed()
    {
        var job = new StreamJobBuilder("to-cancel") { DefaultParallelism = 2 };
        job.AddSource(new SequenceSource(), "unbounded numbers")
            .Map(new SlowMap { MillisecondsPerRecord = 1 }, "slow")
            .SinkTo(new DiscardingSink<long>(), "discard");

        var jobId = await fixture.Platform.SubmitAsync(job);
        var running = await fixture.Platform.GetStatusAsync(jobId);
        Assert.Equal(JobState.Running, running.State);
        Assert.Contains(await fixture.Platform.ListJobsAsync(), j => j.JobId == jobId && j.State == JobState.Running);

        await fixture.Platform.CancelAsync(jobId);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.Equal(JobState.Canceled, status.State);
        Assert.All(status.Tasks, t => Assert.Equal(TaskState.Canceled, t.State));
        Assert.Contains(await fixture.Platform.ListJobsAsync(), j => j.JobId == jobId && j.State == JobState.Canceled);
    }

    [Fact]
    public async Task Union_rebalance_filter_and_text_file_sink_deliver_every_record_once()
    {
        var output = TestData.NewDirectory("union-output");
        var job = new StreamJobBuilder("union") { DefaultParallelism = 3 };
        var first = job.AddSource(new CollectionSource<long>(Enumerable.Range(0, 5_000).Select(i => (long)i)), "first").SetParallelism(2);
        var second = job.AddSource(new SequenceSource { Count = 5_000 }, "second").SetParallelism(1)
            .Map(new AddOffset { Offset = 5_000 }, "offset").SetParallelism(1);
        var evens = first.Union(second).Rebalance()
            .Filter(new EvenOnly(), "even").SetParallelism(3);
        evens.SinkTo(new CollectSink<long>(), "collect").Uid("collect").SetParallelism(2);
        evens.Map(new ToText(), "to-text").SetParallelism(3)
            .SinkTo(new TextFileSink<string>(output), "write").SetParallelism(3);

        var jobId = await fixture.Platform.SubmitAsync(job);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        var expected = Enumerable.Range(0, 10_000).Where(i => i % 2 == 0).Select(i => (long)i).ToList();
        Assert.Equal(expected, (await fixture.Platform.GetCollectedAsync<long>(jobId, "collect")).Order());
        var written = Enumerable.Range(0, 3)
            .SelectMany(i => File.ReadAllLines(TextFileSink<string>.PartFile(output, i)))
            .Select(long.Parse)
            .Order();
        Assert.Equal(expected, written);
    }
}

[GenerateSerializer]
public sealed class AddOffset : Platform.Functions.IMapFunction<long, long>
{
    [Id(0)] public long Offset { get; set; }

    public long Map(long value) => value + Offset;
}
