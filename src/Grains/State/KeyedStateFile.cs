using System.IO.Hashing;
using System.Text;
using Platform.Checkpointing;

namespace Platform.State;

/// <summary>One state's entries of one key group, as serialized key and value bytes.</summary>
internal sealed record RawStateEntries(string StateName, StateKind Kind, List<(byte[] Key, byte[] Value)> Entries);

/// <summary>
/// The keyed-state snapshot format, shared by the state backends so that a snapshot can be restored by any of them
/// and at another parallelism:
/// <code>
/// "PKST" u16 version | i32 maxParallelism | i32 firstKeyGroup | i32 lastKeyGroup | i32 states × (string name, u8 kind)
/// per key group: per state: i32 entries × (i32 keyLength, key, i32 valueLength, value)
/// index: i64 offset of each key group's block | i64 index offset | u64 XxHash64 of every byte before it | "PKST"
/// </code>
/// Keys and values are serialized with Orleans' (version-tolerant) serializer. The footer's checksum makes a file
/// verify itself wherever it was moved (a savepoint); storage also keeps the file's size and checksum in its
/// <see cref="StateHandle"/>. The index lets a restoring subtask find the key groups it owns.
/// </summary>
internal static class KeyedStateFile
{
    public const ushort CurrentVersion = 2;
    private const int FooterLength = 8 + 8 + 4;
    private static readonly byte[] Magic = "PKST"u8.ToArray();

    /// <summary>Writes a snapshot into memory: <paramref name="entriesOf"/> gives the entries of a state in a key group.</summary>
    public static byte[] Write(
        int maxParallelism,
        KeyGroupRange range,
        IReadOnlyList<(string Name, StateKind Kind)> states,
        Func<int, int, IEnumerable<(byte[] Key, byte[] Value)>> entriesOf)
    {
        using var stream = new MemoryStream();
        Write(stream, maxParallelism, range, states, entriesOf);
        return stream.ToArray();
    }

    /// <summary>
    /// Writes a snapshot to <paramref name="destination"/> as it goes (one key group's entries at a time in memory);
    /// the stream need not be seekable.
    /// </summary>
    public static void Write(
        Stream destination,
        int maxParallelism,
        KeyGroupRange range,
        IReadOnlyList<(string Name, StateKind Kind)> states,
        Func<int, int, IEnumerable<(byte[] Key, byte[] Value)>> entriesOf)
    {
        var scratch = new List<(byte[] Key, byte[] Value)>();
        Write(destination, maxParallelism, range, states, session: null, (state, keyGroup, writer) =>
        {
            scratch.Clear();
            scratch.AddRange(entriesOf(state, keyGroup));
            writer.BeginEntries(scratch.Count);
            foreach (var (key, value) in scratch)
            {
                writer.WriteEntry(key, value);
            }
        });
    }

    /// <summary>
    /// Writes a snapshot to <paramref name="destination"/> as it goes: <paramref name="writeEntries"/> writes the
    /// entries of a state in a key group (<see cref="KeyedStateWriter.BeginEntries"/>, then each entry), serializing
    /// them with <paramref name="session"/> straight into the writer's buffer. The stream need not be seekable.
    /// </summary>
    public static void Write(
        Stream destination,
        int maxParallelism,
        KeyGroupRange range,
        IReadOnlyList<(string Name, StateKind Kind)> states,
        Orleans.Serialization.Session.SerializerSession? session,
        Action<int, int, KeyedStateWriter> writeEntries)
    {
        using var writer = new KeyedStateWriter(destination, session);
        writer.WriteBytes(Header(maxParallelism, range, states));

        var offsets = new long[range.Count];
        for (var keyGroup = range.Start; keyGroup <= range.End; keyGroup++)
        {
            offsets[keyGroup - range.Start] = writer.Written;
            for (var state = 0; state < states.Count; state++)
            {
                var before = writer.Written;
                writeEntries(state, keyGroup, writer);
                if (writer.Written == before || writer.Remaining != 0)
                {
                    throw new InvalidOperationException(
                        $"The entries of state '{states[state].Name}' in key group {keyGroup} were not written as announced ({writer.Remaining} missing).");
                }
            }
        }

        var indexOffset = writer.Written;
        foreach (var offset in offsets)
        {
            writer.WriteInt64(offset);
        }

        writer.WriteInt64(indexOffset);
        var checksum = writer.Checksum;
        writer.WriteInt64(unchecked((long)checksum));
        writer.WriteBytes(Magic);
        writer.Flush();
    }

    // Written as BinaryWriter writes it (strings with a 7-bit encoded length), which the reader parses.
    private static byte[] Header(int maxParallelism, KeyGroupRange range, IReadOnlyList<(string Name, StateKind Kind)> states)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            writer.Write(CurrentVersion);
            writer.Write(maxParallelism);
            writer.Write(range.Start);
            writer.Write(range.End);
            writer.Write(states.Count);
            foreach (var (name, kind) in states)
            {
                writer.Write(name);
                writer.Write((byte)kind);
            }
        }

        return stream.ToArray();
    }

    /// <summary>Reads the entries of the key groups in <paramref name="wanted"/> from a snapshot file.</summary>
    /// <exception cref="CorruptCheckpointException">The file is not a keyed-state snapshot or is damaged.</exception>
    public static IEnumerable<(int KeyGroup, RawStateEntries State)> Read(byte[] content, string path, KeyGroupRange wanted, int expectedMaxParallelism)
    {
        var result = new List<(int, RawStateEntries)>();
        try
        {
            using var stream = new MemoryStream(content, writable: false);
            using var reader = new BinaryReader(stream, Encoding.UTF8);
            if (!reader.ReadBytes(4).AsSpan().SequenceEqual(Magic))
            {
                throw new CorruptCheckpointException(path, "it is not a keyed-state snapshot (bad magic number).");
            }

            var version = reader.ReadUInt16();
            if (version != CurrentVersion)
            {
                throw new CorruptCheckpointException(path, $"its keyed-state format version {version} is not supported (this silo reads version {CurrentVersion}).");
            }

            if (content.Length < FooterLength + 6 || !content.AsSpan(content.Length - 4).SequenceEqual(Magic))
            {
                throw new CorruptCheckpointException(path, "its footer is missing; the file is truncated.");
            }

            var recorded = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(content.AsSpan(content.Length - 12));
            var actual = XxHash64.HashToUInt64(content.AsSpan(0, content.Length - 12));
            if (recorded != actual)
            {
                throw new CorruptCheckpointException(path, $"its checksum is {actual:x16} but the file records {recorded:x16}; it was altered or damaged.");
            }

            var maxParallelism = reader.ReadInt32();
            if (maxParallelism != expectedMaxParallelism)
            {
                throw new CorruptCheckpointException(path, $"it was written with max parallelism {maxParallelism}, but the job has {expectedMaxParallelism}; key groups cannot be mapped.");
            }

            var range = new KeyGroupRange(reader.ReadInt32(), reader.ReadInt32());
            var stateCount = reader.ReadInt32();
            var states = new List<(string Name, StateKind Kind)>(stateCount);
            for (var i = 0; i < stateCount; i++)
            {
                states.Add((reader.ReadString(), (StateKind)reader.ReadByte()));
            }

            stream.Position = content.Length - FooterLength;
            var indexOffset = reader.ReadInt64();

            for (var keyGroup = Math.Max(range.Start, wanted.Start); keyGroup <= Math.Min(range.End, wanted.End); keyGroup++)
            {
                stream.Position = indexOffset + (long)(keyGroup - range.Start) * 8;
                stream.Position = reader.ReadInt64();
                foreach (var (name, kind) in states)
                {
                    var count = reader.ReadInt32();
                    var entries = new List<(byte[], byte[])>(count);
                    for (var e = 0; e < count; e++)
                    {
                        var key = reader.ReadBytes(reader.ReadInt32());
                        var value = reader.ReadBytes(reader.ReadInt32());
                        entries.Add((key, value));
                    }

                    if (count > 0)
                    {
                        result.Add((keyGroup, new RawStateEntries(name, kind, entries)));
                    }
                }
            }
        }
        catch (Exception ex) when (ex is EndOfStreamException or IOException or ArgumentException or OverflowException)
        {
            throw new CorruptCheckpointException(path, $"it cannot be parsed ({ex.Message}); it is truncated or damaged.");
        }

        return result;
    }
}
