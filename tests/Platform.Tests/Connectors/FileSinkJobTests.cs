using System.Globalization;
using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Graph;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Connectors;

/// <summary>The file sink in real jobs on the test cluster: what it commits is exactly the job's output, across failures.</summary>
[Collection(ClusterCollection.Name)]
public sealed class FileSinkJobTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    /// <summary>Every running count a word-count job emits, once each: (w, 1), (w, 2) ... (w, its true count).</summary>
    private static List<string> ExpectedLines(long records, int words) =>
        CheckpointTestJobs.ExpectedCounts(records, words)
            .SelectMany(p => Enumerable.Range(1, (int)p.Value).Select(n => $"{p.Key}\t{n.ToString(CultureInfo.InvariantCulture)}"))
            .Order(StringComparer.Ordinal)
            .ToList();

    private static StreamJobBuilder WordCount(
        long records, int words, double ratePerSubtask, string output, CheckpointingSettings? checkpointing, long maxPartSizeBytes, int sinkParallelism = 3, RestoreSettings? from = null)
    {
        var job = new StreamJobBuilder("file-sink-word-count")
        {
            DefaultParallelism = 2,
            Checkpointing = checkpointing,
            RestoreFrom = from,
            RestartStrategy = RestartStrategy.FixedDelayRestart(20, TimeSpan.FromMilliseconds(100)),
        };
        job.AddSource(new WordGenerator { Count = records, Words = words, RecordsPerSecondPerSubtask = ratePerSubtask }, "words").Uid("words")
            .Map(new FailOnDemand<string>(), "fail-on-demand").Uid("fail-on-demand")
            .KeyBy(new WordKey())
            .Process(new CountWords(), "count").Uid("count")
            .SinkTo(new FileSink<WordCount>(output) { MaxPartSizeBytes = maxPartSizeBytes }, "write-counts").Uid("write-counts").SetParallelism(sinkParallelism);
        return job;
    }

    private async Task WaitForCompletedCheckpoints(string jobId, long count)
    {
        await Hosting.Poll.UntilAsync(
            async () => (await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).Completed >= count,
            Timeout,
            () => $"{count} checkpoints of job {jobId} did not complete");
    }

    [Fact]
    public async Task A_job_that_fails_and_restarts_commits_every_record_exactly_once()
    {
        const long records = 30_000;
        const int words = 40;
        var output = TestData.NewDirectory("file-sink-job");
        var settings = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(100), Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("checkpoints") };
        var jobId = await fixture.Platform.SubmitAsync(WordCount(records, words, 4_000, output, settings, maxPartSizeBytes: 16 * 1024));

        await WaitForCompletedCheckpoints(jobId, 2);
        // Output becomes visible while the job runs, as its checkpoints complete, not only at its end.
        await Hosting.Poll.UntilAsync(() => FileSink.ReadCommittedLines(output).Any(), Timeout, () => $"nothing was committed in {output}");
        FailureSwitch.Arm(jobId);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(1, status.Restarts);
        // A record replayed after the restore would appear twice; one lost with the failed attempt, not at all.
        Assert.Equal(ExpectedLines(records, words), FileSink.ReadCommittedLines(output).Order(StringComparer.Ordinal));
        Assert.Empty(Directory.GetFiles(output, ".*"));
    }

    [Fact]
    public async Task Stop_with_savepoint_commits_and_a_resumed_job_at_another_sink_parallelism_continues_exactly_once()
    {
        const long records = 60_000;
        const int words = 40;
        var output = TestData.NewDirectory("file-sink-job");
        var settings = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(200), Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("checkpoints") };
        var first = await fixture.Platform.SubmitAsync(WordCount(records, words, 2_000, output, settings, maxPartSizeBytes: 16 * 1024, sinkParallelism: 3));
        await WaitForCompletedCheckpoints(first, 2);

        var savepoint = await fixture.Platform.StopWithSavepointAsync(first, timeout: Timeout);
        var stopped = await fixture.Platform.WaitForCompletionAsync(first, Timeout);
        Assert.Equal(JobState.Finished, stopped.State);
        // The stop committed everything up to the savepoint: nothing is left pending or in progress.
        var committedAtTheStop = FileSink.ReadCommittedLines(output).Count();
        Assert.InRange(committedAtTheStop, 1, records - 1);
        Assert.Empty(Directory.GetFiles(output, ".*"));

        // A new job (a new id, attempts from 0 again) with two sink subtasks instead of three, into the same directory.
        var second = await fixture.Platform.SubmitAsync(
            WordCount(records, words, 0, output, settings, maxPartSizeBytes: 16 * 1024, sinkParallelism: 2, from: new RestoreSettings { Path = savepoint.Path }));
        var status = await fixture.Platform.WaitForCompletionAsync(second, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(ExpectedLines(records, words), FileSink.ReadCommittedLines(output).Order(StringComparer.Ordinal));
        Assert.Empty(Directory.GetFiles(output, ".*"));
    }

    [Fact]
    public async Task Without_checkpointing_a_bounded_job_commits_its_output_when_it_finishes()
    {
        const long records = 5_000;
        const int words = 20;
        var output = TestData.NewDirectory("file-sink-job");

        var jobId = await fixture.Platform.SubmitAsync(WordCount(records, words, 0, output, checkpointing: null, maxPartSizeBytes: 128L * 1024 * 1024));
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(ExpectedLines(records, words), FileSink.ReadCommittedLines(output).Order(StringComparer.Ordinal));
        Assert.Empty(Directory.GetFiles(output, ".*"));
    }
}
