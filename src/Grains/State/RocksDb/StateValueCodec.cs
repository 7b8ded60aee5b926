using Orleans.Serialization;
using Orleans.Serialization.Session;

namespace Platform.State.RocksDb;

/// <summary>
/// Serializes state values with Orleans' serializer into a reused scratch buffer and copies out the exact bytes,
/// which costs about half of <see cref="Serializer{T}.SerializeToArray"/> per value (no pooled buffer to rent and
/// return), with a session of its own fully reset between values instead of one rented from the pool each time
/// (a partial reset would keep the session's type references, so a value naming a type by reference could not be
/// read back in another session). Values
/// larger than the scratch buffer grow it, up to a limit beyond which the pooled path is used.
/// Not thread-safe: one per state handle, used on the task's thread.
/// </summary>
internal sealed class StateValueCodec<T>(Serializer<T> serializer, SerializerSessionPool sessions)
{
    private readonly SerializerSession _session = sessions.GetSession();

    private const int MaxScratchSize = 1 << 20;
    private byte[] _scratch = new byte[256];

    public byte[] Serialize(T value)
    {
        while (true)
        {
            Span<byte> destination = _scratch;
            try
            {
                _session.Reset();
                serializer.Serialize(value, ref destination, _session);
                return destination.ToArray();
            }
            catch (InvalidOperationException) when (_scratch.Length < MaxScratchSize)
            {
                _scratch = new byte[_scratch.Length * 4];
            }
            catch (InvalidOperationException)
            {
                return serializer.SerializeToArray(value);
            }
        }
    }

    public T Deserialize(byte[] bytes)
    {
        _session.Reset();
        return serializer.Deserialize(bytes.AsSpan(), _session)!;
    }
}
