using System.Text.Json;
using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Functions;
using Platform.Graph;
using Platform.Runtime;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

/// <summary>A job's poison-record policy (issue 12, point 5): fail naming where the record is, or skip it into a dead-letter output.</summary>
[Collection(ClusterCollection.Name)]
public sealed class PoisonRecordTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    private const long Records = 4_000;

    private static StreamJobBuilder Job(ISourceFunction<long> source, PoisonRecordPolicy? policy) =>
        Job(source, policy, new ThrowOnPoison());

    // Chained: the map runs in the source's subtask; otherwise in a subtask of its own, fed over a channel.
    private static StreamJobBuilder Job(ISourceFunction<long> source, PoisonRecordPolicy? policy, IMapFunction<long, long> map, bool chained = true)
    {
        var job = new StreamJobBuilder("poison-records") { DefaultParallelism = 2, PoisonRecords = policy, RestartStrategy = RestartStrategy.NoRestart };
        var numbers = job.AddSource(source, "numbers").Uid("numbers");
        (chained ? numbers : numbers.Rebalance())
            .Map(map, "parse").Uid("parse")
            .SinkTo(new CollectSink<long>(), "collect").Uid("collect");
        return job;
    }

    private static List<JsonElement> DeadLetters(string directory, string jobId) =>
        [.. Directory.GetFiles(Path.Combine(directory, jobId), "*.jsonl").SelectMany(File.ReadAllLines).Select(l => JsonDocument.Parse(l).RootElement)];

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Records_an_operator_throws_on_are_skipped_into_the_dead_letter_output_and_the_rest_goes_on(bool chained)
    {
        var deadLetters = TestData.NewDirectory("dead-letters");
        var jobId = await fixture.Platform.SubmitAsync(Job(new SequenceSource { Count = Records }, PoisonRecordPolicy.SkipTo(deadLetters), new ThrowOnPoison(), chained));

        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        var poison = Enumerable.Range(0, (int)Records).Select(i => (long)i).Where(ThrowOnPoison.IsPoison).ToList();
        Assert.Equal(Enumerable.Range(0, (int)Records).Select(i => (long)i).Except(poison).Order(), (await fixture.Platform.GetCollectedAsync<long>(jobId, "collect")).Order());
        var letters = DeadLetters(deadLetters, jobId);
        Assert.Equal(poison.Order(), letters.Select(l => long.Parse(l.GetProperty("Record").GetString()!)).Order());
        Assert.All(letters, l =>
        {
            Assert.Equal("parse", l.GetProperty("Operator").GetString());
            Assert.Contains("poison", l.GetProperty("Error").GetString());
            Assert.Equal(typeof(FormatException).FullName, l.GetProperty("ErrorType").GetString());
        });
    }

    [Fact]
    public async Task Records_a_source_cannot_read_are_skipped_with_their_split_and_offset()
    {
        var deadLetters = TestData.NewDirectory("dead-letters");
        var jobId = await fixture.Platform.SubmitAsync(Job(new UnreadableRecordsSource { Count = Records }, PoisonRecordPolicy.SkipTo(deadLetters), new Identity<long>()));

        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        var unreadable = Enumerable.Range(0, (int)Records).Select(i => (long)i).Where(UnreadableRecordsSource.IsUnreadable).ToList();
        Assert.Equal(Enumerable.Range(0, (int)Records).Select(i => (long)i).Except(unreadable).Order(), (await fixture.Platform.GetCollectedAsync<long>(jobId, "collect")).Order());
        var letters = DeadLetters(deadLetters, jobId);
        Assert.Equal(unreadable.Order(), letters.Select(l => long.Parse(l.GetProperty("Offset").GetString()!)).Order());
        Assert.All(letters, l =>
        {
            Assert.Equal("numbers", l.GetProperty("Operator").GetString());
            Assert.StartsWith("split-", l.GetProperty("Split").GetString());
            Assert.StartsWith("garbage-", l.GetProperty("Record").GetString());
        });
    }

    [Fact]
    public async Task By_default_an_unreadable_record_fails_the_job_naming_the_source_split_and_offset()
    {
        var jobId = await fixture.Platform.SubmitAsync(Job(new UnreadableRecordsSource { Count = Records }, policy: null, new Identity<long>()));

        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.Equal(JobState.Failed, status.State);
        var message = status.Failure!.Message;
        Assert.Contains("Source 'numbers'", message);
        Assert.Matches(@"offset \d+ of split 'split-[01]'", message);
        Assert.Contains("PoisonRecordPolicy.SkipTo", message);
    }

    [Fact]
    public async Task Skipping_beyond_the_limit_fails_the_job_and_skip_without_a_dead_letter_directory_is_refused()
    {
        var deadLetters = TestData.NewDirectory("dead-letters");
        var limited = await fixture.Platform.SubmitAsync(Job(new SequenceSource { Count = Records }, PoisonRecordPolicy.SkipTo(deadLetters, maxSkippedPerSubtask: 1), new ThrowOnPoison()));
        var status = await fixture.Platform.WaitForCompletionAsync(limited, Timeout);
        Assert.Equal(JobState.Failed, status.State);
        Assert.Contains("MaxSkippedPerSubtask", status.Failure!.Message);

        var error = await Assert.ThrowsAsync<JobValidationException>(() =>
            fixture.Platform.SubmitAsync(Job(new SequenceSource { Count = Records }, new PoisonRecordPolicy { Action = PoisonRecordAction.Skip })));
        Assert.Contains(error.Problems, p => p.Contains("DeadLetterDirectory is not set"));
    }
}

/// <summary>Throws on every record that <see cref="IsPoison"/> picks, as a parser meeting a bad record would.</summary>
[GenerateSerializer]
public sealed class ThrowOnPoison : IMapFunction<long, long>
{
    public static bool IsPoison(long value) => value % 500 == 7;

    public long Map(long value) => IsPoison(value) ? throw new FormatException($"record {value} is poison") : value;
}

/// <summary>Like <see cref="SequenceSource"/>, but the records <see cref="IsUnreadable"/> picks do not deserialize: the reader moves past them and throws.</summary>
[GenerateSerializer]
public sealed class UnreadableRecordsSource : ISourceFunction<long>
{
    [Id(0)] public long Count { get; set; }

    public bool IsBounded => true;

    public static bool IsUnreadable(long value) => value % 700 == 3;

    public ISourceReader<long> CreateReader(SourceReaderContext context) => new Reader(Count, context);

    private sealed class Reader(long count, SourceReaderContext context) : ISourceReader<long>
    {
        private long _next = context.StartOffset ?? context.SubtaskIndex;

        public long Offset => _next;

        public ReadStatus TryRead(out long record)
        {
            record = 0;
            if (_next >= count)
            {
                return ReadStatus.EndOfInput;
            }

            var value = _next;
            _next += context.Parallelism;
            if (IsUnreadable(value))
            {
                throw new PoisonRecordException($"split-{context.SubtaskIndex}", value.ToString(System.Globalization.CultureInfo.InvariantCulture), $"garbage-{value}", "the bytes are not a number");
            }

            record = value;
            return ReadStatus.Record;
        }

        public void Dispose()
        {
        }
    }
}
