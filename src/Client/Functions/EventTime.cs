namespace Platform.Functions;

/// <summary>Extracts a record's event time (Flink's <c>TimestampAssigner</c>), in milliseconds since the Unix epoch.</summary>
/// <typeparam name="T">The record type.</typeparam>
public interface ITimestampAssigner<in T>
{
    /// <summary>The record's event time in milliseconds.</summary>
    long ExtractTimestamp(T record);
}

/// <summary>
/// How a stream's event time and watermarks are derived (Flink's <c>WatermarkStrategy</c>): a timestamp per record from
/// <see cref="Assigner"/>, and a watermark that trails the largest timestamp seen by <see cref="OutOfOrderness"/> (Flink's
/// bounded-out-of-orderness generator: <c>max - outOfOrderness - 1</c>), emitted every auto-watermark interval of the job.
/// A source subtask that reads nothing for <see cref="Idleness"/> is marked idle, so it does not hold back downstream.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
[GenerateSerializer, Alias("platform.WatermarkStrategy`1")]
public sealed class WatermarkStrategy<T>
{
    /// <summary>How far behind the largest timestamp seen the watermark stays.</summary>
    [Id(0)] public TimeSpan OutOfOrderness { get; init; }

    /// <summary>Where each record's timestamp comes from; required.</summary>
    [Id(1)] public ITimestampAssigner<T>? Assigner { get; init; }

    /// <summary>After this long without a record the subtask is idle (Flink's <c>withIdleness</c>); never when null.</summary>
    [Id(2)] public TimeSpan? Idleness { get; init; }

    /// <summary>Watermarks for records that arrive at most <paramref name="maxOutOfOrderness"/> behind the largest timestamp seen.</summary>
    public static WatermarkStrategy<T> ForBoundedOutOfOrderness(TimeSpan maxOutOfOrderness)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxOutOfOrderness, TimeSpan.Zero);
        return new WatermarkStrategy<T> { OutOfOrderness = maxOutOfOrderness };
    }

    /// <summary>Watermarks for timestamps that never decrease within a subtask.</summary>
    public static WatermarkStrategy<T> ForMonotonousTimestamps() => new() { OutOfOrderness = TimeSpan.Zero };

    /// <summary>This strategy with <paramref name="assigner"/> extracting each record's timestamp.</summary>
    public WatermarkStrategy<T> WithTimestampAssigner(ITimestampAssigner<T> assigner)
    {
        ArgumentNullException.ThrowIfNull(assigner);
        return new WatermarkStrategy<T> { OutOfOrderness = OutOfOrderness, Assigner = assigner, Idleness = Idleness };
    }

    /// <summary>This strategy, marking a subtask idle after <paramref name="idleTimeout"/> without records.</summary>
    public WatermarkStrategy<T> WithIdleness(TimeSpan idleTimeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(idleTimeout, TimeSpan.Zero);
        return new WatermarkStrategy<T> { OutOfOrderness = OutOfOrderness, Assigner = Assigner, Idleness = idleTimeout };
    }
}
