using Orleans.Serialization;
using Platform.Functions;
using Platform.State;

namespace Platform.Tasks.Network;

/// <summary>A batch sealed by a record writer and waiting to be sent.</summary>
internal readonly record struct PendingBatch(OutputChannel Channel, byte[]? Payload, int Count, ControlElement? Control);

/// <summary>Chooses the channel of each record.</summary>
internal interface IPartitioner<in T>
{
    int Select(T record);
}

internal sealed class ForwardPartitioner<T> : IPartitioner<T>
{
    public int Select(T record) => 0;
}

internal sealed class RebalancePartitioner<T>(int channels, int start) : IPartitioner<T>
{
    private int _next = start % channels;

    public int Select(T record)
    {
        var channel = _next;
        _next = channel + 1 == channels ? 0 : channel + 1;
        return channel;
    }
}

/// <summary>Sends each record to the subtask owning its key group (the channels are indexed by target subtask).</summary>
internal sealed class KeyGroupPartitioner<T, TKey>(IKeySelector<T, TKey> keySelector, IKeyHasher<TKey> hasher, int maxParallelism, int parallelism)
    : IPartitioner<T>
    where TKey : notnull
{
    public int Select(T record)
    {
        var keyGroup = KeyGroupAssignment.AssignToKeyGroup(hasher.Hash(keySelector.GetKey(record)), maxParallelism);
        return KeyGroupAssignment.OperatorIndexForKeyGroup(maxParallelism, parallelism, keyGroup);
    }
}

/// <summary>The part of a record writer that does not depend on the record type.</summary>
internal interface IRecordWriter
{
    /// <summary>Seals every partially filled buffer into a pending batch.</summary>
    void SealAll();

    /// <summary>The writer's channels.</summary>
    IReadOnlyList<OutputChannel> Channels { get; }
}

/// <summary>
/// The end of a task's chain for one outgoing edge: partitions records over the edge's channels and serializes
/// them into batches of at most <c>batchSize</c> records. Sealed batches queue in <paramref name="pending"/> until
/// the task's loop sends them (sending waits for credit, which a synchronous <see cref="Collect"/> cannot do).
/// </summary>
internal sealed class RecordWriter<T>(
    OutputChannel[] channels,
    IPartitioner<T> partitioner,
    Serializer<T[]> serializer,
    int batchSize,
    Queue<PendingBatch> pending,
    TaskCounters counters,
    Operators.OperatorContext? eventTime = null,
    Serializer<TimestampedBatch<T>>? timestampedSerializer = null) : ICollector<T>, IRecordWriter
{
    private readonly T[][] _buffers = [.. channels.Select(_ => new T[batchSize])];
    private readonly long[][]? _timestamps = eventTime is null ? null : [.. channels.Select(_ => new long[batchSize])];
    private readonly int[] _counts = new int[channels.Length];

    public IReadOnlyList<OutputChannel> Channels => channels;

    public void Collect(T record)
    {
        var channel = partitioner.Select(record);
        var buffer = _buffers[channel];
        var count = _counts[channel];
        if (_timestamps is not null)
        {
            // The record's event time goes with it: the current timestamp of the chain that emits it.
            _timestamps[channel][count] = eventTime!.CurrentTimestamp;
        }

        buffer[count++] = record;
        counters.RecordsOut++;
        if (count == buffer.Length)
        {
            pending.Enqueue(new PendingBatch(channels[channel], Serialize(buffer, _timestamps?[channel]), count, null));
            Array.Clear(buffer);
            count = 0;
        }

        _counts[channel] = count;
    }

    private byte[] Serialize(T[] records, long[]? timestamps) =>
        timestamps is null
            ? serializer.SerializeToArray(records)
            : timestampedSerializer!.SerializeToArray(new TimestampedBatch<T> { Records = records, Timestamps = timestamps.Length == records.Length ? timestamps : timestamps[..records.Length] });

    public void SealAll()
    {
        for (var channel = 0; channel < channels.Length; channel++)
        {
            var count = _counts[channel];
            if (count == 0)
            {
                continue;
            }

            var records = _buffers[channel].AsSpan(0, count).ToArray();
            pending.Enqueue(new PendingBatch(channels[channel], Serialize(records, _timestamps?[channel]), count, null));
            Array.Clear(_buffers[channel], 0, count);
            _counts[channel] = 0;
        }
    }
}

/// <summary>A batch of an event-time job: the records and the timestamp of each (<see cref="long.MinValue"/> for none).</summary>
[GenerateSerializer, Alias("platform.TimestampedBatch`1")]
internal sealed class TimestampedBatch<T>
{
    [Id(0)] public T[] Records { get; set; } = [];

    [Id(1)] public long[] Timestamps { get; set; } = [];
}

/// <summary>Sends every record to several outputs (an operator whose stream feeds several operators).</summary>
internal sealed class BroadcastCollector<T>(ICollector<T>[] outputs) : ICollector<T>
{
    public void Collect(T record)
    {
        foreach (var output in outputs)
        {
            output.Collect(record);
        }
    }
}

/// <summary>A subtask's counters, updated on the hot path without synchronization (one grain, one thread at a time).</summary>
internal sealed class TaskCounters
{
    public long RecordsIn;
    public long RecordsOut;
}
