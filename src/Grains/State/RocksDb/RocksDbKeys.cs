using System.Buffers.Binary;

namespace Platform.State.RocksDb;

/// <summary>
/// The layout of RocksDB keys. Every key starts with its key group as two big-endian bytes, so that a key-group range
/// is one contiguous scan (snapshots, rescaling):
/// <code>
/// value, list, reducing, aggregating state:  [key group: u16 BE][serialized key]
/// map state:                                 [key group: u16 BE][key length: i32 BE][serialized key][serialized user key]
/// </code>
/// The length in map keys makes one key's entries a contiguous prefix range and lets a snapshot split the primary key
/// from the user key without deserializing it. Keys are serialized with Orleans' serializer: the bytes of a key after
/// the key group are exactly the key bytes of the <see cref="KeyedStateFile"/> format.
/// </summary>
internal static class RocksDbKeys
{
    public const int KeyGroupPrefixLength = 2;

    public const int MapPrefixHeaderLength = KeyGroupPrefixLength + 4;

    /// <summary>The two-byte prefix of every key of <paramref name="keyGroup"/>.</summary>
    public static byte[] KeyGroupPrefix(int keyGroup)
    {
        var prefix = new byte[KeyGroupPrefixLength];
        BinaryPrimitives.WriteUInt16BigEndian(prefix, checked((ushort)keyGroup));
        return prefix;
    }

    /// <summary>The key group a RocksDB key belongs to.</summary>
    public static int KeyGroupOf(ReadOnlySpan<byte> key) => BinaryPrimitives.ReadUInt16BigEndian(key);

    /// <summary>The key of a value, list, reducing or aggregating state entry.</summary>
    public static byte[] StateKey(int keyGroup, ReadOnlySpan<byte> serializedKey)
    {
        var key = new byte[KeyGroupPrefixLength + serializedKey.Length];
        BinaryPrimitives.WriteUInt16BigEndian(key, checked((ushort)keyGroup));
        serializedKey.CopyTo(key.AsSpan(KeyGroupPrefixLength));
        return key;
    }

    /// <summary>The prefix shared by every entry of one key's map.</summary>
    public static byte[] MapPrefix(int keyGroup, ReadOnlySpan<byte> serializedKey)
    {
        var prefix = new byte[MapPrefixHeaderLength + serializedKey.Length];
        BinaryPrimitives.WriteUInt16BigEndian(prefix, checked((ushort)keyGroup));
        BinaryPrimitives.WriteInt32BigEndian(prefix.AsSpan(KeyGroupPrefixLength), serializedKey.Length);
        serializedKey.CopyTo(prefix.AsSpan(MapPrefixHeaderLength));
        return prefix;
    }

    /// <summary>The key of one map entry: a key's map prefix followed by the serialized user key.</summary>
    public static byte[] MapKey(ReadOnlySpan<byte> mapPrefix, ReadOnlySpan<byte> serializedUserKey)
    {
        var key = new byte[mapPrefix.Length + serializedUserKey.Length];
        mapPrefix.CopyTo(key);
        serializedUserKey.CopyTo(key.AsSpan(mapPrefix.Length));
        return key;
    }

    /// <summary>The length of the map prefix (key group, length, primary key) of a map entry's key.</summary>
    public static int MapPrefixLength(ReadOnlySpan<byte> mapKey) =>
        MapPrefixHeaderLength + BinaryPrimitives.ReadInt32BigEndian(mapKey[KeyGroupPrefixLength..]);

    /// <summary>
    /// The smallest key greater than every key that starts with <paramref name="prefix"/> (an exclusive upper bound),
    /// or <c>null</c> when there is none (the prefix is all 0xFF).
    /// </summary>
    public static byte[]? PrefixEnd(ReadOnlySpan<byte> prefix)
    {
        var end = prefix.ToArray();
        for (var i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] != 0xFF)
            {
                end[i]++;
                return end[..(i + 1)];
            }
        }

        return null;
    }
}
