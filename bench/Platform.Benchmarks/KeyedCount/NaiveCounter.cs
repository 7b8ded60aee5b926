namespace Platform.Benchmarks.KeyedCount;

/// <summary>
/// The design an Orleans newcomer writes first for "count events per key": one grain per key, one call per event.
/// </summary>
[Alias("bench.ICounterGrain")]
public interface ICounterGrain : IGrainWithIntegerKey
{
    /// <summary>Counts one event for this grain's key.</summary>
    Task Increment();
}

/// <summary>Holds one key's count in memory.</summary>
public sealed class CounterGrain : Grain, ICounterGrain
{
    private static long s_total;
    private long _count;

    /// <summary>Increments across every counter grain of the process (to check that no call was lost).</summary>
    public static long Total => Interlocked.Read(ref s_total);

    /// <inheritdoc />
    public Task Increment()
    {
        _count++;
        Interlocked.Increment(ref s_total);
        return Task.CompletedTask;
    }
}
