using Platform.Connectors;
using Platform.Functions;
using Platform.Graph;
using Platform.Runtime;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.EventTime;

/// <summary>
/// Watermarks generated after sources travel in-band through a keyed exchange on a real cluster: per subtask they only
/// advance, never overtake a record, combine over the inputs as a minimum, and an idle input holds them back unless its
/// strategy declares idleness.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class WatermarkPropagationTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task Watermarks_advance_through_a_keyed_exchange_and_never_overtake_a_record()
    {
        const long records = 20_000;
        var job = new StreamJobBuilder("watermark-propagation") { DefaultParallelism = 2, AutoWatermarkInterval = TimeSpan.FromMilliseconds(10) };
        ScrambledIntoTheWatermarkRecorder(job.AddSource(new SequenceSource { Count = records, RecordsPerSecondPerSubtask = 10_000 }, "sequence").Uid("sequence"));

        var jobId = await fixture.Platform.SubmitAsync(job);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        var observed = await fixture.Platform.GetCollectedAsync<Observed>(jobId, "collect");

        // Every record once, each seen before the watermark passed it (bounded out-of-orderness 8 > the scramble's 6).
        Assert.Equal(Enumerable.Range(0, (int)records).Select(i => (long)i), observed.Select(o => o.Value).Order());
        var late = observed.Where(o => o.Watermark >= o.Value).Take(5).ToList();
        Assert.True(late.Count == 0, $"records reached the keyed operator behind its watermark: {string.Join(", ", late)}");

        // Per subtask the watermark only grows, and it did advance (both sources run for about a second).
        foreach (var subtask in observed.GroupBy(o => o.Subtask))
        {
            var seen = subtask.OrderBy(o => o.Arrival).Select(o => o.Watermark).ToList();
            Assert.True(seen.Zip(seen.Skip(1)).All(p => p.First <= p.Second), $"subtask {subtask.Key}'s watermark went back");
            Assert.True(seen[^1] > records / 2, $"subtask {subtask.Key}'s watermark reached only {seen[^1]}");
        }
    }

    [Fact]
    public async Task After_a_restore_from_a_checkpoint_watermarks_start_again_and_still_never_pass_a_record()
    {
        const long records = 20_000;
        var settings = new Platform.Checkpointing.CheckpointingSettings
        {
            Storage = Platform.Checkpointing.CheckpointStorageKind.FileSystem,
            Directory = TestData.NewDirectory("checkpoints"),
            Interval = TimeSpan.FromHours(1),
        };
        var job = new StreamJobBuilder("watermark-restore")
        {
            DefaultParallelism = 2,
            AutoWatermarkInterval = TimeSpan.FromMilliseconds(10),
            Checkpointing = settings,
            RestartStrategy = Platform.Checkpointing.RestartStrategy.FixedDelayRestart(3, TimeSpan.FromMilliseconds(100)),
        };
        ScrambledIntoTheWatermarkRecorder(job.AddSource(new SequenceSource { Count = records, RecordsPerSecondPerSubtask = 4_000 }, "sequence").Uid("sequence")
            .Map(new FailOnDemand<long>(), "fail-on-demand").Uid("fail-on-demand"));

        var jobId = await fixture.Platform.SubmitAsync(job);
        var checkpoint = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
        Assert.Equal(Platform.Checkpointing.CheckpointStatus.Completed, checkpoint.Status);
        FailureSwitch.Arm(jobId);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        var observed = await fixture.Platform.GetCollectedAsync<Observed>(jobId, "collect");

        // Every record (the collect sink is at-least-once: records after the checkpoint come again), none behind the
        // watermark in either attempt; in the restored attempt the watermark starts from nothing and advances again.
        Assert.Equal(Enumerable.Range(0, (int)records).Select(i => (long)i), observed.Select(o => o.Value).Distinct().Order());
        Assert.DoesNotContain(observed, o => o.Watermark >= o.Value);
        var restored = observed.Where(o => o.Attempt > 1).ToList();
        Assert.NotEmpty(restored);
        foreach (var run in observed.GroupBy(o => (o.Attempt, o.Subtask)))
        {
            var seen = run.OrderBy(o => o.Arrival).Select(o => o.Watermark).ToList();
            Assert.True(seen.Zip(seen.Skip(1)).All(p => p.First <= p.Second), $"attempt {run.Key.Attempt} subtask {run.Key.Subtask}: the watermark went back");
        }

        Assert.True(restored.Max(o => o.Watermark) > records / 2, $"the restored attempt's watermark reached only {restored.Max(o => o.Watermark)}");
    }

    [Fact]
    public async Task An_idle_source_subtask_holds_the_watermark_back_unless_its_strategy_declares_idleness()
    {
        var held = await RunWithOneIdleSourceSubtaskAsync(idleness: null);
        Assert.All(held, o => Assert.Equal(long.MinValue, o.Watermark));

        var advanced = await RunWithOneIdleSourceSubtaskAsync(idleness: TimeSpan.FromMilliseconds(100));
        Assert.Contains(advanced, o => o.Watermark > 1_000);
        Assert.DoesNotContain(advanced, o => o.Watermark >= o.Value);
    }

    [Fact]
    public async Task A_two_input_operator_holds_its_watermark_at_the_slower_input()
    {
        const long fast = 10_000, slow = 100;
        var job = new StreamJobBuilder("two-input-watermark") { DefaultParallelism = 2, AutoWatermarkInterval = TimeSpan.FromMilliseconds(10) };
        var strategy = WatermarkStrategy<long>.ForMonotonousTimestamps().WithTimestampAssigner(new ValueIsTimestamp());
        var first = job.AddSource(new SequenceSource { Count = fast, RecordsPerSecondPerSubtask = 5_000 }, "fast").Uid("fast")
            .AssignTimestampsAndWatermarks(strategy).Uid("fast-timestamps")
            .KeyBy(new ModuloKey());
        // The second input emits 0..99 at once and then nothing, without ending: its watermark stops at 98.
        var second = job.AddSource(new OnlyFirstSubtaskEmits { Count = slow, RecordsPerSecond = 1_000_000 }, "slow").Uid("slow").SetParallelism(1)
            .AssignTimestampsAndWatermarks(strategy).Uid("slow-timestamps").SetParallelism(1)
            .KeyBy(new ModuloKey());
        first.Connect(second)
            .Process(new RecordWatermarkOfTwo(), "two-inputs").Uid("two-inputs")
            .SinkTo(new CollectSink<Observed>(), "collect").Uid("collect");

        var jobId = await fixture.Platform.SubmitAsync(job);
        try
        {
            IReadOnlyList<Observed> observed = [];
            await Hosting.Poll.UntilAsync(
                async () => (observed = await fixture.Platform.GetCollectedAsync<Observed>(jobId, "collect")).Count == fast + slow,
                Timeout,
                () => $"{observed.Count} of {fast + slow} records arrived");

            // The minimum of the inputs: never past the slow input's 98, though the fast one reached 9,999 and ended.
            Assert.All(observed, o => Assert.True(o.Watermark <= slow - 2, $"watermark {o.Watermark} passed the slow input's"));
            Assert.Contains(observed, o => o.Watermark == slow - 2);
        }
        finally
        {
            await fixture.Platform.CancelAsync(jobId);
        }
    }

    [Fact]
    public async Task Each_record_keeps_the_timestamp_its_assigner_gave_it_through_chained_operators_and_an_exchange()
    {
        const long records = 5_000;
        var job = new StreamJobBuilder("record-timestamps") { DefaultParallelism = 2 };
        job.AddSource(new SequenceSource { Count = records }, "sequence").Uid("sequence")
            .AssignTimestampsAndWatermarks(WatermarkStrategy<long>.ForMonotonousTimestamps().WithTimestampAssigner(new TenTimesValue())).Uid("timestamps")
            // A chained operator after the assigner: what it emits for a record inherits the record's timestamp.
            .Map(new Scramble(), "scramble").Uid("scramble")
            .KeyBy(new ModuloKey())
            .Process(new RecordTimestamp(), "record-timestamp").Uid("record-timestamp")
            .SinkTo(new CollectSink<TimestampObserved>(), "collect").Uid("collect");
        var withTimestamps = await RunToEndAsync(job);
        Assert.Equal(records, withTimestamps.Count);
        var wrong = withTimestamps.Where(o => o.Timestamp != (o.Value ^ 6) * 10).Take(5).ToList();
        Assert.True(wrong.Count == 0, $"records arrived with another timestamp than their assigner's: {string.Join(", ", wrong)}");

        // Without event time records carry none (and their batches no timestamps).
        var plain = new StreamJobBuilder("no-timestamps") { DefaultParallelism = 2 };
        plain.AddSource(new SequenceSource { Count = records }, "sequence").Uid("sequence")
            .KeyBy(new ModuloKey())
            .Process(new RecordTimestamp(), "record-timestamp").Uid("record-timestamp")
            .SinkTo(new CollectSink<TimestampObserved>(), "collect").Uid("collect");
        var without = await RunToEndAsync(plain);
        Assert.Equal(records, without.Count);
        Assert.All(without, o => Assert.Null(o.Timestamp));
    }

    /// <summary>
    /// Scrambles the sequence (out of order by at most 6 within a subtask: subtask i emits i, i + 2, ...; x ^ 6 permutes
    /// blocks of 8), assigns timestamps with an out-of-orderness bound of 8, and records each record's watermark after a
    /// keyed exchange into the "collect" sink.
    /// </summary>
    private static void ScrambledIntoTheWatermarkRecorder(DataStream<long> sequence) =>
        sequence
            .Map(new Scramble(), "scramble").Uid("scramble")
            .AssignTimestampsAndWatermarks(WatermarkStrategy<long>.ForBoundedOutOfOrderness(TimeSpan.FromMilliseconds(8)).WithTimestampAssigner(new ValueIsTimestamp()))
            .Uid("timestamps")
            .KeyBy(new ModuloKey())
            .Process(new RecordWatermark(), "record-watermark").Uid("record-watermark")
            .SinkTo(new CollectSink<Observed>(), "collect").Uid("collect");

    private async Task<IReadOnlyList<TimestampObserved>> RunToEndAsync(StreamJobBuilder job)
    {
        var jobId = await fixture.Platform.SubmitAsync(job);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        return await fixture.Platform.GetCollectedAsync<TimestampObserved>(jobId, "collect");
    }

    private async Task<IReadOnlyList<Observed>> RunWithOneIdleSourceSubtaskAsync(TimeSpan? idleness)
    {
        const long records = 6_000;
        var strategy = WatermarkStrategy<long>.ForMonotonousTimestamps().WithTimestampAssigner(new ValueIsTimestamp());
        if (idleness is { } timeout)
        {
            strategy = strategy.WithIdleness(timeout);
        }

        var job = new StreamJobBuilder("watermark-idleness") { DefaultParallelism = 2, AutoWatermarkInterval = TimeSpan.FromMilliseconds(10) };
        job.AddSource(new OnlyFirstSubtaskEmits { Count = records, RecordsPerSecond = 3_000 }, "first-subtask-only").Uid("first-subtask-only")
            .AssignTimestampsAndWatermarks(strategy).Uid("timestamps")
            .KeyBy(new ModuloKey())
            .Process(new RecordWatermark(), "record-watermark").Uid("record-watermark")
            .SinkTo(new CollectSink<Observed>(), "collect").Uid("collect");

        // The idle subtask never ends, so the job runs until every record arrived; then it is cancelled.
        var jobId = await fixture.Platform.SubmitAsync(job);
        try
        {
            IReadOnlyList<Observed> observed = [];
            await Hosting.Poll.UntilAsync(
                async () => (observed = await fixture.Platform.GetCollectedAsync<Observed>(jobId, "collect")).Count == records,
                Timeout,
                () => $"{observed.Count} of {records} records arrived");
            return observed;
        }
        finally
        {
            await fixture.Platform.CancelAsync(jobId);
        }
    }
}

/// <summary>What the keyed operator saw: a record, the subtask's watermark when it arrived, and where.</summary>
[GenerateSerializer, Immutable, Alias("tests.WatermarkObserved")]
public sealed record Observed([property: Id(0)] long Value, [property: Id(1)] long Watermark, [property: Id(2)] int Subtask, [property: Id(3)] long Arrival, [property: Id(4)] int Attempt = 1);

/// <summary>A record and the event time its keyed operator saw for it.</summary>
[GenerateSerializer, Immutable, Alias("tests.TimestampObserved")]
public sealed record TimestampObserved([property: Id(0)] long Value, [property: Id(1)] long? Timestamp);

[GenerateSerializer, Alias("tests.TenTimesValue")]
public sealed class TenTimesValue : ITimestampAssigner<long>
{
    public long ExtractTimestamp(long record) => record * 10;
}

[GenerateSerializer, Alias("tests.RecordTimestamp")]
public sealed class RecordTimestamp : KeyedProcessFunction<long, long, TimestampObserved>
{
    public override void ProcessElement(long value, IKeyedContext<long> context, ICollector<TimestampObserved> output) =>
        output.Collect(new TimestampObserved(value, context.Timestamp));
}

[GenerateSerializer, Alias("tests.Scramble")]
public sealed class Scramble : IMapFunction<long, long>
{
    public long Map(long value) => value ^ 6;
}

[GenerateSerializer, Alias("tests.ValueIsTimestamp")]
public sealed class ValueIsTimestamp : ITimestampAssigner<long>
{
    public long ExtractTimestamp(long record) => record;
}

[GenerateSerializer, Alias("tests.WatermarkModuloKey")]
public sealed class ModuloKey : IKeySelector<long, long>
{
    public long GetKey(long record) => record % 16;
}

/// <summary>Emits each record with the subtask's current watermark and the record's arrival number at the subtask.</summary>
[GenerateSerializer, Alias("tests.RecordWatermark")]
public sealed class RecordWatermark : KeyedProcessFunction<long, long, Observed>
{
    [NonSerialized] private IRuntimeContext? _context;
    [NonSerialized] private long _arrivals;

    public override void Open(IRuntimeContext context) => _context = context;

    public override void ProcessElement(long value, IKeyedContext<long> context, ICollector<Observed> output) =>
        output.Collect(new Observed(value, _context!.CurrentWatermark, _context.SubtaskIndex, _arrivals++, _context.Attempt));
}

/// <summary>Like <see cref="RecordWatermark"/> for a two-input operator.</summary>
[GenerateSerializer, Alias("tests.RecordWatermarkOfTwo")]
public sealed class RecordWatermarkOfTwo : KeyedCoProcessFunction<long, long, long, Observed>
{
    [NonSerialized] private IRuntimeContext? _context;
    [NonSerialized] private long _arrivals;

    public override void Open(IRuntimeContext context) => _context = context;

    public override void ProcessElement1(long value, IKeyedContext<long> context, ICollector<Observed> output) =>
        output.Collect(new Observed(value, _context!.CurrentWatermark, _context.SubtaskIndex, _arrivals++));

    public override void ProcessElement2(long value, IKeyedContext<long> context, ICollector<Observed> output) =>
        output.Collect(new Observed(value, _context!.CurrentWatermark, _context.SubtaskIndex, _arrivals++));
}

/// <summary>An unbounded source whose subtask 0 emits 0, 1, ... up to <see cref="Count"/> and then nothing; the others emit nothing, ever.</summary>
[GenerateSerializer, Alias("tests.OnlyFirstSubtaskEmits")]
public sealed class OnlyFirstSubtaskEmits : ISourceFunction<long>
{
    [Id(0)] public long Count { get; set; }

    [Id(1)] public double RecordsPerSecond { get; set; }

    public bool IsBounded => false;

    public ISourceReader<long> CreateReader(SourceReaderContext context) => new Reader(context.SubtaskIndex == 0 ? Count : 0, RecordsPerSecond, context.StartOffset ?? 0);

    private sealed class Reader(long count, double rate, long start) : ISourceReader<long>
    {
        private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        private readonly long _start = start;

        public long Offset { get; private set; } = start;

        public ReadStatus TryRead(out long record)
        {
            record = Offset;
            if (Offset >= count || (Offset - _start) > _clock.Elapsed.TotalSeconds * rate)
            {
                return ReadStatus.NothingAvailable;
            }

            Offset++;
            return ReadStatus.Record;
        }

        public void Dispose()
        {
        }
    }
}
