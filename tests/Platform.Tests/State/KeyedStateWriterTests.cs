using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Orleans.Serialization.Session;
using Platform.State;

namespace Platform.Tests.State;

/// <summary>
/// The state-file writer serializes keys and values in place (some through Orleans' codecs directly); the files it
/// writes must be byte for byte those of serializing each key and value to its own array, the format every existing
/// checkpoint has, and which the RocksDB backend uses as its keys.
/// </summary>
public sealed class KeyedStateWriterTests
{
    private const int MaxParallelism = 128;
    private static readonly IServiceProvider Services = new ServiceCollection().AddSerializer().BuildServiceProvider();
    private static readonly Serializer Serializer = Services.GetRequiredService<Serializer>();
    private static readonly SerializerSessionPool Sessions = Services.GetRequiredService<SerializerSessionPool>();

    // Around every boundary at which Orleans' integer codecs change their encoding (2^20, the 32-bit range, 2^41).
    private static readonly long[] Longs =
    [
        .. Enumerable.Range(-300, 600).Select(i => (long)i),
        .. new[] { 20, 31, 32, 41, 62, 63 }.SelectMany(b => new[] { (1L << b) - 1, 1L << b, (1L << b) + 1, -(1L << b) + 1, -(1L << b), -(1L << b) - 1 }),
        int.MaxValue, int.MinValue, (long)int.MaxValue + 1, (long)int.MinValue - 1, long.MaxValue, long.MinValue,
        .. Random(seed: 1, count: 2_000),
    ];

    [Fact]
    public void Longs_serialized_in_place_are_the_bytes_Orleans_writes()
    {
        AssertSameAsSerializingEachToAnArray(Longs, Longs.Reverse().ToArray());
    }

    [Fact]
    public void Other_primitive_keys_and_values_serialized_in_place_are_the_bytes_Orleans_writes()
    {
        AssertSameAsSerializingEachToAnArray(Longs.Select(v => unchecked((int)v)).ToArray(), Longs.Select(v => unchecked((uint)v)).ToArray());
        AssertSameAsSerializingEachToAnArray(Longs.Select(v => unchecked((ulong)v)).ToArray(), Longs.Select(v => new Guid((int)v, (short)v, (short)(v >> 16), new byte[8])).ToArray());
        string[] strings = ["", "a", "héllo", "日本語のキー", new string('x', 5_000), .. Longs.Take(500).Select(v => $"key-{v}")];

        // A value equal to (here: the same object as) its key is written in full, not as a reference into the key.
        AssertSameAsSerializingEachToAnArray(strings, strings);
    }

    [Fact]
    public void Values_of_other_types_serialized_in_place_are_the_bytes_Orleans_writes()
    {
        var keys = Longs.Take(300).ToArray();
        AssertSameAsSerializingEachToAnArray(keys, keys.Select(k => new List<int> { (int)k, 1, 2 }).ToArray());
        AssertSameAsSerializingEachToAnArray(keys, keys.Select(k => k % 3 == 0 ? null : $"v{k}").ToArray());
    }

    [Fact]
    public void Entries_larger_than_the_buffer_are_written_whole_and_read_back()
    {
        // 64 KiB is the buffer; 20 MiB is beyond what is serialized in place at all.
        long[] keys = [1, 2, 3, 4];
        string[] values = [new string('a', 10), new string('b', 300_000), new string('c', 10), new string('d', 20 << 20)];
        var file = WriteInPlace(keys, values);

        Assert.Equal(WriteArrays(keys, values), file);
        var read = KeyedStateFile.Read(file, "big", new KeyGroupRange(0, MaxParallelism - 1), MaxParallelism).Single().State.Entries;
        Assert.Equal(values, read.Select(e => Serializer.GetSerializer<string>().Deserialize(e.Value)));
    }

    [Fact]
    public void Writing_more_or_fewer_entries_than_announced_is_refused()
    {
        var range = new KeyGroupRange(0, 0);
        using var session = Sessions.GetSession();
        var longs = Serializer.GetSerializer<long>();

        Assert.Throws<InvalidOperationException>(() => KeyedStateFile.Write(new MemoryStream(), MaxParallelism, range, [("count", StateKind.Value)], session, (_, _, writer) =>
        {
            writer.BeginEntries(1);
            writer.WriteEntry(1L, 1L, longs, longs);
            writer.WriteEntry(2L, 2L, longs, longs);
        }));
        var fewer = Assert.Throws<InvalidOperationException>(() => KeyedStateFile.Write(new MemoryStream(), MaxParallelism, range, [("count", StateKind.Value)], session, (_, _, writer) =>
        {
            writer.BeginEntries(2);
            writer.WriteEntry(1L, 1L, longs, longs);
        }));
        Assert.Contains("1 missing", fewer.Message);
        Assert.Throws<InvalidOperationException>(() => KeyedStateFile.Write(new MemoryStream(), MaxParallelism, range, [("count", StateKind.Value)], session, (_, _, _) => { }));
    }

    private static void AssertSameAsSerializingEachToAnArray<TKey, TValue>(TKey[] keys, TValue[] values)
    {
        var inPlace = WriteInPlace(keys, values);
        var arrays = WriteArrays(keys, values);
        Assert.Equal(Convert.ToHexString(arrays), Convert.ToHexString(inPlace));
    }

    // Every entry in one key group and one state: the key group's block is then the whole list, in order.
    private static byte[] WriteInPlace<TKey, TValue>(TKey[] keys, TValue[] values)
    {
        var keySerializer = Serializer.GetSerializer<TKey>();
        var valueSerializer = Serializer.GetSerializer<TValue>();
        using var session = Sessions.GetSession();
        using var stream = new MemoryStream();
        KeyedStateFile.Write(stream, MaxParallelism, new KeyGroupRange(5, 5), [("state", StateKind.Value)], session, (_, _, writer) =>
        {
            writer.BeginEntries(keys.Length);
            for (var i = 0; i < keys.Length; i++)
            {
                writer.WriteEntry(keys[i], values[i], keySerializer, valueSerializer);
            }
        });
        return stream.ToArray();
    }

    // The format as the writer before in-place serialization wrote it (BinaryWriter, one array per key and value), for
    // a file of one key group and one state.
    private static byte[] WriteArrays<TKey, TValue>(TKey[] keys, TValue[] values)
    {
        using var stream = new MemoryStream();
        using var writer = new BinaryWriter(stream);
        writer.Write("PKST"u8);
        writer.Write(KeyedStateFile.CurrentVersion);
        writer.Write(MaxParallelism);
        writer.Write(5);
        writer.Write(5);
        writer.Write(1);
        writer.Write("state");
        writer.Write((byte)StateKind.Value);
        var block = stream.Position;
        writer.Write(keys.Length);
        for (var i = 0; i < keys.Length; i++)
        {
            var key = Serializer.GetSerializer<TKey>().SerializeToArray(keys[i]);
            var value = Serializer.GetSerializer<TValue>().SerializeToArray(values[i]);
            writer.Write(key.Length);
            writer.Write(key);
            writer.Write(value.Length);
            writer.Write(value);
        }

        var index = stream.Position;
        writer.Write(block);
        writer.Write(index);
        writer.Flush();
        writer.Write(System.IO.Hashing.XxHash64.HashToUInt64(stream.ToArray()));
        writer.Write("PKST"u8);
        writer.Flush();
        return stream.ToArray();
    }

    private static IEnumerable<long> Random(int seed, int count)
    {
        var random = new Random(seed);
        for (var i = 0; i < count; i++)
        {
            // Magnitudes spread over every bit length, both signs.
            var bits = random.Next(0, 64);
            var value = random.NextInt64() >> (63 - bits);
            yield return random.Next(2) == 0 ? value : -value;
        }
    }
}
