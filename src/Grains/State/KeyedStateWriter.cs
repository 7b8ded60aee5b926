using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Numerics;
using System.Runtime.CompilerServices;
using Orleans.Serialization;
using Orleans.Serialization.Buffers;
using Orleans.Serialization.Codecs;
using Orleans.Serialization.Session;

namespace Platform.State;

/// <summary>
/// Writes a <see cref="KeyedStateFile"/> into a stream through one pooled buffer: it counts and hashes the bytes (so
/// offsets and the checksum need no seekable stream), and a backend serializes keys and values straight into the
/// buffer, with no array per entry.
/// </summary>
/// <remarks>
/// The entries of one state in one key group are announced by <see cref="BeginEntries"/> and then written one by one.
/// The buffer goes to the stream in large pieces only: every write into a pipe's stream costs far more than a copy (the
/// checkpointing benchmark's profile). Not thread-safe.
/// </remarks>
internal sealed class KeyedStateWriter : IDisposable
{
    private const int BufferSize = 64 * 1024;

    // Values up to this size are serialized into the buffer (grown for them); larger ones take Orleans' pooled path.
    private const int MaxInlineEntrySize = 16 << 20;

    private readonly Stream _inner;
    private readonly SerializerSession? _session;
    private readonly XxHash64 _hash = new();
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
    private int _position;
    private int _hashed;
    private long _flushed;
    private int _remaining;

    // Room kept free before an entry is serialized in place: twice the largest entry seen, so that an entry seldom
    // fails to fit and is serialized twice.
    private int _reserve = 1024;

    /// <param name="inner">The destination; it need not be seekable.</param>
    /// <param name="session">The session for <see cref="WriteEntry{TKey, TValue}"/>, reset before every key and value so that each reads back on its own.</param>
    public KeyedStateWriter(Stream inner, SerializerSession? session = null)
    {
        _inner = inner;
        _session = session;
    }

    /// <summary>The bytes written so far, buffered ones included.</summary>
    public long Written => _flushed + _position;

    /// <summary>The entries announced by <see cref="BeginEntries"/> and not yet written.</summary>
    public int Remaining => _remaining;

    /// <summary>The XxHash64 of every byte written so far.</summary>
    public ulong Checksum
    {
        get
        {
            HashBuffered();
            return _hash.GetCurrentHashAsUInt64();
        }
    }

    /// <summary>Announces the entries of one state in one key group: exactly <paramref name="count"/> entry writes follow.</summary>
    public void BeginEntries(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_remaining != 0)
        {
            throw new InvalidOperationException($"{_remaining} announced entries were not written.");
        }

        WriteInt32(count);
        _remaining = count;
    }

    /// <summary>Writes an entry whose key and value are already serialized.</summary>
    public void WriteEntry(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        TakeEntry();
        var length = 8 + key.Length + value.Length;
        if (length > _buffer.Length - _position)
        {
            Flush(toInner: false);
        }

        if (length <= _buffer.Length - _position)
        {
            var span = _buffer.AsSpan(_position);
            BinaryPrimitives.WriteInt32LittleEndian(span, key.Length);
            key.CopyTo(span[4..]);
            BinaryPrimitives.WriteInt32LittleEndian(span[(4 + key.Length)..], value.Length);
            value.CopyTo(span[(8 + key.Length)..]);
            _position += length;
            return;
        }

        WriteInt32(key.Length);
        WriteBytes(key);
        WriteInt32(value.Length);
        WriteBytes(value);
    }

    /// <summary>
    /// Serializes an entry with Orleans' serializer straight into the buffer: the same bytes as
    /// <see cref="Serializer{T}.SerializeToArray"/>, without the two arrays.
    /// </summary>
    public void WriteEntry<TKey, TValue>(TKey key, TValue value, Serializer<TKey> keys, Serializer<TValue> values)
    {
        var session = _session ?? throw new InvalidOperationException("This writer has no serializer session.");
        TakeEntry();
        while (true)
        {
            if (_buffer.Length - _position < _reserve)
            {
                Flush(toInner: false);
                if (_buffer.Length < _reserve)
                {
                    Grow((int)BitOperations.RoundUpToPowerOf2((uint)_reserve));
                }
            }

            var span = _buffer.AsSpan(_position);
            if (TrySerialize(keys, key, session, span[4..], out var keyLength)
                && span.Length >= 8 + keyLength
                && TrySerialize(values, value, session, span[(8 + keyLength)..], out var valueLength))
            {
                BinaryPrimitives.WriteInt32LittleEndian(span, keyLength);
                BinaryPrimitives.WriteInt32LittleEndian(span[(4 + keyLength)..], valueLength);
                var length = 8 + keyLength + valueLength;
                _position += length;
                _reserve = Math.Max(_reserve, Math.Min(2 * length, MaxInlineEntrySize));
                return;
            }

            // It did not fit: try again in the whole buffer, then in a larger one.
            if (_position > 0)
            {
                Flush(toInner: false);
            }
            else if (_buffer.Length < MaxInlineEntrySize)
            {
                Grow(_buffer.Length * 4);
            }
            else
            {
                break;
            }
        }

        // Larger than the largest buffer: serialize it on its own (this also reports a value that cannot be serialized).
        _remaining++;
        WriteEntry(keys.SerializeToArray(key), values.SerializeToArray(value));
    }

    /// <summary>Writes a little-endian 32-bit integer.</summary>
    public void WriteInt32(int value)
    {
        Ensure(4);
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(_position), value);
        _position += 4;
    }

    /// <summary>Writes a little-endian 64-bit integer.</summary>
    public void WriteInt64(long value)
    {
        Ensure(8);
        BinaryPrimitives.WriteInt64LittleEndian(_buffer.AsSpan(_position), value);
        _position += 8;
    }

    /// <summary>Writes bytes as they are.</summary>
    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length <= _buffer.Length - _position)
        {
            bytes.CopyTo(_buffer.AsSpan(_position));
            _position += bytes.Length;
            return;
        }

        Flush(toInner: false);
        if (bytes.Length <= _buffer.Length)
        {
            bytes.CopyTo(_buffer);
            _position = bytes.Length;
            return;
        }

        _hash.Append(bytes);
        _inner.Write(bytes);
        _flushed += bytes.Length;
    }

    /// <summary>Passes the buffered bytes on and flushes the destination.</summary>
    public void Flush() => Flush(toInner: true);

    /// <summary>Returns the buffer to the pool; bytes not yet flushed are dropped (a write that failed half-way goes no further).</summary>
    public void Dispose()
    {
        if (_buffer.Length == 0)
        {
            return;
        }

        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
        _position = 0;
        _hashed = 0;
    }

    private static bool TrySerialize<T>(Serializer<T> serializer, T value, SerializerSession session, Span<byte> destination, out int written)
    {
        session.Reset();
        try
        {
            if (!TryWriteDirect(value, destination, session, out written))
            {
                var span = destination;
                serializer.Serialize(value, ref span, session);
                written = span.Length;
            }
        }
        catch (InvalidOperationException)
        {
            // Orleans' span writer reports a destination that is too small this way; any other failure recurs on the
            // pooled path, which reports it.
            written = 0;
            return false;
        }

        return true;
    }

    // Common key and value types go to Orleans' own codec directly: the bytes Serializer<T> writes (it calls the same
    // codec with the same field id and type), without its generic virtual call per value, which was a third of the
    // cost of writing a snapshot of longs. KeyedStateWriterTests compare the bytes with SerializeToArray's.
    private static bool TryWriteDirect<T>(T value, Span<byte> destination, SerializerSession session, out int written)
    {
        var writer = Writer.Create(destination, session);
        if (typeof(T) == typeof(long))
        {
            Int64Codec.WriteField(ref writer, 0, Unsafe.As<T, long>(ref value));
        }
        else if (typeof(T) == typeof(int))
        {
            Int32Codec.WriteField(ref writer, 0, Unsafe.As<T, int>(ref value));
        }
        else if (typeof(T) == typeof(ulong))
        {
            UInt64Codec.WriteField(ref writer, 0, Unsafe.As<T, ulong>(ref value));
        }
        else if (typeof(T) == typeof(uint))
        {
            UInt32Codec.WriteField(ref writer, 0, Unsafe.As<T, uint>(ref value));
        }
        else if (typeof(T) == typeof(Guid))
        {
            GuidCodec.WriteField(ref writer, 0, Unsafe.As<T, Guid>(ref value));
        }
        else if (typeof(T) == typeof(string) && value is string text)
        {
            StringCodec.WriteField(ref writer, 0, text);
        }
        else
        {
            written = 0;
            return false;
        }

        writer.Commit();
        written = writer.Position;
        return true;
    }

    private void TakeEntry()
    {
        if (_remaining == 0)
        {
            throw new InvalidOperationException("More entries were written than announced.");
        }

        _remaining--;
    }

    private void Ensure(int bytes)
    {
        if (_buffer.Length - _position < bytes)
        {
            Flush(toInner: false);
        }
    }

    private void Grow(int size)
    {
        var larger = ArrayPool<byte>.Shared.Rent(size);
        _buffer.AsSpan(0, _position).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }

    private void HashBuffered()
    {
        _hash.Append(_buffer.AsSpan(_hashed, _position - _hashed));
        _hashed = _position;
    }

    private void Flush(bool toInner)
    {
        if (_position > 0)
        {
            HashBuffered();
            _inner.Write(_buffer, 0, _position);
            _flushed += _position;
            _position = 0;
            _hashed = 0;
        }

        if (toInner)
        {
            _inner.Flush();
        }
    }
}
