namespace Platform.Windowing;

/// <summary>A window of time <c>[Start, End)</c> in milliseconds (Flink's <c>TimeWindow</c>).</summary>
[GenerateSerializer, Immutable, Alias("platform.TimeWindow")]
public readonly record struct TimeWindow([property: Id(0)] long Start, [property: Id(1)] long End)
{
    /// <summary>The last millisecond in the window; its timer fires when the watermark reaches it.</summary>
    public long MaxTimestamp => End - 1;

    /// <summary>Whether the two windows overlap or touch (Flink's <c>intersects</c>): session windows that do merge.</summary>
    public bool Intersects(TimeWindow other) => Start <= other.End && End >= other.Start;

    /// <summary>The smallest window covering both.</summary>
    public TimeWindow Cover(TimeWindow other) => new(Math.Min(Start, other.Start), Math.Max(End, other.End));

    /// <summary>The start of the window of <paramref name="size"/> (shifted by <paramref name="offset"/>) that holds <paramref name="timestamp"/>.</summary>
    public static long StartOf(long timestamp, long offset, long size)
    {
        var remainder = (timestamp - offset) % size;
        return remainder < 0 ? timestamp - (remainder + size) : timestamp - remainder;
    }
}

/// <summary>Assigns each record to the windows it belongs to (Flink's <c>WindowAssigner</c>).</summary>
[GenerateSerializer, Alias("platform.WindowAssigner")]
public abstract class WindowAssigner
{
    /// <summary>Whether windows follow event time (watermarks) rather than the silo's clock.</summary>
    public abstract bool IsEventTime { get; }

    /// <summary>Whether overlapping windows of a key merge into one (session windows).</summary>
    public virtual bool IsMerging => false;

    /// <summary>The windows a record with time <paramref name="timestamp"/> belongs to.</summary>
    public abstract IReadOnlyList<TimeWindow> AssignWindows(long timestamp);

    /// <summary>The size in milliseconds of every window this assigner makes; <c>null</c> when sizes vary (sessions).</summary>
    internal virtual long? FixedSize => null;

    private protected static long Milliseconds(TimeSpan span, string name)
    {
        var ms = (long)span.TotalMilliseconds;
        return ms > 0
            ? ms
            : throw new ArgumentOutOfRangeException(name, span, $"A window's {name} must be at least one millisecond; it is {span}.");
    }
}

/// <summary>Fixed-size, non-overlapping windows (Flink's <c>TumblingEventTimeWindows</c> / <c>TumblingProcessingTimeWindows</c>).</summary>
[GenerateSerializer, Alias("platform.TumblingWindows")]
public sealed class TumblingWindows : WindowAssigner
{
    [Id(0)] private long _size;
    [Id(1)] private long _offset;
    [Id(2)] private bool _eventTime;

    /// <summary>Tumbling windows of <paramref name="size"/> over event time, starting at multiples of it plus <paramref name="offset"/>.</summary>
    public static TumblingWindows OfEventTime(TimeSpan size, TimeSpan offset = default) => Create(size, offset, eventTime: true);

    /// <summary>Tumbling windows of <paramref name="size"/> over the silo's clock.</summary>
    public static TumblingWindows OfProcessingTime(TimeSpan size, TimeSpan offset = default) => Create(size, offset, eventTime: false);

    /// <inheritdoc />
    public override bool IsEventTime => _eventTime;

    internal override long? FixedSize => _size;

    /// <inheritdoc />
    public override IReadOnlyList<TimeWindow> AssignWindows(long timestamp)
    {
        var start = TimeWindow.StartOf(timestamp, _offset, _size);
        return [new TimeWindow(start, start + _size)];
    }

    private static TumblingWindows Create(TimeSpan size, TimeSpan offset, bool eventTime)
    {
        var ms = Milliseconds(size, "size");
        var offsetMs = (long)offset.TotalMilliseconds;
        if (offsetMs < 0 || offsetMs >= ms)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"A tumbling window's offset must be at least zero and less than its size ({size}).");
        }

        return new TumblingWindows { _size = ms, _offset = offsetMs, _eventTime = eventTime };
    }
}

/// <summary>Fixed-size windows that start every <c>slide</c> and so overlap (Flink's <c>SlidingEventTimeWindows</c>).</summary>
[GenerateSerializer, Alias("platform.SlidingWindows")]
public sealed class SlidingWindows : WindowAssigner
{
    [Id(0)] private long _size;
    [Id(1)] private long _slide;
    [Id(2)] private long _offset;
    [Id(3)] private bool _eventTime;

    /// <summary>Windows of <paramref name="size"/> over event time, one starting every <paramref name="slide"/>.</summary>
    public static SlidingWindows OfEventTime(TimeSpan size, TimeSpan slide, TimeSpan offset = default) => Create(size, slide, offset, eventTime: true);

    /// <summary>Windows of <paramref name="size"/> over the silo's clock, one starting every <paramref name="slide"/>.</summary>
    public static SlidingWindows OfProcessingTime(TimeSpan size, TimeSpan slide, TimeSpan offset = default) => Create(size, slide, offset, eventTime: false);

    /// <inheritdoc />
    public override bool IsEventTime => _eventTime;

    internal override long? FixedSize => _size;

    /// <inheritdoc />
    public override IReadOnlyList<TimeWindow> AssignWindows(long timestamp)
    {
        var windows = new List<TimeWindow>((int)Math.Min(_size / _slide + 1, 1024));
        for (var start = TimeWindow.StartOf(timestamp, _offset, _slide); start > timestamp - _size; start -= _slide)
        {
            windows.Add(new TimeWindow(start, start + _size));
        }

        return windows;
    }

    private static SlidingWindows Create(TimeSpan size, TimeSpan slide, TimeSpan offset, bool eventTime)
    {
        var sizeMs = Milliseconds(size, "size");
        var slideMs = Milliseconds(slide, "slide");
        if (slideMs > sizeMs)
        {
            throw new ArgumentOutOfRangeException(nameof(slide), slide, $"A sliding window's slide ({slide}) must not exceed its size ({size}); use tumbling windows for gaps.");
        }

        var offsetMs = (long)offset.TotalMilliseconds;
        if (offsetMs < 0 || offsetMs >= slideMs)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"A sliding window's offset must be at least zero and less than its slide ({slide}).");
        }

        return new SlidingWindows { _size = sizeMs, _slide = slideMs, _offset = offsetMs, _eventTime = eventTime };
    }
}

/// <summary>
/// Session windows (Flink's <c>EventTimeSessionWindows</c> / <c>ProcessingTimeSessionWindows</c>): a key's records
/// closer together than the gap fall into one window, which ends one gap after its last record. Windows merge as
/// records arrive: a record that bridges two sessions joins them into one.
/// </summary>
[GenerateSerializer, Alias("platform.SessionWindows")]
public sealed class SessionWindows : WindowAssigner
{
    [Id(0)] private long _gap;
    [Id(1)] private bool _eventTime;

    /// <summary>Sessions over event time that close after <paramref name="gap"/> without a record of their key.</summary>
    public static SessionWindows WithGap(TimeSpan gap) => new() { _gap = Milliseconds(gap, "gap"), _eventTime = true };

    /// <summary>Sessions over the silo's clock.</summary>
    public static SessionWindows WithProcessingTimeGap(TimeSpan gap) => new() { _gap = Milliseconds(gap, "gap"), _eventTime = false };

    /// <inheritdoc />
    public override bool IsEventTime => _eventTime;

    /// <summary>Windows of this assigner merge when they overlap.</summary>
    public override bool IsMerging => true;

    /// <inheritdoc />
    public override IReadOnlyList<TimeWindow> AssignWindows(long timestamp) => [new TimeWindow(timestamp, timestamp + _gap)];
}

/// <summary>What a <see cref="ProcessWindowFunction{TIn, TOut, TKey}"/> learns about the window it evaluates.</summary>
public interface IWindowContext
{
    /// <summary>The window.</summary>
    TimeWindow Window { get; }

    /// <summary>The subtask's event time when the window fires.</summary>
    long CurrentWatermark { get; }

    /// <summary>The silo's clock when the window fires.</summary>
    long CurrentProcessingTime { get; }
}

/// <summary>
/// Evaluates a window with all its contents at once (Flink's <c>ProcessWindowFunction</c>): every record of the window,
/// or the single result of an incremental aggregation placed before it.
/// </summary>
/// <remarks>Mark subclasses <c>[GenerateSerializer]</c>, like every function.</remarks>
[GenerateSerializer, Alias("platform.ProcessWindowFunction`3")]
public abstract class ProcessWindowFunction<TIn, TOut, TKey>
    where TKey : notnull
{
    /// <summary>Emits the results of the window of <paramref name="key"/>.</summary>
    public abstract void Process(TKey key, IWindowContext context, IReadOnlyList<TIn> elements, Functions.ICollector<TOut> output);
}
