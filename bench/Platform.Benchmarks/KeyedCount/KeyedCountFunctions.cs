using Platform.Connectors;
using Platform.Functions;
using Platform.State;

namespace Platform.Benchmarks.KeyedCount;

/// <summary>
/// The key formula shared by the job, the raw loop and the naive-grain baseline: the record with sequence number
/// <c>s</c> has key index <c>k = s mod DistinctKeys</c>, spread over 64 bits by a multiplicative hash
/// (<c>k × golden-ratio constant mod 2^64</c>). The multiplier is odd, so the hash is a bijection and a key can be
/// mapped back to its index, which is what lets the counting function know each key's final count in advance.
/// </summary>
public static class BenchKeys
{
    /// <summary>2^64 / φ, odd: spreads consecutive indexes over the whole 64-bit range.</summary>
    public const ulong Multiplier = 0x9E3779B97F4A7C15UL;

    /// <summary>The multiplicative inverse of <see cref="Multiplier"/> modulo 2^64.</summary>
    public static readonly ulong Inverse = ComputeInverse(Multiplier);

    /// <summary>The key of sequence number <paramref name="sequence"/>.</summary>
    public static long KeyOf(long sequence, long distinctKeys) => unchecked((long)((ulong)(sequence % distinctKeys) * Multiplier));

    /// <summary>The key index (0 .. distinctKeys-1) of <paramref name="key"/>.</summary>
    public static long IndexOf(long key) => unchecked((long)((ulong)key * Inverse));

    /// <summary>How many of the sequence numbers 0 .. records-1 have key index <paramref name="index"/>.</summary>
    public static long ExpectedCount(long index, long records, long distinctKeys) =>
        records / distinctKeys + (index < records % distinctKeys ? 1 : 0);

    private static ulong ComputeInverse(ulong a)
    {
        // Newton's iteration for the inverse modulo 2^64: each step doubles the number of correct low bits.
        var x = a;
        for (var i = 0; i < 6; i++)
        {
            x = unchecked(x * (2 - a * x));
        }

        if (unchecked(x * a) != 1)
        {
            throw new InvalidOperationException("The key multiplier has no inverse modulo 2^64.");
        }

        return x;
    }
}

/// <summary>Generates the benchmark's keys: <see cref="BenchKeys.KeyOf"/> of each sequence number.</summary>
[GenerateSerializer, Alias("bench.SpreadKeySource")]
public sealed class SpreadKeySource : GeneratorSource<long>
{
    /// <summary>How many distinct keys the source cycles through.</summary>
    [Id(0)] public long DistinctKeys { get; set; } = 100_000;

    /// <inheritdoc />
    public override long Generate(long sequence) => BenchKeys.KeyOf(sequence, DistinctKeys);
}

/// <summary>The record is its own key.</summary>
[GenerateSerializer, Alias("bench.IdentityKey")]
public sealed class IdentityKey : IKeySelector<long, long>
{
    /// <inheritdoc />
    public long GetKey(long value) => value;
}

/// <summary>
/// Counts records per key in a <see cref="IValueState{T}"/>. It emits a key exactly once when its count reaches the
/// value the generator's formula predicts, and once more if the count ever goes past it, so the collected output
/// proves every key was counted exactly (all keys present, none twice) while emitting only 1% of the input.
/// </summary>
[GenerateSerializer, Alias("bench.CountPerKey")]
public sealed class CountPerKey : KeyedProcessFunction<long, long, long>
{
    /// <summary>The job's total record count.</summary>
    [Id(0)] public long Records { get; set; }

    /// <summary>How many distinct keys the source produces.</summary>
    [Id(1)] public long DistinctKeys { get; set; }

    [NonSerialized] private IValueState<long>? _count;
    [NonSerialized] private long _countPerKey;
    [NonSerialized] private long _keysWithOneMore;

    /// <inheritdoc />
    public override void Open(IRuntimeContext context)
    {
        _count = context.GetState(new ValueStateDescriptor<long>("count"));

        // BenchKeys.ExpectedCount without its two 64-bit divisions per record.
        _countPerKey = Records / DistinctKeys;
        _keysWithOneMore = Records % DistinctKeys;
    }

    /// <inheritdoc />
    public override void ProcessElement(long value, IKeyedContext<long> context, ICollector<long> output)
    {
        var state = _count!;
        var count = state.Value + 1;
        state.Update(count);
        var expected = _countPerKey + (BenchKeys.IndexOf(value) < _keysWithOneMore ? 1 : 0);
        if (count == expected || count == expected + 1)
        {
            output.Collect(value);
        }
    }
}
