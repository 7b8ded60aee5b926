namespace Platform.Checkpointing;

/// <summary>
/// Hands out checkpoint ids (Flink's CheckpointIDCounter): strictly increasing, persisted before a trigger goes out,
/// and never at or below a checkpoint already committed in storage, even when the coordinator's own state was lost.
/// </summary>
internal sealed class CheckpointIdCounter(CoordinatorState state)
{
    /// <summary>The id the next checkpoint will get.</summary>
    public long Peek => state.NextCheckpointId;

    /// <summary>Takes the next id; the caller persists the state before using it.</summary>
    public long Next() => state.NextCheckpointId++;

    /// <summary>Moves the counter above <paramref name="newestCommitted"/>; returns the id it had when it was behind.</summary>
    public long? EnsureAbove(long newestCommitted)
    {
        if (newestCommitted < state.NextCheckpointId)
        {
            return null;
        }

        var behind = state.NextCheckpointId;
        state.NextCheckpointId = newestCommitted + 1;
        return behind;
    }
}
