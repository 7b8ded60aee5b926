using Platform.Checkpointing;

namespace Platform.Storage;

/// <summary>
/// A checkpoint storage the silo offers, registered under a name (keyed service). Jobs reach the storage registered
/// under their storage kind's name (<c>FileSystem</c>, <c>InMemory</c>, <c>AzureBlob</c>); the silo's default kind names
/// the one jobs get that do not choose.
/// </summary>
internal interface ICheckpointStorageProvider
{
    /// <summary>The kind of storage this is.</summary>
    CheckpointStorageKind Kind { get; }

    /// <summary>Why jobs cannot use this storage on these silos (it is not configured), or <c>null</c> when they can.</summary>
    string? Unavailable { get; }

    /// <summary>The directory a job's checkpoints go to, given the job's own choice: a full path for a file system, else <c>null</c>.</summary>
    string? ResolveDirectory(string? jobDirectory);

    /// <summary>The storage for a job, rooted at what <see cref="ResolveDirectory"/> returned.</summary>
    ICheckpointStorage Create(string? directory);
}

/// <summary>
/// Where snapshots of one storage kind live outside a job's own checkpoints: new savepoints, snapshots to restore
/// from, disposal, and the storage that reads and writes a <see cref="SnapshotLocation"/>. Savepoint code asks the
/// kind's implementation instead of switching on the kind.
/// </summary>
internal interface ISnapshotLocations
{
    /// <summary>The storage kind whose locations these are.</summary>
    CheckpointStorageKind Kind { get; }

    /// <summary>Whether <paramref name="path"/> (a savepoint target or restore path) is one of this kind (a directory, a blob URL).</summary>
    bool Claims(string path);

    /// <summary>A new savepoint's location named <paramref name="name"/>, under <paramref name="target"/> or, without one, under this kind's savepoint root.</summary>
    /// <exception cref="ArgumentException">The target is outside the savepoint root, or the silos cannot use this kind.</exception>
    SnapshotLocation NewSavepoint(string name, string? target);

    /// <summary>The location of a savepoint or retained checkpoint to restore from.</summary>
    /// <exception cref="ArgumentException">The path is outside the allowed roots or holds no snapshot.</exception>
    SnapshotLocation ForRestore(string path, CheckpointingSettings? job);

    /// <summary>The location of the savepoint at <paramref name="path"/>, which may be disposed.</summary>
    /// <exception cref="ArgumentException">The path is outside the savepoint root or holds no savepoint.</exception>
    Task<SnapshotLocation> ForDisposalAsync(string path);

    /// <summary>The storage that reads and writes the snapshot's files.</summary>
    ICheckpointStorage StorageAt(SnapshotLocation location);

    /// <summary>Reads and verifies the snapshot's <c>_metadata</c>.</summary>
    Task<CheckpointMetadata> ReadMetadataAsync(SnapshotLocation location);

    /// <summary>Commits a savepoint by writing its <c>_metadata</c>, after every state file.</summary>
    Task WriteMetadataAsync(SnapshotLocation location, CheckpointMetadata metadata);

    /// <summary>Deletes the snapshot, its <c>_metadata</c> first.</summary>
    Task DeleteAsync(SnapshotLocation location);
}
