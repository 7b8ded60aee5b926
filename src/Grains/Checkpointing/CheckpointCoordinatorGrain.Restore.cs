using Microsoft.Extensions.Logging;
using Platform.Storage;
using Platform.Tasks;

namespace Platform.Checkpointing;

/// <summary>Restores: which checkpoint the next attempt starts from, damaged checkpoints, restore counts.</summary>
internal sealed partial class CheckpointCoordinatorGrain
{
    public async Task<RestorePoint> LatestRestorable(CheckpointingSettings settings)
    {
        var storage = EnsureStorage(settings);
        var ids = await storage.ListCheckpointsAsync(JobId);
        foreach (var id in ids.Reverse())
        {
            if (S.Unrestorable.Contains(id))
            {
                continue;
            }

            try
            {
                var metadata = await storage.ReadMetadataAsync(JobId, id);
                // Retention must not delete the checkpoint being restored until a newer one completes.
                S.PinnedForRestore = id;
                S.PinnedUntilAttempt = int.MaxValue; // set to the restoring attempt by Start
                await state.WriteStateAsync();
                return new RestorePoint(metadata);
            }
            catch (CorruptCheckpointException ex)
            {
                await MarkUnrestorable(id, ex.Message);
            }
        }

        if ((ids.Count > 0 || S.LatestCompleted is not null) && !settings.AllowStartWithoutState)
        {
            // Starting empty would rewind the sources to their beginning and replay the whole input into the sinks.
            var reasons = S.UnrestorableReasons.Count > 0 ? string.Join("; ", S.UnrestorableReasons.TakeLast(5)) : "their files are gone from " + storage.Description;
            return new RestorePoint(null, $"the job has completed checkpoints, but none can be restored ({reasons}). It is not started again with empty state; " +
                "repair or restore the checkpoint files and resume the job from one (StreamJobBuilder.RestoreFrom), or set CheckpointingSettings.AllowStartWithoutState to allow starting over");
        }

        return new RestorePoint(null);
    }

    public async Task MarkUnrestorable(long checkpointId, string reason)
    {
        _cleaner.ReportCorrupt(checkpointId, reason);
        if (S.Unrestorable.Add(checkpointId))
        {
            S.UnrestorableReasons.Add($"checkpoint {checkpointId}: {reason}");
        }

        await state.WriteStateAsync();
    }

    public async Task RecordRestore(long checkpointId)
    {
        S.Restored++;
        S.LatestRestoredId = checkpointId;
        _store.OnRestored(checkpointId);
        await state.WriteStateAsync();
    }
}
