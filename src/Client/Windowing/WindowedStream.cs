using Platform.Functions;
using Platform.Graph;

namespace Platform.Windowing;

/// <summary>A keyed stream cut into windows (Flink's <c>WindowedStream</c>); a window function makes it a stream again.</summary>
public sealed class WindowedStream<T, TKey>
    where TKey : notnull
{
    private readonly KeyedStream<T, TKey> _input;
    private readonly WindowAssigner _assigner;
    private readonly long _allowedLatenessMs;
    private readonly OutputTag<T>? _lateData;

    internal WindowedStream(KeyedStream<T, TKey> input, WindowAssigner assigner, long allowedLatenessMs = 0, OutputTag<T>? lateData = null)
    {
        _input = input;
        _assigner = assigner;
        _allowedLatenessMs = allowedLatenessMs;
        _lateData = lateData;
    }

    /// <summary>
    /// Keeps event-time windows for <paramref name="lateness"/> after they fired: a late record within it updates the
    /// window and fires it again (Flink's <c>allowedLateness</c>). Later records are dropped.
    /// </summary>
    public WindowedStream<T, TKey> AllowedLateness(TimeSpan lateness)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(lateness, TimeSpan.Zero);
        if (!_assigner.IsEventTime && lateness > TimeSpan.Zero)
        {
            throw new ArgumentException("Allowed lateness applies to event-time windows only; processing-time windows have no late records.", nameof(lateness));
        }

        return new WindowedStream<T, TKey>(_input, _assigner, (long)lateness.TotalMilliseconds, _lateData);
    }

    /// <summary>
    /// Sends the records that arrive after their windows' allowed lateness to the side output <paramref name="tag"/>
    /// instead of dropping them (Flink's <c>sideOutputLateData</c>): take it from the windowed result with
    /// <c>GetSideOutput(tag)</c>. Each late record goes there once, with its own timestamp.
    /// </summary>
    public WindowedStream<T, TKey> SideOutputLateData(OutputTag<T> tag)
    {
        ArgumentNullException.ThrowIfNull(tag);
        if (!_assigner.IsEventTime)
        {
            throw new ArgumentException("Late data exists for event-time windows only; processing-time windows have no late records.", nameof(tag));
        }

        return new WindowedStream<T, TKey>(_input, _assigner, _allowedLatenessMs, tag);
    }

    /// <summary>Reduces each window's records incrementally into one (Flink's <c>reduce</c>).</summary>
    public DataStream<T> Reduce(IReduceFunction<T> function, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(function);
        return Apply(new ReduceAggregate<T> { Function = function }, new AggregateWindowResult<T, TKey>(), name);
    }

    /// <summary>Aggregates each window's records incrementally (Flink's <c>aggregate</c>); the window emits the result.</summary>
    public DataStream<TOut> Aggregate<TAcc, TOut>(IAggregateFunction<T, TAcc, TOut> function, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(function);
        return Apply(function, new AggregateWindowResult<TOut, TKey>(), name);
    }

    /// <summary>Aggregates incrementally, then hands the result with its window and key to <paramref name="process"/>.</summary>
    public DataStream<TOut> Aggregate<TAcc, TAggregate, TOut>(IAggregateFunction<T, TAcc, TAggregate> function, ProcessWindowFunction<TAggregate, TOut, TKey> process, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(process);
        return Apply(function, new ProcessAggregateWindowResult<TAggregate, TOut, TKey> { Function = process }, name);
    }

    /// <summary>Keeps every record of each window and hands them all to <paramref name="process"/> when it fires (Flink's <c>process</c>).</summary>
    public DataStream<TOut> Process<TOut>(ProcessWindowFunction<T, TOut, TKey> process, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(process);
        return Apply(new ListAggregate<T>(), new ProcessAllWindowResult<T, TOut, TKey> { Function = process }, name);
    }

    private DataStream<TOut> Apply<TAcc, TAggregate, TOut>(IAggregateFunction<T, TAcc, TAggregate> aggregate, WindowResult<TAggregate, TOut, TKey> result, string? name)
    {
        var window = new WindowOperator<T, TKey, TAcc, TAggregate, TOut> { Assigner = _assigner, Aggregate = aggregate, Result = result, AllowedLatenessMs = _allowedLatenessMs };
        if (_lateData is not { } tag)
        {
            return _input.Process(window, name ?? "window");
        }

        // Results and late records leave the window together and are split by two functions chained after it; the
        // stream returned stands for the window operator (its uid, name and parallelism are the window's).
        var both = _input.Process(new LateDataWindowOperator<T, TKey, TAcc, TAggregate, TOut> { Window = window }, name ?? "window");
        return both.FlatMap(new WindowResults<TOut, T>(), $"{name ?? "window"}/results")
            .StandingFor(both, tag.Id, () => both.FlatMap(new WindowLateRecords<TOut, T>(), $"{name ?? "window"}/{tag.Id}"));
    }
}
