namespace Platform.Checkpointing;

/// <summary>How a savepoint stores keyed state (Flink's savepoint formats).</summary>
[GenerateSerializer, Alias("platform.SavepointFormat")]
public enum SavepointFormat
{
    /// <summary>The backend-independent keyed-state format: restores on any backend and at any parallelism (the default).</summary>
    Portable,

    /// <summary>The backend's own files (RocksDB SSTs): faster to take and restore, readable only by the same backend.</summary>
    Native,
}

/// <summary>A completed savepoint: a self-contained directory with a <c>_metadata</c> file and every state file it needs.</summary>
[GenerateSerializer, Immutable, Alias("platform.SavepointInfo")]
public sealed record SavepointInfo
{
    /// <summary>The savepoint's directory as the silos see it, or its URL in blob storage; pass it to <see cref="RestoreSettings.Path"/> to resume.</summary>
    [Id(0)] public required string Path { get; init; }

    /// <summary>The job it was taken from.</summary>
    [Id(1)] public required string JobId { get; init; }

    /// <summary>The id it had among the job's checkpoints.</summary>
    [Id(2)] public required long CheckpointId { get; init; }

    /// <summary>The bytes of state it holds.</summary>
    [Id(3)] public long Size { get; init; }

    /// <summary>When it completed.</summary>
    [Id(4)] public DateTimeOffset CompletedAt { get; init; }
}

/// <summary>What a savepoint request asks for.</summary>
[GenerateSerializer, Immutable, Alias("platform.SavepointRequest")]
public sealed record SavepointRequest
{
    /// <summary>
    /// The directory under which the savepoint's own directory is created, which must lie under the silos'
    /// <c>Platform:SavepointDirectory</c>; or a URL in the silos' blob container under
    /// <c>{container URL}/{Platform:AzureBlob:SavepointPrefix}</c> (default <c>savepoints</c>) for a savepoint in Azure Blob
    /// storage. <c>null</c> uses the root of the silos' <c>Platform:SavepointStorage</c> (the savepoint directory by default).
    /// </summary>
    [Id(0)] public string? TargetDirectory { get; init; }

    /// <summary>Portable (default) or the backend's native format.</summary>
    [Id(1)] public SavepointFormat Format { get; init; } = SavepointFormat.Portable;

    /// <summary>
    /// A caller-chosen id that makes a retried request idempotent: the same id returns the savepoint already
    /// triggered for it instead of taking another.
    /// </summary>
    [Id(2)] public string? RequestId { get; init; }

    /// <summary>
    /// Stop the job with this savepoint (Flink's <c>stop</c>): sources stop right after it, at its offsets, and the job
    /// finishes once everything before it was processed; a job resumed from it continues with the next record.
    /// </summary>
    [Id(3)] public bool Stop { get; init; }

    /// <summary>
    /// With <see cref="Stop"/>: let bounded work finish first. Bounded sources read to the
    /// end of their input before they take the savepoint, so the job finishes with all of its bounded input processed
    /// and the savepoint holds the final state; unbounded sources stop at the savepoint as without it. Use it to end a
    /// job for good rather than to pause it.
    /// </summary>
    [Id(4)] public bool Drain { get; init; }

    /// <summary>
    /// How long a draining stop may take before its savepoint expires (the checkpoint timeout does not apply to it,
    /// since reading the rest of a bounded input can take long); <c>null</c> for 30 minutes.
    /// </summary>
    [Id(5)] public TimeSpan? DrainTimeout { get; init; }
}

/// <summary>Where a new job takes its initial state from (Flink's <c>--fromSavepoint</c>).</summary>
[GenerateSerializer, Immutable, Alias("platform.RestoreSettings")]
public sealed record RestoreSettings
{
    /// <summary>
    /// A savepoint directory, or a retained checkpoint's <c>chk-{n}</c> directory, as the silos see it; for a savepoint or
    /// checkpoint in Azure Blob storage, its URL (<c>{container URL}/{prefix}/{jobId}/chk-{n}</c> for a checkpoint), in the
    /// silos' container or one of their <c>Platform:AzureBlob:RestoreContainers</c>, under any prefix (a moved copy restores).
    /// </summary>
    [Id(0)] public required string Path { get; init; }

    /// <summary>
    /// Whether state of operators the job no longer has (no operator with the uid) may be dropped; otherwise such
    /// state fails the submission with an error that lists the uids.
    /// </summary>
    [Id(1)] public bool AllowNonRestoredState { get; init; }
}

/// <summary>Savepoint housekeeping that does not belong to a running job.</summary>
[Alias("platform.ISavepointAdminGrain")]
public interface ISavepointAdminGrain : IGrainWithIntegerKey
{
    /// <summary>Deletes a savepoint (its directory or blob folder, <c>_metadata</c> first).</summary>
    /// <exception cref="ArgumentException">The path is outside the savepoint root or is not a savepoint.</exception>
    Task Dispose(string path);
}
