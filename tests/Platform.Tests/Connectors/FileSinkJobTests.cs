using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Functions;
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
        long records, int words, double ratePerSubtask, string output, CheckpointingSettings? checkpointing, long maxPartSizeBytes, int sinkParallelism = 3, RestoreSettings? from = null, HeldAt? held = null)
    {
        var job = new StreamJobBuilder("file-sink-word-count")
        {
            DefaultParallelism = 2,
            Checkpointing = checkpointing,
            RestoreFrom = from,
            RestartStrategy = RestartStrategy.FixedDelayRestart(20, TimeSpan.FromMilliseconds(100)),
        };
        ISourceFunction<string> source = new WordGenerator { Count = records, Words = words, RecordsPerSecondPerSubtask = ratePerSubtask };
        if (held is not null)
        {
            source = new HeldSource<string> { Inner = source, HoldAt = held.Sequence, ReleaseFile = held.ReleaseFile };
        }

        job.AddSource(source, "words").Uid("words")
            .Map(new FailAfterArmed<string>(), "fail-after-armed").Uid("fail-after-armed")
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
        var release = Path.Combine(TestData.NewDirectory("release"), "release");
        var jobId = await fixture.Platform.SubmitAsync(
            WordCount(records, words, 4_000, output, settings, maxPartSizeBytes: 16 * 1024, held: new HeldAt(2_000, release)));

        // The sources wait at sequence 2,000 each (however slow the machine) while checkpoints go on; output becomes
        // visible as they complete, not only at the end.
        await WaitForCompletedCheckpoints(jobId, 2);
        await Hosting.Poll.UntilAsync(() => FileSink.ReadCommittedLines(output).Any(), Timeout, () => $"nothing was committed in {output}");
        // The failure comes 3,000 records after the release, with several checkpoints' and an open file's output behind it.
        FailAfterArmed<string>.Arm(jobId, 3_000);
        await File.WriteAllTextAsync(release, "");
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

/// <summary>Where a test's sources wait until a file exists.</summary>
public sealed record HeldAt(long Sequence, string ReleaseFile);

/// <summary>Passes records through, and throws once, on the n-th record after <see cref="Arm"/> (counted over all subtasks).</summary>
[GenerateSerializer]
public sealed class FailAfterArmed<T> : IMapFunction<T, T>, IRichFunction
{
    private static readonly ConcurrentDictionary<string, StrongBox<int>> Countdowns = new();

    [NonSerialized] private string? _jobId;

    public static void Arm(string jobId, int records) => Countdowns[jobId] = new StrongBox<int>(records);

    public void Open(IRuntimeContext context) => _jobId = context.JobId;

    public void Close()
    {
    }

    public T Map(T value) => Countdowns.TryGetValue(_jobId!, out var left) && Interlocked.Decrement(ref left.Value) == 0
        ? throw new InvalidOperationException("injected failure")
        : value;
}
