using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Functions;
using Platform.Graph;
using Platform.Runtime;
using Platform.State;
using Platform.Tests.Infrastructure;
using Platform.Windowing;

namespace Platform.Tests.EventTime;

/// <summary>
/// Keyed windows on a real cluster, checked against results computed here from the input: tumbling and sliding
/// event-time windows with reduce, aggregate and process window functions, allowed lateness, and a restore from a
/// checkpoint mid-window that gives exactly the uninterrupted result.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class WindowTests(ClusterFixture fixture)
{
    private const int Keys = 4;
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    /// <summary>0, 1, ... scrambled within blocks of 8 (x ^ 6), timestamp = value, watermarks 8 ms behind: nothing is late.</summary>
    private static KeyedStream<KeyedValue, long> Input(StreamJobBuilder job, long records, double rate = 20_000, bool failOnDemand = false)
    {
        var sequence = job.AddSource(new SequenceSource { Count = records, RecordsPerSecondPerSubtask = rate }, "sequence").Uid("sequence")
            .Map(new Scramble(), "scramble").Uid("scramble");
        if (failOnDemand)
        {
            sequence = sequence.Map(new FailOnDemand<long>(), "fail-on-demand").Uid("fail-on-demand");
        }

        return sequence
            .Map(new ToKeyedValue(), "keyed-value").Uid("keyed-value")
            .AssignTimestampsAndWatermarks(WatermarkStrategy<KeyedValue>.ForBoundedOutOfOrderness(TimeSpan.FromMilliseconds(8)).WithTimestampAssigner(new KeyedValueTimestamp()))
            .Uid("timestamps")
            .KeyBy(new KeyedValueKey());
    }

    /// <summary>0 .. 1999 in order on one key (timestamp = value, monotonous watermarks), then <paramref name="late"/> once the watermark reached 1998.</summary>
    private static KeyedStream<KeyedValue, long> InOrderThenLateKeyed(StreamJobBuilder job, List<long> late) =>
        job.AddSource(new InOrderThenLate { Count = 2_000, Late = late }, "in-order-then-late").Uid("source")
            .Map(new ToSingleKey(), "single-key").Uid("single-key")
            .AssignTimestampsAndWatermarks(WatermarkStrategy<KeyedValue>.ForMonotonousTimestamps().WithTimestampAssigner(new KeyedValueTimestamp())).Uid("timestamps")
            .KeyBy(new KeyedValueKey());

    /// <summary>The windows of <paramref name="size"/> every <paramref name="slide"/> over the values 0 .. records - 1 (timestamp = value), keyed by value mod 4.</summary>
    internal static List<WindowSum> Expected(long records, long size, long slide) =>
        [.. Enumerable.Range(0, (int)records)
            .SelectMany(v => Starts(v, size, slide).Select(start => (Key: v % Keys, Start: start, Value: (long)v)))
            .GroupBy(x => (x.Key, x.Start))
            .Select(g => new WindowSum(g.Key.Key, g.Key.Start, g.Key.Start + size, g.Sum(x => x.Value), g.Count()))
            .Order()];

    private static IEnumerable<long> Starts(long timestamp, long size, long slide)
    {
        for (var start = timestamp - timestamp % slide; start > timestamp - size; start -= slide)
        {
            yield return start;
        }
    }

    private async Task<IReadOnlyList<T>> RunAsync<T>(StreamJobBuilder job)
    {
        var jobId = await fixture.Platform.SubmitAsync(job);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        return await fixture.Platform.GetCollectedAsync<T>(jobId, "collect");
    }

    [Fact]
    public async Task Tumbling_event_time_windows_reduce_and_aggregate_each_window_once_exactly()
    {
        const long records = 20_000;
        var job = new StreamJobBuilder("tumbling-windows") { DefaultParallelism = 2, AutoWatermarkInterval = TimeSpan.FromMilliseconds(10) };
        var windows = Input(job, records).Window(TumblingWindows.OfEventTime(TimeSpan.FromMilliseconds(100)));
        windows.Aggregate(new SumAndCount(), new LabelWindow(), "sum-per-window").Uid("sum-per-window")
            .SinkTo(new CollectSink<WindowSum>(), "collect").Uid("collect");
        windows.Reduce(new SumValues(), "reduce-per-window").Uid("reduce-per-window")
            .SinkTo(new CollectSink<KeyedValue>(), "reduced").Uid("reduced");

        var jobId = await fixture.Platform.SubmitAsync(job);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");

        var expected = Expected(records, 100, 100);
        var sums = await fixture.Platform.GetCollectedAsync<WindowSum>(jobId, "collect");
        Assert.Equal(expected, sums.Select(s => s with { Watermark = 0 }).Order());
        Assert.All(sums, s => Assert.True(s.Watermark >= s.End - 1, $"window {s.Start}-{s.End} of key {s.Key} fired at watermark {s.Watermark}"));
        Assert.True(sums.Count(s => s.Watermark < long.MaxValue) > sums.Count / 2, "windows fired only at the end of input");

        var reduced = await fixture.Platform.GetCollectedAsync<KeyedValue>(jobId, "reduced");
        Assert.Equal(expected.Select(e => (e.Key, e.Sum)).Order(), reduced.Select(r => (r.Key, r.Value)).Order());
    }

    [Fact]
    public async Task Sliding_event_time_windows_hand_every_record_of_each_window_to_a_process_window_function()
    {
        const long records = 10_000;
        var job = new StreamJobBuilder("sliding-windows") { DefaultParallelism = 2, AutoWatermarkInterval = TimeSpan.FromMilliseconds(10) };
        Input(job, records)
            .Window(SlidingWindows.OfEventTime(TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(30)))
            .Process(new SumAllOfWindow(), "sliding").Uid("sliding")
            .SinkTo(new CollectSink<WindowSum>(), "collect").Uid("collect");

        var sums = await RunAsync<WindowSum>(job);
        Assert.Equal(Expected(records, 100, 30), sums.Select(s => s with { Watermark = 0 }).Order());
    }

    [Fact]
    public async Task Session_windows_merge_the_records_closer_than_the_gap_and_split_at_longer_gaps()
    {
        const long records = 12_000;
        var job = new StreamJobBuilder("session-windows") { DefaultParallelism = 2, AutoWatermarkInterval = TimeSpan.FromMilliseconds(10) };
        // Per key one record every 4 ms, in blocks of 200 ms with 100 ms gaps between: a session per key and block.
        // Records arrive out of order (scrambled within 8 ms), so sessions form in pieces and merge.
        job.AddSource(new SequenceSource { Count = records, RecordsPerSecondPerSubtask = 20_000 }, "sequence").Uid("sequence")
            .Map(new Scramble(), "scramble").Uid("scramble")
            .Filter(new SkipEveryThirdHundred(), "gaps").Uid("gaps")
            .Map(new ToKeyedValue(), "keyed-value").Uid("keyed-value")
            .AssignTimestampsAndWatermarks(WatermarkStrategy<KeyedValue>.ForBoundedOutOfOrderness(TimeSpan.FromMilliseconds(8)).WithTimestampAssigner(new KeyedValueTimestamp()))
            .Uid("timestamps")
            .KeyBy(new KeyedValueKey())
            .Window(SessionWindows.WithGap(TimeSpan.FromMilliseconds(50)))
            .Aggregate(new SumAndCount(), new LabelWindow(), "sessions").Uid("sessions")
            .SinkTo(new CollectSink<WindowSum>(), "collect").Uid("collect");

        var sessions = await RunAsync<WindowSum>(job);
        var expected = Enumerable.Range(0, (int)records)
            .Where(v => new SkipEveryThirdHundred().Filter(v))
            .GroupBy(v => (Key: (long)(v % Keys), Block: v / 300))
            .Select(g => new WindowSum(g.Key.Key, g.Min(), g.Max() + 50L, g.Sum(v => (long)v), g.Count()))
            .Order();
        Assert.Equal(expected, sessions.Select(s => s with { Watermark = 0 }).Order());
    }

    [Fact]
    public async Task A_late_record_within_the_allowed_lateness_fires_its_window_again_and_a_later_one_is_dropped()
    {
        var job = new StreamJobBuilder("late-windows") { DefaultParallelism = 1, AutoWatermarkInterval = TimeSpan.FromMilliseconds(10) };
        // 0..1999 in order, then (after the watermark reached 1998) 1850, within the lateness of its window
        // [1800, 1900), and 1500, whose window [1500, 1600) was cleaned up at 1799.
        InOrderThenLateKeyed(job, [1_850, 1_500])
            .Window(TumblingWindows.OfEventTime(TimeSpan.FromMilliseconds(100)))
            .AllowedLateness(TimeSpan.FromMilliseconds(200))
            .Aggregate(new SumAndCount(), new LabelWindow(), "late").Uid("late")
            .SinkTo(new CollectSink<WindowSum>(), "collect").Uid("collect");

        var fired = await RunAsync<WindowSum>(job);
        var onTime = Enumerable.Range(0, 20)
            .Select(w => new WindowSum(0, w * 100, w * 100 + 100, Enumerable.Range(w * 100, 100).Sum(v => (long)v), 100))
            .ToList();
        var refired = onTime[18] with { Sum = onTime[18].Sum + 1_850, Count = 101 };
        Assert.Equal(onTime.Append(refired).Order(), fired.Select(f => f with { Watermark = 0 }).Order());
    }

    [Fact]
    public async Task A_record_later_than_the_allowed_lateness_goes_to_the_late_data_side_output_once_and_none_is_counted_dropped()
    {
        using var telemetry = new TelemetryRecorder();
        var job = new StreamJobBuilder("late-side-output") { DefaultParallelism = 1, AutoWatermarkInterval = TimeSpan.FromMilliseconds(10) };
        var lateData = new OutputTag<KeyedValue>("late-data");

        // As above: 1850 is late but within the lateness of [1800, 1900); 1500 is beyond the lateness of its window.
        // Sliding windows of 200 every 100: 1500 belongs to [1400, 1600) and [1500, 1700), both past their lateness.
        var windows = InOrderThenLateKeyed(job, [1_850, 1_500])
            .Window(SlidingWindows.OfEventTime(TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(100)))
            .AllowedLateness(TimeSpan.FromMilliseconds(150))
            .SideOutputLateData(lateData)
            .Aggregate(new SumAndCount(), new LabelWindow(), "sliding").Uid("sliding");
        windows.SinkTo(new CollectSink<WindowSum>(), "collect").Uid("collect");
        windows.GetSideOutput(lateData).SinkTo(new CollectSink<KeyedValue>(), "late").Uid("late");

        var jobId = await fixture.Platform.SubmitAsync(job);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");

        // The window operator keeps its uid: its state would restore from a savepoint taken before the side output.
        Assert.Contains(status.Tasks, t => t.OperatorUids.Contains("sliding"));
        Assert.Equal([new KeyedValue(0, 1_500)], await fixture.Platform.GetCollectedAsync<KeyedValue>(jobId, "late"));

        // 1850 refired [1700, 1900), within its lateness, and joined [1800, 2000) before that one fired at the end.
        var fired = await fixture.Platform.GetCollectedAsync<WindowSum>(jobId, "collect");
        var firstFirings = Enumerable.Range(-1, 21)
            .Select(w => (Start: w * 100L, Values: Enumerable.Range(Math.Max(0, w * 100), Math.Min(2_000, w * 100 + 200) - Math.Max(0, w * 100))))
            .Select(w => new WindowSum(0, w.Start, w.Start + 200, w.Values.Sum(v => (long)v), w.Values.Count()))
            .Select(w => w.Start == 1_800 ? w with { Sum = w.Sum + 1_850, Count = w.Count + 1 } : w)
            .ToList();
        var w1700 = firstFirings.Single(w => w.Start == 1_700);
        var refired = w1700 with { Sum = w1700.Sum + 1_850, Count = w1700.Count + 1 };
        Assert.Equal(firstFirings.Append(refired).Order(), fired.Select(f => f with { Watermark = 0 }).Order());
        Assert.Equal(0, telemetry.Of("platform.window.late_records_dropped", jobId).Sum(m => m.Value));
    }

    [Fact]
    public void Asking_for_a_side_output_that_was_not_declared_or_with_another_type_is_refused_naming_it()
    {
        var job = new StreamJobBuilder("side-outputs");
        var values = job.AddSource(new SequenceSource { Count = 10 }, "sequence").Map(new ToKeyedValue(), "keyed-value");
        var undeclared = Assert.Throws<InvalidOperationException>(() => values.GetSideOutput(new OutputTag<KeyedValue>("late-data")));
        Assert.Contains("no side output 'late-data'", undeclared.Message, StringComparison.Ordinal);
        Assert.Contains("SideOutputLateData(tag)", undeclared.Message, StringComparison.Ordinal);

        var windows = values.KeyBy(new KeyedValueKey()).Window(TumblingWindows.OfEventTime(TimeSpan.FromSeconds(1)))
            .SideOutputLateData(new OutputTag<KeyedValue>("late-data"))
            .Aggregate(new SumAndCount(), new LabelWindow(), "sum");
        var wrongType = Assert.Throws<ArgumentException>(() => windows.GetSideOutput(new OutputTag<long>("late-data")));
        Assert.Contains("carries KeyedValue records, not Int64", wrongType.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => windows.GetSideOutput(new OutputTag<KeyedValue>("too-late")));

        var processingTime = values.KeyBy(new KeyedValueKey()).Window(TumblingWindows.OfProcessingTime(TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentException>(() => processingTime.SideOutputLateData(new OutputTag<KeyedValue>("late-data")));
    }

    [Fact]
    public async Task A_record_later_than_the_allowed_lateness_without_a_side_output_is_counted_in_the_late_records_dropped_metric()
    {
        using var telemetry = new TelemetryRecorder();
        var job = new StreamJobBuilder("late-dropped") { DefaultParallelism = 1, AutoWatermarkInterval = TimeSpan.FromMilliseconds(10) };
        InOrderThenLateKeyed(job, [1_500, 1_200, 1_850])
            .Window(TumblingWindows.OfEventTime(TimeSpan.FromMilliseconds(100)))
            .AllowedLateness(TimeSpan.FromMilliseconds(200))
            .Aggregate(new SumAndCount(), new LabelWindow(), "late").Uid("late")
            .SinkTo(new CollectSink<WindowSum>(), "collect").Uid("collect");

        var jobId = await fixture.Platform.SubmitAsync(job);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");

        // 1500 and 1200 are beyond the lateness; 1850 is within it. A subtask publishes its metrics before it finishes.
        Assert.Equal(2, telemetry.Of("platform.window.late_records_dropped", jobId).Sum(m => m.Value));
    }

    [Fact]
    public async Task Processing_time_windows_fire_by_the_clock_with_every_record_in_one_window()
    {
        const long records = 64;
        var job = new StreamJobBuilder("processing-time-windows") { DefaultParallelism = 2 };
        // 64 records at once, then nothing without ending: only the clock closes the windows.
        job.AddSource(new OnlyFirstSubtaskEmits { Count = records, RecordsPerSecond = 1_000_000 }, "burst").Uid("burst")
            .Map(new ToKeyedValue(), "keyed-value").Uid("keyed-value")
            .KeyBy(new KeyedValueKey())
            .Window(TumblingWindows.OfProcessingTime(TimeSpan.FromMilliseconds(200)))
            .Aggregate(new SumAndCount(), new LabelWindow(), "per-200ms").Uid("per-200ms")
            .SinkTo(new CollectSink<WindowSum>(), "collect").Uid("collect");

        var jobId = await fixture.Platform.SubmitAsync(job);
        try
        {
            IReadOnlyList<WindowSum> fired = [];
            await Hosting.Poll.UntilAsync(
                async () => (fired = await fixture.Platform.GetCollectedAsync<WindowSum>(jobId, "collect")).Sum(f => f.Count) >= records,
                Timeout,
                () => $"windows fired with {fired.Sum(f => f.Count)} of {records} records");

            // Each key's records went into windows once each, and those windows are 200 ms long.
            Assert.Equal(records, fired.Sum(f => f.Count));
            Assert.Equal(
                Enumerable.Range(0, Keys).Select(k => (long)k).Select(k => (k, Enumerable.Range(0, (int)records).Where(v => v % Keys == k).Sum(v => (long)v))),
                fired.GroupBy(f => f.Key).Select(g => (g.Key, g.Sum(f => f.Sum))).Order());
            Assert.All(fired, f => Assert.Equal(200, f.End - f.Start));
        }
        finally
        {
            await fixture.Platform.CancelAsync(jobId);
        }
    }

    [Theory]
    [InlineData(StateBackendKind.Heap)]
    [InlineData(StateBackendKind.RocksDb)]
    public async Task A_restore_from_a_checkpoint_mid_window_gives_exactly_the_uninterrupted_result(StateBackendKind backend)
    {
        const long records = 16_000;
        var job = new StreamJobBuilder("windows-restored")
        {
            DefaultParallelism = 2,
            StateBackend = backend,
            AutoWatermarkInterval = TimeSpan.FromMilliseconds(10),
            Checkpointing = new CheckpointingSettings { Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("window-checkpoints"), Interval = TimeSpan.FromHours(1) },
            RestartStrategy = RestartStrategy.FixedDelayRestart(3, TimeSpan.FromMilliseconds(100)),
        };
        // Windows of 1 s over 4 s of input: the checkpoint and the failure fall inside windows.
        Input(job, records, rate: 2_000, failOnDemand: true)
            .Window(TumblingWindows.OfEventTime(TimeSpan.FromMilliseconds(1_000)))
            .Aggregate(new SumAndCount(), new LabelWindow(), "sum-per-window").Uid("sum-per-window")
            .SinkTo(new CollectSink<WindowSum>(), "collect").Uid("collect");

        var jobId = await fixture.Platform.SubmitAsync(job);
        Assert.Equal(CheckpointStatus.Completed, (await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout)).Status);
        FailureSwitch.Arm(jobId);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.True(status.Attempt > 1, "the job did not restart");

        // The collect sink is at-least-once: a window that fired after the checkpoint fires again after the restore.
        // Each firing of a window must carry exactly the uninterrupted result: nothing counted twice, nothing lost.
        var fired = await fixture.Platform.GetCollectedAsync<WindowSum>(jobId, "collect");
        var expected = Expected(records, 1_000, 1_000);
        Assert.Equal(expected, fired.Select(f => f with { Watermark = 0 }).Distinct().Order());
    }
}

[GenerateSerializer, Immutable, Alias("tests.KeyedValue")]
public sealed record KeyedValue([property: Id(0)] long Key, [property: Id(1)] long Value);

/// <summary>A window's result: its key and bounds, the sum and count of its values, and the watermark when it fired.</summary>
[GenerateSerializer, Immutable, Alias("tests.WindowSum")]
public sealed record WindowSum([property: Id(0)] long Key, [property: Id(1)] long Start, [property: Id(2)] long End, [property: Id(3)] long Sum, [property: Id(4)] long Count, [property: Id(5)] long Watermark = 0)
    : IComparable<WindowSum>
{
    public int CompareTo(WindowSum? other) =>
        other is null ? 1 : (Key, Start, End, Sum, Count, Watermark).CompareTo((other.Key, other.Start, other.End, other.Sum, other.Count, other.Watermark));
}

[GenerateSerializer, Alias("tests.WithoutWatermark")]
public sealed class WithoutWatermark : IMapFunction<WindowSum, WindowSum>
{
    public WindowSum Map(WindowSum value) => value with { Watermark = 0 };
}

[GenerateSerializer, Alias("tests.ToKeyedValue")]
public sealed class ToKeyedValue : IMapFunction<long, KeyedValue>
{
    public KeyedValue Map(long value) => new(value % 4, value);
}

/// <summary>Drops 200..299, 500..599, ...: gaps of 100 ms in event time.</summary>
[GenerateSerializer, Alias("tests.SkipEveryThirdHundred")]
public sealed class SkipEveryThirdHundred : IFilterFunction<long>
{
    public bool Filter(long value) => value / 100 % 3 != 2;
}

[GenerateSerializer, Alias("tests.ToSingleKey")]
public sealed class ToSingleKey : IMapFunction<long, KeyedValue>
{
    public KeyedValue Map(long value) => new(0, value);
}

[GenerateSerializer, Alias("tests.KeyedValueTimestamp")]
public sealed class KeyedValueTimestamp : ITimestampAssigner<KeyedValue>
{
    public long ExtractTimestamp(KeyedValue record) => record.Value;
}

[GenerateSerializer, Alias("tests.KeyedValueKey")]
public sealed class KeyedValueKey : IKeySelector<KeyedValue, long>
{
    public long GetKey(KeyedValue record) => record.Key;
}

[GenerateSerializer, Alias("tests.SumValues")]
public sealed class SumValues : IReduceFunction<KeyedValue>
{
    public KeyedValue Reduce(KeyedValue accumulated, KeyedValue value) => accumulated with { Value = accumulated.Value + value.Value };
}

[GenerateSerializer, Alias("tests.SumAndCount")]
public sealed class SumAndCount : IAggregateFunction<KeyedValue, (long Sum, long Count), (long Sum, long Count)>
{
    public (long Sum, long Count) CreateAccumulator() => (0, 0);

    public (long Sum, long Count) Add(KeyedValue value, (long Sum, long Count) accumulator) => (accumulator.Sum + value.Value, accumulator.Count + 1);

    public (long Sum, long Count) GetResult((long Sum, long Count) accumulator) => accumulator;

    public (long Sum, long Count) Merge((long Sum, long Count) a, (long Sum, long Count) b) => (a.Sum + b.Sum, a.Count + b.Count);
}

[GenerateSerializer, Alias("tests.LabelWindow")]
public sealed class LabelWindow : ProcessWindowFunction<(long Sum, long Count), WindowSum, long>
{
    public override void Process(long key, IWindowContext context, IReadOnlyList<(long Sum, long Count)> elements, ICollector<WindowSum> output) =>
        output.Collect(new WindowSum(key, context.Window.Start, context.Window.End, elements[0].Sum, elements[0].Count, context.CurrentWatermark));
}

[GenerateSerializer, Alias("tests.SumAllOfWindow")]
public sealed class SumAllOfWindow : ProcessWindowFunction<KeyedValue, WindowSum, long>
{
    public override void Process(long key, IWindowContext context, IReadOnlyList<KeyedValue> elements, ICollector<WindowSum> output) =>
        output.Collect(new WindowSum(key, context.Window.Start, context.Window.End, elements.Sum(e => e.Value), elements.Count, context.CurrentWatermark));
}

/// <summary>
/// Emits 0 .. <see cref="Count"/> - 1, then nothing for at least 50 reads and 250 ms (the task's source loop emits its
/// generator's watermark in that pause, before anything after it), then <see cref="Late"/>, then ends. One subtask.
/// </summary>
[GenerateSerializer, Alias("tests.InOrderThenLate")]
public sealed class InOrderThenLate : ISourceFunction<long>
{
    [Id(0)] public long Count { get; set; }

    [Id(1)] public List<long> Late { get; set; } = [];

    public bool IsBounded => true;

    public ISourceReader<long> CreateReader(SourceReaderContext context) => new Reader(this, context.StartOffset ?? 0);

    private sealed class Reader(InOrderThenLate source, long start) : ISourceReader<long>
    {
        private int _pauseReads;
        private System.Diagnostics.Stopwatch? _pause;

        public long Offset { get; private set; } = start;

        public ReadStatus TryRead(out long record)
        {
            record = 0;
            if (Offset < source.Count)
            {
                record = Offset++;
                return ReadStatus.Record;
            }

            _pause ??= System.Diagnostics.Stopwatch.StartNew();
            if (++_pauseReads < 50 || _pause.ElapsedMilliseconds < 250)
            {
                return ReadStatus.NothingAvailable;
            }

            var late = Offset - source.Count;
            if (late >= source.Late.Count)
            {
                return ReadStatus.EndOfInput;
            }

            record = source.Late[(int)late];
            Offset++;
            return ReadStatus.Record;
        }

        public void Dispose()
        {
        }
    }
}
