using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Functions;
using Platform.Graph;
using Platform.Runtime;
using Platform.State;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.EventTime;

/// <summary>
/// Timers of keyed process functions on a real cluster: event-time timers fire once each, in time order per subtask,
/// when the watermark passes them; processing-time timers fire by the clock; timers are in savepoints, survive a stop
/// without drain unfired, and fire exactly once after a restore at another parallelism, on both backends.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class TimerTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task Event_time_timers_fire_once_each_in_time_order_after_the_watermark_passes_them()
    {
        const long records = 10_000;
        var job = new StreamJobBuilder("event-time-timers") { DefaultParallelism = 2, AutoWatermarkInterval = TimeSpan.FromMilliseconds(10) };
        job.AddSource(new SequenceSource { Count = records, RecordsPerSecondPerSubtask = 10_000 }, "sequence").Uid("sequence")
            .AssignTimestampsAndWatermarks(WatermarkStrategy<long>.ForMonotonousTimestamps().WithTimestampAssigner(new ValueIsTimestamp())).Uid("timestamps")
            .KeyBy(new ModuloKey())
            .Process(new TimerProbe { Delay = 50, DeleteEvery = 3 }, "timers").Uid("timers")
            .SinkTo(new CollectSink<TimerFired>(), "collect").Uid("collect");

        var jobId = await fixture.Platform.SubmitAsync(job);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        var fired = await fixture.Platform.GetCollectedAsync<TimerFired>(jobId, "collect");

        // One timer per record at value + 50 (registered twice), except every third value's, deleted again.
        var expected = Enumerable.Range(0, (int)records).Where(v => v % 3 != 0).Select(v => v + 50L);
        Assert.Equal(expected, fired.Select(f => f.Time).Order());
        Assert.All(fired, f =>
        {
            Assert.Equal(TimeDomain.EventTime, f.Domain);
            Assert.Equal((f.Time - 50) % 16, f.Key);
            Assert.Equal(f.Time, f.Timestamp);
            Assert.True(f.Watermark >= f.Time, $"timer {f.Time} fired at watermark {f.Watermark}");
        });

        // Most fired while the job ran (the watermark passed them), not all at the end of input.
        Assert.True(fired.Count(f => f.Watermark < long.MaxValue) > fired.Count / 2, "timers fired only at the end of input");
        foreach (var subtask in fired.GroupBy(f => f.Subtask))
        {
            var times = subtask.OrderBy(f => f.Sequence).Select(f => f.Time).ToList();
            Assert.True(times.Zip(times.Skip(1)).All(p => p.First <= p.Second), $"subtask {subtask.Key} fired timers out of time order");
        }
    }

    [Fact]
    public async Task Processing_time_timers_fire_by_the_clock_while_no_input_arrives()
    {
        const long records = 64;
        var job = new StreamJobBuilder("processing-time-timers") { DefaultParallelism = 2 };
        // Emits 64 records at once and then nothing without ending: only the clock can fire the timers.
        job.AddSource(new OnlyFirstSubtaskEmits { Count = records, RecordsPerSecond = 1_000_000 }, "burst").Uid("burst")
            .KeyBy(new ModuloKey())
            .Process(new TimerProbe { Delay = 300, ProcessingTime = true }, "timers").Uid("timers")
            .SinkTo(new CollectSink<TimerFired>(), "collect").Uid("collect");

        var jobId = await fixture.Platform.SubmitAsync(job);
        try
        {
            IReadOnlyList<TimerFired> fired = [];
            JobStatusInfo? status = null;
            await Hosting.Poll.UntilAsync(
                async () =>
                {
                    status = await fixture.Platform.GetStatusAsync(jobId);
                    Assert.False(status.State.IsTerminal(), $"the job ended {status.State}: {status.Failure}");
                    return (fired = await fixture.Platform.GetCollectedAsync<TimerFired>(jobId, "collect")).Count >= records;
                },
                Timeout,
                () => $"{fired.Count} of {records} processing-time timers fired; tasks: {string.Join(", ", status?.Tasks.Select(t => $"{t.TaskName}[{t.SubtaskIndex}] {t.State} in {t.RecordsIn} out {t.RecordsOut}") ?? [])}");
            Assert.Equal(records, fired.Count);
            Assert.All(fired, f =>
            {
                Assert.Equal(TimeDomain.ProcessingTime, f.Domain);
                Assert.Null(f.Timestamp);
                Assert.True(f.FiredAt >= f.Time, $"timer {f.Time} fired at {f.FiredAt}, before its time");
            });
        }
        finally
        {
            await fixture.Platform.CancelAsync(jobId);
        }
    }

    [Theory]
    [InlineData(StateBackendKind.Heap)]
    [InlineData(StateBackendKind.RocksDb)]
    public async Task Timers_are_in_savepoints_stay_unfired_at_a_stop_without_drain_and_fire_once_after_a_rescaled_restore(StateBackendKind backend)
    {
        const long records = 4_000;
        var directory = TestData.NewDirectory("timer-savepoints");
        StreamJobBuilder Job(int parallelism, RestoreSettings? from) 
        {
            var job = new StreamJobBuilder("timers-across-savepoints")
            {
                DefaultParallelism = parallelism,
                StateBackend = backend,
                RestoreFrom = from,
                AutoWatermarkInterval = TimeSpan.FromMilliseconds(10),
                Checkpointing = new CheckpointingSettings { Interval = TimeSpan.FromHours(1), Storage = CheckpointStorageKind.FileSystem, Directory = directory },
                RestartStrategy = RestartStrategy.NoRestart,
            };
            // Far-future timers: nothing but the end of event time fires them.
            job.AddSource(new SequenceSource { Count = records, RecordsPerSecondPerSubtask = 250 }, "sequence").Uid("sequence").SetParallelism(2)
                .AssignTimestampsAndWatermarks(WatermarkStrategy<long>.ForMonotonousTimestamps().WithTimestampAssigner(new ValueIsTimestamp())).Uid("timestamps").SetParallelism(2)
                .KeyBy(new ModuloKey())
                .Process(new TimerProbe { Delay = 1_000_000_000, EmitRegistrations = true }, "timers").Uid("timers")
                .SinkTo(new CollectSink<TimerFired>(), "collect").Uid("collect");
            return job;
        }

        var first = await fixture.Platform.SubmitAsync(Job(2, null));
        // Stop once part of the input registered its timers (the sources read 500 records a second).
        await Hosting.Poll.UntilAsync(
            async () => (await fixture.Platform.GetCollectedAsync<TimerFired>(first, "collect")).Count >= records / 8,
            Timeout,
            () => "too few timers were registered");
        var savepoint = await fixture.Platform.StopWithSavepointAsync(first, timeout: Timeout);
        Assert.Equal(JobState.Finished, (await fixture.Platform.GetStatusAsync(first)).State);

        // Stopped without drain: event time did not jump to its end, so no timer fired.
        var before = await fixture.Platform.GetCollectedAsync<TimerFired>(first, "collect");
        Assert.All(before, f => Assert.True(f.Registration, $"timer {f.Time} fired at the stop"));
        Assert.InRange(before.Count, records / 8, records - 1);

        var second = await fixture.Platform.SubmitAsync(Job(3, new RestoreSettings { Path = savepoint.Path }));
        var status = await fixture.Platform.WaitForCompletionAsync(second, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(savepoint.CheckpointId, status.RestoredFromCheckpoint);

        // Every record's timer fired exactly once: those registered before the savepoint (restored, split over three
        // subtasks) and those registered after it, at the end of input.
        var after = await fixture.Platform.GetCollectedAsync<TimerFired>(second, "collect");
        var fired = after.Where(f => !f.Registration).ToList();
        Assert.Equal(records - before.Count, after.Count(f => f.Registration));
        Assert.Equal(Enumerable.Range(0, (int)records).Select(v => v + 1_000_000_000L), fired.Select(f => f.Time).Order());
        Assert.Equal(3, fired.Select(f => f.Subtask).Distinct().Count());
    }
}

/// <summary>A timer that fired: its key and time, the subtask's event time then, and when (on the clock) it fired.</summary>
[GenerateSerializer, Immutable, Alias("tests.TimerFired")]
public sealed record TimerFired(
    [property: Id(0)] long Key,
    [property: Id(1)] long Time,
    [property: Id(2)] TimeDomain Domain,
    [property: Id(3)] long? Timestamp,
    [property: Id(4)] long Watermark,
    [property: Id(5)] int Subtask,
    [property: Id(6)] long Sequence,
    [property: Id(7)] long FiredAt,
    [property: Id(8)] bool Registration = false);

/// <summary>
/// Registers, per record, a timer <see cref="Delay"/> after its timestamp (event time) or after now (processing time),
/// twice; deletes it again for every <see cref="DeleteEvery"/>-th value; emits what fired.
/// </summary>
[GenerateSerializer, Alias("tests.TimerProbe")]
public sealed class TimerProbe : KeyedProcessFunction<long, long, TimerFired>
{
    [Id(0)] public long Delay { get; set; }

    [Id(1)] public bool ProcessingTime { get; set; }

    [Id(2)] public long DeleteEvery { get; set; }

    /// <summary>Also emits a record (<see cref="TimerFired.Registration"/>) for each timer registered.</summary>
    [Id(3)] public bool EmitRegistrations { get; set; }

    [NonSerialized] private int _subtask;
    [NonSerialized] private long _sequence;

    public override void Open(IRuntimeContext context) => _subtask = context.SubtaskIndex;

    public override void ProcessElement(long value, IKeyedContext<long> context, ICollector<TimerFired> output)
    {
        var timers = context.TimerService;
        if (ProcessingTime)
        {
            var time = timers.CurrentProcessingTime + Delay + value; // distinct per record, though several come in the same millisecond
            timers.RegisterProcessingTimeTimer(time);
            timers.RegisterProcessingTimeTimer(time);
            return;
        }

        var at = context.Timestamp!.Value + Delay;
        timers.RegisterEventTimeTimer(at);
        timers.RegisterEventTimeTimer(at);
        if (DeleteEvery > 0 && value % DeleteEvery == 0)
        {
            timers.DeleteEventTimeTimer(at);
        }
        else if (EmitRegistrations)
        {
            output.Collect(new TimerFired(context.CurrentKey, at, TimeDomain.EventTime, context.Timestamp, timers.CurrentWatermark, _subtask, _sequence++, timers.CurrentProcessingTime, Registration: true));
        }
    }

    public override void OnTimer(long timestamp, IOnTimerContext<long> context, ICollector<TimerFired> output) =>
        output.Collect(new TimerFired(
            context.CurrentKey, timestamp, context.TimeDomain, context.Timestamp, context.TimerService.CurrentWatermark, _subtask, _sequence++, context.TimerService.CurrentProcessingTime));
}
