using Platform.Connectors;

namespace Platform.Connectors;

/// <summary>Holds what a <see cref="CollectSink{T}"/> gathered, as serialized batches, for clients to read.</summary>
[KeepAlive]
internal sealed class CollectSinkGrain : Grain, ICollectSinkGrain
{
    private readonly List<byte[]> _batches = [];

    public Task Append(int attempt, int subtaskIndex, byte[] payload, int count)
    {
        _batches.Add(payload);
        return Task.CompletedTask;
    }

    public Task<List<byte[]>> ReadAll() => Task.FromResult(_batches.ToList());

    public Task Clear()
    {
        _batches.Clear();
        return Task.CompletedTask;
    }
}
