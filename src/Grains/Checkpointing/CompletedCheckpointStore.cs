using Platform.Storage;

namespace Platform.Checkpointing;

/// <summary>
/// The job's completed checkpoints (Flink's CompletedCheckpointStore): which are retained, the newest one (the base of
/// incremental snapshots, which only moves forward), the shared files they reference, and retention: keep the newest
/// N restorable ones, drop the unrestorable, never the one pinned for a restore in progress.
/// </summary>
internal sealed class CompletedCheckpointStore(CoordinatorState state, string jobId, CheckpointsCleaner cleaner)
{
    private readonly HashSet<long> _retained = [];

    /// <summary>The shared files each retained checkpoint references.</summary>
    public SharedStateRegistry SharedState { get; } = new();

    /// <summary>The checkpoint storage of the job's current settings.</summary>
    public ICheckpointStorage? Storage { get; set; }

    /// <summary>The retained checkpoints known to this activation.</summary>
    public IReadOnlySet<long> Retained => _retained;

    /// <summary>The newest completed (or restored) checkpoint.</summary>
    public long? LatestCompleted => state.LatestCompleted;

    /// <summary>Whether <paramref name="checkpointId"/> is retained.</summary>
    public bool IsRetained(long checkpointId) => _retained.Contains(checkpointId);

    /// <summary>Adds a checkpoint whose metadata was just written.</summary>
    public void Add(CheckpointMetadata metadata)
    {
        _retained.Add(metadata.CheckpointId);
        SharedState.Register(metadata.CheckpointId, metadata.SharedPaths());
        // Completions are in id order (a completion subsumes older pending ones), but a restored id may be newer.
        state.LatestCompleted = Math.Max(state.LatestCompleted ?? 0, metadata.CheckpointId);
    }

    /// <summary>The job restored from <paramref name="checkpointId"/>: it is the base of the next incremental snapshots.</summary>
    public void OnRestored(long checkpointId) => state.LatestCompleted = checkpointId;

    /// <summary>
    /// Lines this activation up with what storage holds (after a re-activation or a restart): every committed checkpoint
    /// is retained and its shared files known; anything of no committed checkpoint is deleted. Returns the committed ids.
    /// </summary>
    public async Task<IReadOnlyList<long>> RecoverAsync(IReadOnlySet<string> inUse, Func<string, bool>? keep = null)
    {
        var storage = Storage!;
        var committed = await storage.ListCheckpointsAsync(jobId);
        await storage.DeleteAllExceptAsync(jobId, committed.ToHashSet());
        _retained.Clear();
        _retained.UnionWith(committed);
        await LoadAsync(committed);
        SharedState.RetainOnly(committed.ToHashSet());
        var orphans = (await storage.ListSharedStateAsync(jobId)).Where(p => !SharedState.IsReferenced(p) && !inUse.Contains(p) && keep?.Invoke(p) != true);
        await storage.DeleteSharedStateAsync(jobId, orphans);
        return committed;
    }

    /// <summary>Registers the shared files of committed checkpoints this activation has not read yet.</summary>
    public async Task LoadAsync(IEnumerable<long> committed)
    {
        foreach (var id in committed.Where(id => !SharedState.Contains(id)))
        {
            try
            {
                SharedState.Register(id, (await Storage!.ReadMetadataAsync(jobId, id)).SharedPaths());
            }
            catch (CorruptCheckpointException ex)
            {
                // It cannot be restored, so it keeps no file alive; files shared with intact checkpoints stay referenced by them.
                cleaner.ReportCorrupt(id, ex.Message);
                SharedState.Register(id, []);
            }
        }
    }

    /// <summary>Applies retention after checkpoint completions of <paramref name="attempt"/>.</summary>
    public async Task ApplyRetentionAsync(int retainedCount, int attempt, IReadOnlySet<string> inUse)
    {
        if (attempt >= state.PinnedUntilAttempt)
        {
            // The attempt that restored from the pinned checkpoint has a newer one now.
            state.PinnedForRestore = null;
        }

        var storage = Storage!;
        var committed = await storage.ListCheckpointsAsync(jobId);
        await LoadAsync(committed);
        var restorable = committed.Where(id => !state.Unrestorable.Contains(id)).OrderByDescending(id => id).ToList();
        var delete = committed.Where(id => state.Unrestorable.Contains(id)).Concat(restorable.Skip(Math.Max(1, retainedCount)));
        foreach (var old in delete.Where(id => id != state.PinnedForRestore).ToList())
        {
            await storage.DeleteCheckpointAsync(jobId, old);
            _retained.Remove(old);
            await cleaner.DeleteSharedAsync(storage, SharedState.Unregister(old), inUse, SharedState);
        }
    }

    /// <summary>Deletes every checkpoint and shared file of the job (it ended and its checkpoints are not kept).</summary>
    public async Task DeleteAllAsync()
    {
        var storage = Storage!;
        foreach (var id in await storage.ListCheckpointsAsync(jobId))
        {
            await storage.DeleteCheckpointAsync(jobId, id);
        }

        await storage.DeleteAllExceptAsync(jobId, new HashSet<long>());
        await storage.DeleteSharedStateAsync(jobId, await storage.ListSharedStateAsync(jobId));
        SharedState.RetainOnly(new HashSet<long>());
        _retained.Clear();
    }
}
