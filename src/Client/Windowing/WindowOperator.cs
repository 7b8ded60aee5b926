using Platform.Functions;
using Platform.State;

namespace Platform.Windowing;

/// <summary>
/// A keyed window (Flink's <c>WindowOperator</c> with its default triggers), built on a keyed process function: each
/// window's contents are an accumulator in a map state of the key (<c>window → accumulator</c>), and each window has a
/// timer at its end (event or processing time) and, with allowed lateness, one at its cleanup time. Window state and
/// timers are therefore keyed state: in every checkpoint and savepoint, on either backend, rescaled by key group.
/// </summary>
/// <remarks>
/// An event-time window fires when the watermark passes its end; a record for it that arrives within the allowed
/// lateness updates it and fires it again at once; a record later than that goes to <see cref="LateRecords"/> when
/// set (the late-data side output), else is dropped and counted in <see cref="LateRecordsDropped"/> (the metric
/// <c>platform.window.late_records_dropped</c>). A processing-time window fires when the clock passes its end.
/// </remarks>
[GenerateSerializer, Alias("platform.WindowOperator`5")]
internal sealed class WindowOperator<T, TKey, TAcc, TAggregate, TOut> : KeyedProcessFunction<TKey, T, TOut>, ILateRecordCounter
    where TKey : notnull
{
    [Id(0)] public required WindowAssigner Assigner { get; init; }

    [Id(1)] public required IAggregateFunction<T, TAcc, TAggregate> Aggregate { get; init; }

    [Id(2)] public required WindowResult<TAggregate, TOut, TKey> Result { get; init; }

    [Id(3)] public long AllowedLatenessMs { get; init; }

    [NonSerialized] private IMapState<TimeWindow, TAcc>? _contents;
    [NonSerialized] private long _lateRecordsDropped;

    /// <summary>Where records later than the allowed lateness go instead of being dropped (the late-data side output).</summary>
    [NonSerialized] internal Action<T>? LateRecords;

    /// <summary>Records this subtask dropped because they arrived after their windows' allowed lateness.</summary>
    public long LateRecordsDropped => _lateRecordsDropped;

    public override void Open(IRuntimeContext context)
    {
        (Aggregate as IRichFunction)?.Open(context);
        Result.Open(context);
        _contents = context.GetMapState(new MapStateDescriptor<TimeWindow, TAcc>("window-contents"));
    }

    public override void Close()
    {
        (Aggregate as IRichFunction)?.Close();
        Result.Close();
    }

    public override void ProcessElement(T value, IKeyedContext<TKey> context, ICollector<TOut> output)
    {
        var timers = context.TimerService;
        var eventTime = Assigner.IsEventTime;
        var time = eventTime
            ? context.Timestamp ?? throw new InvalidOperationException(
                "An event-time window received a record without a timestamp: call AssignTimestampsAndWatermarks before KeyBy, or use processing-time windows.")
            : timers.CurrentProcessingTime;
        var watermark = timers.CurrentWatermark;
        var windows = Assigner.AssignWindows(time);
        var lateWindows = 0;
        foreach (var window in windows)
        {
            if (eventTime && CleanupTime(window) <= watermark)
            {
                // Flink's rule: a record is late when every window it belongs to is past its lateness; it goes to the
                // side output (or is dropped) once, however many windows it missed.
                lateWindows++;
                continue;
            }

            var (target, accumulator) = Assigner.IsMerging
                ? MergeSessions(window, Aggregate.Add(value, Aggregate.CreateAccumulator()))
                : (window, Aggregate.Add(value, _contents!.TryGetValue(window, out var existing) ? existing : Aggregate.CreateAccumulator()));

            _contents!.Put(target, accumulator);
            if (!eventTime)
            {
                timers.RegisterProcessingTimeTimer(target.MaxTimestamp);
                continue;
            }

            if (target.MaxTimestamp <= watermark)
            {
                // Late, but within the allowed lateness: the window fires again with the record in it.
                Fire(context.CurrentKey, target, accumulator, timers, output);
            }
            else
            {
                timers.RegisterEventTimeTimer(target.MaxTimestamp);
            }

            if (AllowedLatenessMs > 0)
            {
                timers.RegisterEventTimeTimer(CleanupTime(target));
            }
        }

        if (lateWindows > 0 && lateWindows == windows.Count)
        {
            if (LateRecords is { } late)
            {
                late(value);
            }
            else
            {
                _lateRecordsDropped++;
            }
        }
    }

    // Every session of the key that a new record's window overlaps (or equals) merges with it into one. Their timers stay:
    // a timer fires only windows that end exactly then, so a merged-away window's timer finds nothing.
    private (TimeWindow Window, TAcc Accumulator) MergeSessions(TimeWindow window, TAcc accumulator)
    {
        foreach (var (other, contents) in _contents!.Entries())
        {
            if (other.Intersects(window))
            {
                window = window.Cover(other);
                accumulator = Aggregate.Merge(accumulator, contents);
                _contents.Remove(other);
            }
        }

        return (window, accumulator);
    }

    public override void OnTimer(long timestamp, IOnTimerContext<TKey> context, ICollector<TOut> output)
    {
        var eventTime = context.TimeDomain == TimeDomain.EventTime;
        if (eventTime != Assigner.IsEventTime)
        {
            return;
        }

        if (Assigner.FixedSize is { } size && timestamp < long.MaxValue)
        {
            // Windows of one size: the window that ends now, and the one whose lateness ends now, are known without
            // scanning the key's windows (a RocksDB prefix scan per timer).
            var ending = new TimeWindow(timestamp + 1 - size, timestamp + 1);
            if (_contents!.TryGetValue(ending, out var contents))
            {
                Fire(context.CurrentKey, ending, contents, context.TimerService, output);
            }

            var expiring = eventTime && AllowedLatenessMs > 0 ? new TimeWindow(timestamp + 1 - AllowedLatenessMs - size, timestamp + 1 - AllowedLatenessMs) : ending;
            if (CleanupTime(expiring) == timestamp || !eventTime)
            {
                _contents.Remove(expiring);
            }

            return;
        }

        foreach (var (window, accumulator) in _contents!.Entries())
        {
            if (window.MaxTimestamp == timestamp)
            {
                Fire(context.CurrentKey, window, accumulator, context.TimerService, output);
            }

            if ((eventTime ? CleanupTime(window) : window.MaxTimestamp) == timestamp)
            {
                _contents.Remove(window);
            }
        }
    }

    private long CleanupTime(TimeWindow window) =>
        window.MaxTimestamp > long.MaxValue - AllowedLatenessMs ? long.MaxValue : window.MaxTimestamp + AllowedLatenessMs;

    private void Fire(TKey key, TimeWindow window, TAcc accumulator, ITimerService timers, ICollector<TOut> output) =>
        Result.Emit(key, new Context(window, timers.CurrentWatermark, timers.CurrentProcessingTime), Aggregate.GetResult(accumulator), output);

    private sealed record Context(TimeWindow Window, long CurrentWatermark, long CurrentProcessingTime) : IWindowContext;
}

/// <summary>What a window emits from its aggregate: the aggregate itself, or what a process window function makes of it.</summary>
[GenerateSerializer, Alias("platform.WindowResult`3")]
internal abstract class WindowResult<TAggregate, TOut, TKey>
    where TKey : notnull
{
    public virtual void Open(IRuntimeContext context)
    {
    }

    public virtual void Close()
    {
    }

    public abstract void Emit(TKey key, IWindowContext context, TAggregate aggregate, ICollector<TOut> output);
}

/// <summary>Emits the aggregate (reduce and aggregate windows).</summary>
[GenerateSerializer, Alias("platform.AggregateWindowResult`2")]
internal sealed class AggregateWindowResult<TOut, TKey> : WindowResult<TOut, TOut, TKey>
    where TKey : notnull
{
    public override void Emit(TKey key, IWindowContext context, TOut aggregate, ICollector<TOut> output) => output.Collect(aggregate);
}

/// <summary>Hands the aggregate, as the window's only element, to a process window function.</summary>
[GenerateSerializer, Alias("platform.ProcessAggregateWindowResult`3")]
internal sealed class ProcessAggregateWindowResult<TAggregate, TOut, TKey> : WindowResult<TAggregate, TOut, TKey>
    where TKey : notnull
{
    [Id(0)] public required ProcessWindowFunction<TAggregate, TOut, TKey> Function { get; init; }

    public override void Open(IRuntimeContext context) => (Function as IRichFunction)?.Open(context);

    public override void Close() => (Function as IRichFunction)?.Close();

    public override void Emit(TKey key, IWindowContext context, TAggregate aggregate, ICollector<TOut> output) =>
        Function.Process(key, context, [aggregate], output);
}

/// <summary>Hands every record of the window to a process window function.</summary>
[GenerateSerializer, Alias("platform.ProcessAllWindowResult`3")]
internal sealed class ProcessAllWindowResult<T, TOut, TKey> : WindowResult<List<T>, TOut, TKey>
    where TKey : notnull
{
    [Id(0)] public required ProcessWindowFunction<T, TOut, TKey> Function { get; init; }

    public override void Open(IRuntimeContext context) => (Function as IRichFunction)?.Open(context);

    public override void Close() => (Function as IRichFunction)?.Close();

    public override void Emit(TKey key, IWindowContext context, List<T> aggregate, ICollector<TOut> output) =>
        Function.Process(key, context, aggregate, output);
}

/// <summary>A reduce function as an aggregation (the accumulator holds the reduced value once there is one).</summary>
[GenerateSerializer, Alias("platform.ReduceAggregate`1")]
internal sealed class ReduceAggregate<T> : IAggregateFunction<T, ReduceAccumulator<T>, T>, IRichFunction
{
    [Id(0)] public required IReduceFunction<T> Function { get; init; }

    public ReduceAccumulator<T> CreateAccumulator() => new();

    public ReduceAccumulator<T> Add(T value, ReduceAccumulator<T> accumulator) =>
        new() { HasValue = true, Value = accumulator.HasValue ? Function.Reduce(accumulator.Value, value) : value };

    public T GetResult(ReduceAccumulator<T> accumulator) => accumulator.Value;

    public ReduceAccumulator<T> Merge(ReduceAccumulator<T> a, ReduceAccumulator<T> b) =>
        !a.HasValue ? b : !b.HasValue ? a : new() { HasValue = true, Value = Function.Reduce(a.Value, b.Value) };

    public void Open(IRuntimeContext context) => (Function as IRichFunction)?.Open(context);

    public void Close() => (Function as IRichFunction)?.Close();
}

/// <summary>The accumulator of a reduce window.</summary>
[GenerateSerializer, Alias("platform.ReduceAccumulator`1")]
internal sealed class ReduceAccumulator<T>
{
    [Id(0)] public bool HasValue { get; init; }

    [Id(1)] public T Value { get; init; } = default!;
}

/// <summary>Keeps every record of a window (for a process window function over all of them).</summary>
[GenerateSerializer, Alias("platform.ListAggregate`1")]
internal sealed class ListAggregate<T> : IAggregateFunction<T, List<T>, List<T>>
{
    public List<T> CreateAccumulator() => [];

    public List<T> Add(T value, List<T> accumulator)
    {
        accumulator.Add(value);
        return accumulator;
    }

    public List<T> GetResult(List<T> accumulator) => accumulator;

    public List<T> Merge(List<T> a, List<T> b) => [.. a, .. b];
}

/// <summary>An operator function that counts the records it dropped for being late (the metric <c>platform.window.late_records_dropped</c>).</summary>
internal interface ILateRecordCounter
{
    /// <summary>Records this subtask dropped because they arrived after their windows' allowed lateness.</summary>
    long LateRecordsDropped { get; }
}

/// <summary>A window's result or a record that came too late for its windows: the window operator's output when its late data has a side output.</summary>
[GenerateSerializer, Immutable, Alias("platform.WindowOutput`2")]
internal readonly record struct WindowOutput<TOut, T>([property: Id(0)] bool IsLate, [property: Id(1)] TOut Result, [property: Id(2)] T Late);

/// <summary>A window operator whose late records go to a side output: both leave as <see cref="WindowOutput{TOut, T}"/>, split by the two functions below.</summary>
[GenerateSerializer, Alias("platform.LateDataWindowOperator`5")]
internal sealed class LateDataWindowOperator<T, TKey, TAcc, TAggregate, TOut> : KeyedProcessFunction<TKey, T, WindowOutput<TOut, T>>, ILateRecordCounter
    where TKey : notnull
{
    [Id(0)] public required WindowOperator<T, TKey, TAcc, TAggregate, TOut> Window { get; init; }

    [NonSerialized] private readonly ResultCollector _results = new();

    public long LateRecordsDropped => Window.LateRecordsDropped;

    public override void Open(IRuntimeContext context)
    {
        Window.Open(context);
        Window.LateRecords = late => _results.Output!.Collect(new WindowOutput<TOut, T>(true, default!, late));
    }

    public override void Close() => Window.Close();

    public override void ProcessElement(T value, IKeyedContext<TKey> context, ICollector<WindowOutput<TOut, T>> output) =>
        Window.ProcessElement(value, context, _results.To(output));

    public override void OnTimer(long timestamp, IOnTimerContext<TKey> context, ICollector<WindowOutput<TOut, T>> output) =>
        Window.OnTimer(timestamp, context, _results.To(output));

    private sealed class ResultCollector : ICollector<TOut>
    {
        public ICollector<WindowOutput<TOut, T>>? Output;

        public ResultCollector To(ICollector<WindowOutput<TOut, T>> output)
        {
            Output = output;
            return this;
        }

        public void Collect(TOut record) => Output!.Collect(new WindowOutput<TOut, T>(false, record, default!));
    }
}

/// <summary>The window results of a <see cref="LateDataWindowOperator{T, TKey, TAcc, TAggregate, TOut}"/>.</summary>
[GenerateSerializer, Alias("platform.WindowResults`2")]
internal sealed class WindowResults<TOut, T> : IFlatMapFunction<WindowOutput<TOut, T>, TOut>
{
    public void FlatMap(WindowOutput<TOut, T> value, ICollector<TOut> output)
    {
        if (!value.IsLate)
        {
            output.Collect(value.Result);
        }
    }
}

/// <summary>The late records of a <see cref="LateDataWindowOperator{T, TKey, TAcc, TAggregate, TOut}"/>.</summary>
[GenerateSerializer, Alias("platform.WindowLateRecords`2")]
internal sealed class WindowLateRecords<TOut, T> : IFlatMapFunction<WindowOutput<TOut, T>, T>
{
    public void FlatMap(WindowOutput<TOut, T> value, ICollector<T> output)
    {
        if (value.IsLate)
        {
            output.Collect(value.Late);
        }
    }
}
