using Orleans.Serialization;
using Platform.Functions;

namespace Platform.Tasks.Network;

/// <summary>
/// The receiving end of a channel: reorders batches by sequence number (calls between silos can overtake each
/// other) and hands them to the task's loop in order. The sender's window bounds how many can wait here.
/// </summary>
internal sealed class InputChannel(InputChannelSpec spec, IStreamTaskGrain upstream)
{
    private readonly Dictionary<long, ChannelBatch> _waiting = [];

    public InputChannelSpec Spec { get; } = spec;

    public IStreamTaskGrain Upstream { get; } = upstream;

    /// <summary>The sequence number of the next batch to consume (= batches consumed).</summary>
    public long NextSequence { get; private set; }

    /// <summary>The consumed count last granted to the sender.</summary>
    public long Granted { get; set; }

    public bool Ended { get; set; }

    /// <summary>Stores a received batch; false when it is a duplicate of one already consumed or waiting.</summary>
    public bool Offer(ChannelBatch batch) => batch.Sequence >= NextSequence && _waiting.TryAdd(batch.Sequence, batch);

    /// <summary>Takes the next batch in sequence, if it has arrived.</summary>
    public bool TryTake(out ChannelBatch batch)
    {
        if (_waiting.Remove(NextSequence, out batch!))
        {
            NextSequence++;
            return true;
        }

        return false;
    }
}

/// <summary>Deserializes the batches of one input gate and feeds their records to the chain's head.</summary>
internal interface IGateReader
{
    void Process(byte[] payload);
}

internal sealed class GateReader<T>(
    Serializer<T[]> serializer,
    ICollector<T> head,
    PoisonRecordHandler? poison,
    Operators.OperatorContext? eventTime = null,
    Serializer<TimestampedBatch<T>>? timestampedSerializer = null) : IGateReader
{
    public void Process(byte[] payload)
    {
        if (eventTime is not null)
        {
            ProcessTimestamped(payload);
            return;
        }

        var records = serializer.Deserialize(payload) ?? [];
        if (poison is null)
        {
            foreach (var record in records)
            {
                head.Collect(record);
            }

            return;
        }

        foreach (var record in records)
        {
            Collect(record);
        }
    }

    private void ProcessTimestamped(byte[] payload)
    {
        var batch = timestampedSerializer!.Deserialize(payload);
        var records = batch?.Records ?? [];
        for (var i = 0; i < records.Length; i++)
        {
            // Each record enters the chain with its own event time, which what the chain emits for it inherits.
            eventTime!.CurrentTimestamp = i < batch!.Timestamps.Length ? batch.Timestamps[i] : long.MinValue;
            if (poison is null)
            {
                head.Collect(records[i]);
            }
            else
            {
                Collect(records[i]);
            }
        }
    }

    private void Collect(T record)
    {
        try
        {
            head.Collect(record);
        }
        catch (Operators.OperatorException ex)
        {
            poison!.Skip(ex.OperatorName, record?.ToString(), ex);
        }
    }
}
