namespace Platform.Functions;

/// <summary>Which clock a timer follows (Flink's <c>TimeDomain</c>).</summary>
[GenerateSerializer, Alias("platform.TimeDomain")]
public enum TimeDomain
{
    /// <summary>Event time: the timer fires when the subtask's watermark reaches its time.</summary>
    EventTime,

    /// <summary>Processing time: the timer fires when the silo's clock reaches its time.</summary>
    ProcessingTime,
}

/// <summary>
/// Timers of the current key (Flink's <c>TimerService</c>), for keyed (co-)process functions. A timer is identified by
/// its key, time and domain: registering the same one twice keeps one. Timers live in the keyed state backend, per key
/// group, so they are in every checkpoint and savepoint and move with their keys when a job is rescaled.
/// </summary>
public interface ITimerService
{
    /// <summary>The silo's clock, in milliseconds since the Unix epoch.</summary>
    long CurrentProcessingTime { get; }

    /// <summary>The subtask's event time (its current watermark); <see cref="long.MinValue"/> before the first watermark.</summary>
    long CurrentWatermark { get; }

    /// <summary>Fires <c>OnTimer</c> for the current key once the watermark reaches <paramref name="time"/> (with the next watermark if it has already).</summary>
    void RegisterEventTimeTimer(long time);

    /// <summary>Fires <c>OnTimer</c> for the current key once the clock reaches <paramref name="time"/> (at the task's next step if it has already).</summary>
    void RegisterProcessingTimeTimer(long time);

    /// <summary>Removes the current key's event-time timer at <paramref name="time"/>, if there is one.</summary>
    void DeleteEventTimeTimer(long time);

    /// <summary>Removes the current key's processing-time timer at <paramref name="time"/>, if there is one.</summary>
    void DeleteProcessingTimeTimer(long time);
}

/// <summary>The context of <c>OnTimer</c>: the key whose timer fired, and its time domain.</summary>
/// <typeparam name="TKey">The key type.</typeparam>
public interface IOnTimerContext<out TKey> : IKeyedContext<TKey>
{
    /// <summary>The clock of the timer that fired.</summary>
    TimeDomain TimeDomain { get; }
}
