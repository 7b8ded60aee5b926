using Microsoft.Extensions.Logging;
using Platform.Storage;
using Platform.Tasks;

namespace Platform.Checkpointing;

/// <summary>
/// Discards what failed or aborted checkpoints and savepoints wrote (Flink's CheckpointsCleaner). Cleanup never throws:
/// a file left behind belongs to no committed checkpoint and is swept later; a savepoint whose metadata is committed
/// is never deleted, whatever this activation believes about it.
/// </summary>
internal sealed partial class CheckpointsCleaner(ILogger logger, string jobId, CheckpointStorageFactory storageFactory)
{
    /// <summary>Deletes the files of an aborted checkpoint, or the directory of an aborted savepoint.</summary>
    public async Task DiscardAsync(PendingCheckpoint checkpoint, ICheckpointStorage? storage, IReadOnlySet<string> inUse, SharedStateRegistry registry)
    {
        try
        {
            if (checkpoint.Type.Savepoint is { } savepoint)
            {
                await DeleteSavepointAsync(savepoint);
            }
            else if (storage is not null)
            {
                await storage.DeleteCheckpointAsync(jobId, checkpoint.Id);
                await DeleteWrittenByAsync(storage, checkpoint.Id, checkpoint.Snapshots, inUse, registry);
            }
        }
        catch (Exception ex)
        {
            LogCleanupFailed(ex, jobId, checkpoint.Id);
        }
    }

    /// <summary>Deletes what a subtask wrote for a checkpoint that is no longer in progress (a late acknowledgement).</summary>
    public async Task DiscardLateAsync(long checkpointId, SubtaskSnapshot snapshot, ICheckpointStorage storage, IReadOnlySet<string> inUse, SharedStateRegistry registry)
    {
        try
        {
            await storage.DeleteCheckpointAsync(jobId, checkpointId);
            await DeleteWrittenByAsync(storage, checkpointId, [snapshot], inUse, registry);
        }
        catch (Exception ex)
        {
            LogCleanupFailed(ex, jobId, checkpointId);
        }
    }

    /// <summary>Deletes the savepoint's directory unless its metadata is committed (then it is a complete savepoint).</summary>
    public async Task DeleteSavepointAsync(SavepointTarget savepoint)
    {
        try
        {
            if (await IsCommittedAsync(savepoint))
            {
                LogKeptCommittedSavepoint(jobId, savepoint.Location.Directory);
                return;
            }

            await savepoint.Location.DeleteAsync(storageFactory);
        }
        catch (Exception ex)
        {
            // A subtask may still be writing into it; it has no _metadata, so it can never be restored.
            LogCleanupFailed(ex, jobId, -1);
        }
    }

    /// <summary>Whether a savepoint's metadata is written and intact.</summary>
    public async Task<bool> IsCommittedAsync(SavepointTarget savepoint)
    {
        try
        {
            await savepoint.Location.ReadMetadataAsync(storageFactory);
            return true;
        }
        catch (Exception ex) when (ex is CorruptCheckpointException or FileNotFoundException or DirectoryNotFoundException or ArgumentException)
        {
            return false;
        }
    }

    /// <summary>Deletes shared files that nothing references any more.</summary>
    public async Task DeleteSharedAsync(ICheckpointStorage storage, IEnumerable<string> paths, IReadOnlySet<string> inUse, SharedStateRegistry registry)
    {
        var delete = paths.Where(p => !registry.IsReferenced(p) && !inUse.Contains(p)).ToList();
        if (delete.Count > 0)
        {
            await storage.DeleteSharedStateAsync(jobId, delete);
        }
    }

    /// <summary>Reports a checkpoint that cannot be restored.</summary>
    public void ReportCorrupt(long checkpointId, string reason) => LogCorrupt(jobId, checkpointId, reason);

    /// <summary>
    /// Deletes the shared files <paramref name="checkpointId"/> uploaded for <paramref name="snapshots"/>: nothing else can
    /// reference them, since only completed checkpoints are bases.
    /// </summary>
    public Task DeleteWrittenByAsync(ICheckpointStorage storage, long checkpointId, IEnumerable<SubtaskSnapshot> snapshots, IReadOnlySet<string> inUse, SharedStateRegistry registry) =>
        DeleteSharedAsync(
            storage,
            snapshots.SelectMany(s => s.Operators).SelectMany(o => o.KeyedState?.SharedFiles ?? []).Where(f => f.WrittenBy == checkpointId).Select(f => f.Handle.Path),
            inUse,
            registry);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: deleting the files of failed checkpoint {CheckpointId} failed")]
    private partial void LogCleanupFailed(Exception exception, string jobId, long checkpointId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Job {JobId}: checkpoint {CheckpointId} cannot be restored and is skipped: {Reason}")]
    private partial void LogCorrupt(string jobId, long checkpointId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: savepoint at {Path} is committed (its _metadata is intact), so it is kept although this activation did not see it complete")]
    private partial void LogKeptCommittedSavepoint(string jobId, string path);
}
