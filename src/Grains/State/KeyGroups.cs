using System.Runtime.InteropServices;
using System.IO.Hashing;
using Orleans.Serialization;

namespace Platform.State;

/// <summary>A contiguous, inclusive range of key groups owned by one subtask of a keyed operator.</summary>
[GenerateSerializer, Immutable, Alias("platform.KeyGroupRange")]
public readonly record struct KeyGroupRange([property: Id(0)] int Start, [property: Id(1)] int End)
{
    /// <summary>How many key groups the range holds.</summary>
    public int Count => End - Start + 1;

    /// <summary>Whether <paramref name="keyGroup"/> is in the range.</summary>
    public bool Contains(int keyGroup) => keyGroup >= Start && keyGroup <= End;

    /// <inheritdoc />
    public override string ToString() => $"[{Start}, {End}]";
}

/// <summary>
/// Flink's key-group arithmetic: a key's group is a well-mixed stable hash modulo the max parallelism, and subtask
/// <c>i</c> of <c>p</c> owns a contiguous range of groups, so that rescaling moves whole key groups.
/// </summary>
public static class KeyGroupAssignment
{
    /// <summary>The key group of a key with the given stable hash.</summary>
    public static int AssignToKeyGroup(int keyHash, int maxParallelism) =>
        (int)(Mix((uint)keyHash) % (uint)maxParallelism);

    /// <summary>
    /// The key group of <paramref name="key"/>, which a backend owning <paramref name="range"/> is about to make
    /// current; throws when another subtask owns it (the key selector is not deterministic).
    /// </summary>
    public static int AssignOwned<TKey>(TKey key, int keyHash, int maxParallelism, KeyGroupRange range, string operatorName)
    {
        var keyGroup = AssignToKeyGroup(keyHash, maxParallelism);
        if (!range.Contains(keyGroup))
        {
            throw new InvalidOperationException(
                $"Key '{key}' belongs to key group {keyGroup}, which operator '{operatorName}' does not own {range}. " +
                "The key selector must return equal keys for a record every time it is called (it is called both to route the record and to scope its state).");
        }

        return keyGroup;
    }

    /// <summary>The subtask that owns <paramref name="keyGroup"/>.</summary>
    public static int OperatorIndexForKeyGroup(int maxParallelism, int parallelism, int keyGroup) =>
        (int)((long)keyGroup * parallelism / maxParallelism);

    /// <summary>The key groups owned by subtask <paramref name="operatorIndex"/>.</summary>
    public static KeyGroupRange RangeForOperator(int maxParallelism, int parallelism, int operatorIndex)
    {
        var start = (int)(((long)operatorIndex * maxParallelism + parallelism - 1) / parallelism);
        var end = (int)((((long)operatorIndex + 1) * maxParallelism - 1) / parallelism);
        return new KeyGroupRange(start, end);
    }

    // Murmur3's finalizer: spreads hashes whose low bits are poor (small integers) over all key groups.
    private static uint Mix(uint h)
    {
        h ^= h >> 16;
        h *= 0x85ebca6b;
        h ^= h >> 13;
        h *= 0xc2b2ae35;
        h ^= h >> 16;
        return h;
    }
}

/// <summary>
/// Hashes keys the same way in every process (unlike <see cref="object.GetHashCode"/> for strings), because key
/// groups are stored in checkpoints and must be recomputed identically after a restart or on another silo.
/// </summary>
public interface IKeyHasher<in TKey>
{
    /// <summary>A hash of <paramref name="key"/> that is stable across processes and machines.</summary>
    int Hash(TKey key);
}

/// <summary>Creates <see cref="IKeyHasher{TKey}"/> instances.</summary>
public static class KeyHashers
{
    /// <summary>The hasher for <typeparamref name="TKey"/>: direct for primitives, strings and GUIDs, otherwise over the key's Orleans serialization.</summary>
    public static IKeyHasher<TKey> Create<TKey>(Serializer serializer)
    {
        object hasher = typeof(TKey) switch
        {
            var t when t == typeof(long) => new Int64Hasher(),
            var t when t == typeof(ulong) => new UInt64Hasher(),
            var t when t == typeof(int) => new Int32Hasher(),
            var t when t == typeof(uint) => new UInt32Hasher(),
            var t when t == typeof(short) => new Int16Hasher(),
            var t when t == typeof(char) => new CharHasher(),
            var t when t == typeof(byte) => new ByteHasher(),
            var t when t == typeof(bool) => new BoolHasher(),
            var t when t == typeof(string) => new StringHasher(),
            var t when t == typeof(Guid) => new GuidHasher(),
            var t when typeof(Functions.IStableKeyHash).IsAssignableFrom(t) => new StableKeyHasher<TKey>(),
            var t when typeof(System.Runtime.CompilerServices.ITuple).IsAssignableFrom(t) => new StructuralHasher<TKey>(serializer),
            _ => new SerializedHasher<TKey>(serializer.GetSerializer<TKey>()),
        };
        return (IKeyHasher<TKey>)hasher;
    }

    private static int Fold(ulong v) => (int)(v ^ (v >> 32));

    private sealed class Int64Hasher : IKeyHasher<long>
    {
        public int Hash(long key) => Fold((ulong)key);
    }

    private sealed class UInt64Hasher : IKeyHasher<ulong>
    {
        public int Hash(ulong key) => Fold(key);
    }

    private sealed class Int32Hasher : IKeyHasher<int>
    {
        public int Hash(int key) => key;
    }

    private sealed class UInt32Hasher : IKeyHasher<uint>
    {
        public int Hash(uint key) => (int)key;
    }

    private sealed class Int16Hasher : IKeyHasher<short>
    {
        public int Hash(short key) => key;
    }

    private sealed class CharHasher : IKeyHasher<char>
    {
        public int Hash(char key) => key;
    }

    private sealed class ByteHasher : IKeyHasher<byte>
    {
        public int Hash(byte key) => key;
    }

    private sealed class BoolHasher : IKeyHasher<bool>
    {
        public int Hash(bool key) => key ? 1 : 0;
    }

    private sealed class StringHasher : IKeyHasher<string>
    {
        public int Hash(string key) => (int)XxHash32.HashToUInt32(MemoryMarshal.AsBytes(key.AsSpan()));
    }

    private sealed class GuidHasher : IKeyHasher<Guid>
    {
        public int Hash(Guid key)
        {
            Span<byte> bytes = stackalloc byte[16];
            key.TryWriteBytes(bytes);
            return (int)XxHash32.HashToUInt32(bytes);
        }
    }

    private sealed class StableKeyHasher<TKey> : IKeyHasher<TKey>
    {
        public int Hash(TKey key) => ((Functions.IStableKeyHash)key!).StableHash();
    }

    /// <summary>
    /// Tuples hash element by element: their serialization is not canonical (Orleans writes a string that occurs
    /// twice in one value as a reference to the first), so equal tuples could otherwise hash differently.
    /// </summary>
    private sealed class StructuralHasher<TKey>(Serializer serializer) : IKeyHasher<TKey>
    {
        public int Hash(TKey key) => HashOf(key, serializer);
    }

    /// <summary>A stable hash of a value whose type is only known at run time.</summary>
    internal static int HashOf(object? value, Serializer serializer) => value switch
    {
        null => 0,
        long v => Fold((ulong)v),
        ulong v => Fold(v),
        int v => v,
        uint v => (int)v,
        short v => v,
        ushort v => v,
        char v => v,
        byte v => v,
        sbyte v => v,
        bool v => v ? 1 : 0,
        string v => (int)XxHash32.HashToUInt32(MemoryMarshal.AsBytes(v.AsSpan())),
        Guid v => new GuidHasher().Hash(v),
        Functions.IStableKeyHash v => v.StableHash(),
        System.Runtime.CompilerServices.ITuple tuple => CombineElements(tuple, serializer),
        _ => (int)XxHash32.HashToUInt32(serializer.SerializeToArray(value)),
    };

    private static int CombineElements(System.Runtime.CompilerServices.ITuple tuple, Serializer serializer)
    {
        // A fixed combination (not System.HashCode, which is seeded per process).
        var hash = 17;
        for (var i = 0; i < tuple.Length; i++)
        {
            hash = unchecked((hash * 31) + HashOf(tuple[i], serializer));
        }

        return hash;
    }

    private sealed class SerializedHasher<TKey>(Serializer<TKey> serializer) : IKeyHasher<TKey>
    {
        public int Hash(TKey key) => (int)XxHash32.HashToUInt32(serializer.SerializeToArray(key));
    }
}
