using Platform.Functions;
using Platform.Tasks.Operators;

namespace Platform.Tasks.EventTime;

/// <summary>What a task reads from the watermark generator of its chain, between batches.</summary>
internal interface IWatermarkGenerator
{
    /// <summary>The watermark the records seen so far allow (<see cref="long.MinValue"/> before the first).</summary>
    long CurrentWatermark { get; }

    /// <summary>Records seen so far: the task marks the subtask idle when this stops growing for <see cref="Idleness"/>.</summary>
    long RecordsSeen { get; }

    /// <summary>After how long without records the subtask is idle; never when null.</summary>
    TimeSpan? Idleness { get; }
}

/// <summary>
/// Flink's <c>TimestampsAndWatermarksOperator</c> with the bounded-out-of-orderness generator: it passes every record on,
/// keeps the largest timestamp its assigner extracted, and offers <c>max - outOfOrderness - 1</c> as the watermark; the
/// task emits it every auto-watermark interval, after the records before it.
/// </summary>
internal sealed class TimestampsAndWatermarksOperator<T>(WatermarkStrategy<T> strategy, ICollector<T> output) : StreamOperator, ICollector<T>, IWatermarkGenerator
{
    private readonly ITimestampAssigner<T> _assigner = strategy.Assigner ?? throw new InvalidOperationException("The watermark strategy has no timestamp assigner.");
    private readonly long _outOfOrdernessMs = (long)strategy.OutOfOrderness.TotalMilliseconds;
    private long _maxTimestamp = long.MinValue;
    private OperatorContext? _context;

    public long CurrentWatermark => _maxTimestamp == long.MinValue ? long.MinValue : _maxTimestamp - _outOfOrdernessMs - 1;

    public long RecordsSeen { get; private set; }

    public TimeSpan? Idleness => strategy.Idleness;

    public override ValueTask OpenAsync(OperatorContext context)
    {
        _context = context;
        return ValueTask.CompletedTask;
    }

    public void Collect(T record)
    {
        long timestamp;
        try
        {
            timestamp = _assigner.ExtractTimestamp(record);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }

        RecordsSeen++;
        _context!.CurrentTimestamp = timestamp;
        if (timestamp > _maxTimestamp)
        {
            _maxTimestamp = timestamp;
        }

        output.Collect(record);
    }
}
