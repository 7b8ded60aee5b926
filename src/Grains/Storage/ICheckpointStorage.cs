using Platform.Checkpointing;

namespace Platform.Storage;

/// <summary>
/// Where a job's checkpoints live (Flink's CheckpointStorage). Layout, for every implementation:
/// <code>
/// {root}/{jobId}/chk-{n}/_metadata   the commit record, written last and atomically
/// {root}/{jobId}/chk-{n}/...         state files owned by checkpoint n
/// {root}/{jobId}/shared/...          files shared by incremental checkpoints, deleted by the coordinator once no
///                                    retained checkpoint references them
/// </code>
/// A checkpoint without a complete <c>_metadata</c> does not exist.
/// </summary>
internal interface ICheckpointStorage
{
    /// <summary>A description for logs and errors, such as <c>file system at /var/checkpoints</c>.</summary>
    string Description { get; }

    /// <summary>Writes a state file of checkpoint <paramref name="checkpointId"/> and returns its handle (size and checksum included).</summary>
    Task<StateHandle> WriteStateAsync(string jobId, long checkpointId, string name, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default);

    /// <summary>Whether the storage keeps files shared between checkpoints (needed for incremental checkpoints).</summary>
    bool SupportsSharedState { get; }

    /// <summary>Writes a state file of checkpoint <paramref name="checkpointId"/> from a stream and returns its handle.</summary>
    Task<StateHandle> WriteStateAsync(string jobId, long checkpointId, string name, Stream content, CancellationToken cancellationToken = default);

    /// <summary>Writes a file that later checkpoints may share, as <c>shared/{name}</c>, and returns its handle.</summary>
    /// <exception cref="NotSupportedException">The storage does not keep shared files (<see cref="SupportsSharedState"/> is false).</exception>
    Task<StateHandle> WriteSharedStateAsync(string jobId, string name, Stream content, CancellationToken cancellationToken = default);

    /// <summary>Copies a state file into <paramref name="destination"/>, verifying its size and checksum at the end.</summary>
    /// <exception cref="CorruptCheckpointException">The file is missing, truncated or altered; what was copied must be discarded.</exception>
    Task ReadStateAsync(string jobId, StateHandle handle, Stream destination, CancellationToken cancellationToken = default);

    /// <summary>The paths (<c>shared/...</c>) of the job's shared files.</summary>
    Task<IReadOnlyList<string>> ListSharedStateAsync(string jobId, CancellationToken cancellationToken = default);

    /// <summary>Deletes shared files by path; missing files are not an error.</summary>
    Task DeleteSharedStateAsync(string jobId, IEnumerable<string> paths, CancellationToken cancellationToken = default);

    /// <summary>Reads a state file and verifies its size and checksum.</summary>
    /// <exception cref="CorruptCheckpointException">The file is missing, truncated or altered.</exception>
    Task<byte[]> ReadStateAsync(string jobId, StateHandle handle, CancellationToken cancellationToken = default);

    /// <summary>Commits a checkpoint by writing its metadata, atomically.</summary>
    Task WriteMetadataAsync(CheckpointMetadata metadata, CancellationToken cancellationToken = default);

    /// <summary>Reads and verifies a checkpoint's metadata.</summary>
    /// <exception cref="CorruptCheckpointException">The metadata is missing, truncated or altered.</exception>
    Task<CheckpointMetadata> ReadMetadataAsync(string jobId, long checkpointId, CancellationToken cancellationToken = default);

    /// <summary>The ids of the job's committed checkpoints (those with a metadata file), ascending.</summary>
    Task<IReadOnlyList<long>> ListCheckpointsAsync(string jobId, CancellationToken cancellationToken = default);

    /// <summary>Deletes a checkpoint and every file it owns; missing files are not an error.</summary>
    Task DeleteCheckpointAsync(string jobId, long checkpointId, CancellationToken cancellationToken = default);

    /// <summary>Deletes everything of the job that belongs to no checkpoint in <paramref name="keep"/> (aborted or half-written checkpoints).</summary>
    Task DeleteAllExceptAsync(string jobId, IReadOnlySet<long> keep, CancellationToken cancellationToken = default);
}
