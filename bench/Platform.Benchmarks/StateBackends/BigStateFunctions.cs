using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using Platform.Benchmarks.KeyedCount;
using Platform.Connectors;
using Platform.Functions;
using Platform.State;

namespace Platform.Benchmarks.StateBackends;

/// <summary>
/// The big-state job's records are sequence numbers, and everything else follows from them, so that a replayed record
/// has the same key and meaning. Three phases: <c>s &lt; BigKeys</c> loads key index <c>s</c> (version 0);
/// the next <c>ChangedKeys</c> records update every <see cref="Step"/>-th key index to version 1; after them, verify
/// records read a spread of keys and check their version (they write nothing).
/// </summary>
public static class BigStateLayout
{
    // Odd and prime: verify records visit key indexes spread over the whole range.
    private const ulong VerifyStride = 1_000_003;

    /// <summary>The distance between two changed key indexes.</summary>
    public static long Step(long bigKeys, long changedKeys) => Math.Max(1, bigKeys / Math.Max(1, changedKeys));

    /// <summary>The key index (0 .. bigKeys-1) that sequence number <paramref name="sequence"/> touches.</summary>
    public static long KeyIndexOf(long sequence, long bigKeys, long changedKeys)
    {
        if (sequence < bigKeys)
        {
            return sequence;
        }

        var update = sequence - bigKeys;
        if (update < changedKeys)
        {
            return update * Step(bigKeys, changedKeys);
        }

        return (long)((ulong)(update - changedKeys) * VerifyStride % (ulong)bigKeys);
    }

    /// <summary>The version key index <paramref name="index"/> has once the update phase is over.</summary>
    public static int VersionAfterUpdates(long index, long bigKeys, long changedKeys)
    {
        var step = Step(bigKeys, changedKeys);
        return index % step == 0 && index / step < changedKeys ? 1 : 0;
    }

    /// <summary>The 64-bit key of a key index: spread over the whole range, as in keyed-count.</summary>
    public static long KeyOf(long index) => unchecked((long)((ulong)index * BenchKeys.Multiplier));

    /// <summary>
    /// The value of key index <paramref name="index"/> at <paramref name="version"/>: the version, the index, then
    /// pseudo-random bytes, so that RocksDB's compression cannot shrink the state below its real size.
    /// </summary>
    public static byte[] ValueOf(long index, int version, int length)
    {
        var value = new byte[Math.Max(length, 12)];
        BinaryPrimitives.WriteInt32LittleEndian(value, version);
        BinaryPrimitives.WriteInt64LittleEndian(value.AsSpan(4), index);
        var seed = unchecked((ulong)index * 0xD1B54A32D192ED03UL + (ulong)version);
        var rest = value.AsSpan(12);
        while (rest.Length >= 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(rest, SplitMix(ref seed));
            rest = rest[8..];
        }

        var last = SplitMix(ref seed);
        for (var i = 0; i < rest.Length; i++, last >>= 8)
        {
            rest[i] = (byte)last;
        }

        return value;
    }

    /// <summary>Whether <paramref name="value"/> is the value of key index <paramref name="index"/> at <paramref name="version"/>.</summary>
    public static bool Holds(byte[]? value, long index, int version, int length) =>
        value is not null
        && value.Length == Math.Max(length, 12)
        && BinaryPrimitives.ReadInt32LittleEndian(value) == version
        && BinaryPrimitives.ReadInt64LittleEndian(value.AsSpan(4)) == index;

    private static ulong SplitMix(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>
/// What the big-state job's functions report to the benchmark, and the switches it drives them with. The silo runs in
/// the benchmark's process, so plain statics reach the functions; only one big-state job runs at a time.
/// </summary>
internal static class BigStateProbe
{
    private static long s_released;
    private static int s_failureArmed;
    private static long s_failedAt;
    private static long s_loaded;
    private static long s_loadedOverExisting;
    private static long s_updated;
    private static long s_updatedWrong;
    private static long s_verifiedAfterRestore;
    private static long s_verifiedWrongAfterRestore;

    /// <summary>(subtask, attempt) → when the keyed function was opened, which the task does after restoring its state.</summary>
    public static ConcurrentDictionary<(int Subtask, int Attempt), long> Opened { get; } = new();

    /// <summary>When source readers were created (a new attempt's sources start reading).</summary>
    public static ConcurrentQueue<long> ReadersCreated { get; } = new();

    /// <summary>Sources emit sequence numbers below this only; the benchmark raises it to start the next phase.</summary>
    public static long Released
    {
        get => Volatile.Read(ref s_released);
        set => Volatile.Write(ref s_released, value);
    }

    /// <summary>Stopwatch timestamp of the injected failure; 0 before it.</summary>
    public static long FailedAt => Volatile.Read(ref s_failedAt);

    public static long Loaded => Interlocked.Read(ref s_loaded);

    public static long LoadedOverExisting => Interlocked.Read(ref s_loadedOverExisting);

    public static long Updated => Interlocked.Read(ref s_updated);

    public static long UpdatedWrong => Interlocked.Read(ref s_updatedWrong);

    public static long VerifiedAfterRestore => Interlocked.Read(ref s_verifiedAfterRestore);

    public static long VerifiedWrongAfterRestore => Interlocked.Read(ref s_verifiedWrongAfterRestore);

    public static void Reset(long released)
    {
        Released = released;
        s_failureArmed = 0;
        s_failedAt = 0;
        s_loaded = s_loadedOverExisting = s_updated = s_updatedWrong = s_verifiedAfterRestore = s_verifiedWrongAfterRestore = 0;
        Opened.Clear();
        ReadersCreated.Clear();
    }

    /// <summary>Makes the next verify record throw, once.</summary>
    public static void ArmFailure() => Volatile.Write(ref s_failureArmed, 1);

    /// <summary>Whether this call takes the armed failure (then it records the time).</summary>
    public static bool TakeFailure()
    {
        if (Volatile.Read(ref s_failureArmed) == 0 || Interlocked.Exchange(ref s_failureArmed, 0) == 0)
        {
            return false;
        }

        Volatile.Write(ref s_failedAt, Stopwatch.GetTimestamp());
        return true;
    }

    public static void OnLoaded(bool overExisting)
    {
        Interlocked.Increment(ref s_loaded);
        if (overExisting)
        {
            Interlocked.Increment(ref s_loadedOverExisting);
        }
    }

    public static void OnUpdated(bool wrong)
    {
        Interlocked.Increment(ref s_updated);
        if (wrong)
        {
            Interlocked.Increment(ref s_updatedWrong);
        }
    }

    public static void OnVerified(int attempt, bool wrong)
    {
        // Only the restored attempt counts: the failed attempt's other subtasks may verify a few records before they stop.
        if (attempt > 1)
        {
            Interlocked.Increment(ref s_verifiedAfterRestore);
            if (wrong)
            {
                Interlocked.Increment(ref s_verifiedWrongAfterRestore);
            }
        }
    }
}

/// <summary>
/// Emits the sequence numbers 0 .. <see cref="End"/>-1 (subtask i of p: i, i+p, ...), but only those below
/// <see cref="BigStateProbe.Released"/>: it idles at each phase's end until the benchmark releases the next. The offset
/// is the next sequence number, so a restore replays exactly what followed the checkpoint.
/// </summary>
[GenerateSerializer, Alias("bench.BigStateSource")]
public sealed class BigStateSource : ISourceFunction<long>
{
    /// <summary>One past the last sequence number (all three phases).</summary>
    [Id(0)] public long End { get; set; }

    /// <inheritdoc />
    public bool IsBounded => true;

    /// <inheritdoc />
    public ISourceReader<long> CreateReader(SourceReaderContext context)
    {
        BigStateProbe.ReadersCreated.Enqueue(Stopwatch.GetTimestamp());
        return new Reader(End, context.StartOffset ?? context.SubtaskIndex, context.Parallelism);
    }

    private sealed class Reader(long end, long start, int stride) : ISourceReader<long>
    {
        public long Offset { get; private set; } = start;

        public ReadStatus TryRead(out long record)
        {
            // Released first: the source stays open (and the job running) until the benchmark releases the end.
            record = Offset;
            if (Offset >= BigStateProbe.Released)
            {
                return ReadStatus.NothingAvailable;
            }

            if (Offset >= end)
            {
                return ReadStatus.EndOfInput;
            }

            Offset += stride;
            return ReadStatus.Record;
        }

        public void Dispose()
        {
        }
    }
}

/// <summary>The key of a big-state record: <see cref="BigStateLayout.KeyOf"/> its key index.</summary>
[GenerateSerializer, Alias("bench.BigStateKey")]
public sealed class BigStateKey : IKeySelector<long, long>
{
    /// <summary>Keys loaded in the first phase.</summary>
    [Id(0)] public long BigKeys { get; set; }

    /// <summary>Keys changed in the second phase.</summary>
    [Id(1)] public long ChangedKeys { get; set; }

    /// <inheritdoc />
    public long GetKey(long value) => BigStateLayout.KeyOf(BigStateLayout.KeyIndexOf(value, BigKeys, ChangedKeys));
}

/// <summary>
/// Keeps a value of <see cref="ValueBytes"/> bytes per key in a <see cref="IValueState{T}"/>: load records write
/// version 0, update records check version 0 and write version 1, verify records check the version the layout
/// predicts. The next verify record after <see cref="BigStateProbe.ArmFailure"/> throws instead.
/// </summary>
[GenerateSerializer, Alias("bench.FatValuePerKey")]
public sealed class FatValuePerKey : KeyedProcessFunction<long, long, long>
{
    /// <summary>Keys loaded in the first phase.</summary>
    [Id(0)] public long BigKeys { get; set; }

    /// <summary>Keys changed in the second phase.</summary>
    [Id(1)] public long ChangedKeys { get; set; }

    /// <summary>The length of each key's value.</summary>
    [Id(2)] public int ValueBytes { get; set; } = 100;

    [NonSerialized] private IValueState<byte[]?>? _value;
    [NonSerialized] private int _attempt;

    /// <inheritdoc />
    public override void Open(IRuntimeContext context)
    {
        _value = context.GetState(new ValueStateDescriptor<byte[]?>("value"));
        _attempt = context.Attempt;
        BigStateProbe.Opened[(context.SubtaskIndex, context.Attempt)] = Stopwatch.GetTimestamp();
    }

    /// <inheritdoc />
    public override void ProcessElement(long value, IKeyedContext<long> context, ICollector<long> output)
    {
        var state = _value!;
        var index = BigStateLayout.KeyIndexOf(value, BigKeys, ChangedKeys);
        if (value < BigKeys)
        {
            BigStateProbe.OnLoaded(overExisting: state.Value is not null);
            state.Update(BigStateLayout.ValueOf(index, 0, ValueBytes));
        }
        else if (value < BigKeys + ChangedKeys)
        {
            BigStateProbe.OnUpdated(wrong: !BigStateLayout.Holds(state.Value, index, 0, ValueBytes));
            state.Update(BigStateLayout.ValueOf(index, 1, ValueBytes));
        }
        else if (BigStateProbe.TakeFailure())
        {
            throw new InvalidOperationException("Failure injected by the state-backends benchmark to measure the restore.");
        }
        else
        {
            var expected = BigStateLayout.VersionAfterUpdates(index, BigKeys, ChangedKeys);
            BigStateProbe.OnVerified(_attempt, wrong: !BigStateLayout.Holds(state.Value, index, expected, ValueBytes));
        }
    }
}
