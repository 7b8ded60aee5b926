namespace Platform.Checkpointing;

/// <summary>The consistency a checkpoint guarantees (Flink's <c>CheckpointingMode</c>).</summary>
[GenerateSerializer, Alias("platform.CheckpointingMode")]
public enum CheckpointingMode
{
    /// <summary>Barriers are aligned: after recovery, every record affects the state exactly once.</summary>
    ExactlyOnce,

    /// <summary>Barriers are not aligned: nothing is lost, but records may affect the state more than once after recovery.</summary>
    AtLeastOnce,
}

/// <summary>What happens to retained checkpoints when the job is cancelled.</summary>
[GenerateSerializer, Alias("platform.CheckpointRetention")]
public enum CheckpointRetention
{
    /// <summary>Delete every checkpoint when the job is cancelled (they still survive a failure).</summary>
    DeleteOnCancellation,

    /// <summary>Keep the retained checkpoints when the job is cancelled, so it can be resumed from them.</summary>
    RetainOnCancellation,
}

/// <summary>Where checkpoints are written.</summary>
[GenerateSerializer, Alias("platform.CheckpointStorageKind")]
public enum CheckpointStorageKind
{
    /// <summary>Held by the checkpoint coordinator grain's memory: small state and tests only; lost with the coordinator.</summary>
    InMemory,

    /// <summary>A directory on a file system that every silo sees (local disk for one machine, or a shared mount).</summary>
    FileSystem,

    /// <summary>
    /// An Azure Blob Storage container that every silo reaches (configured by the silos in <c>Platform:AzureBlob</c>);
    /// survives the loss of every silo.
    /// </summary>
    AzureBlob,
}

/// <summary>
/// A job's checkpointing settings, with Flink's meanings. Checkpointing is off unless <see cref="Interval"/> is set
/// (a manual trigger still works).
/// </summary>
[GenerateSerializer, Alias("platform.CheckpointingSettings")]
public sealed record CheckpointingSettings
{
    /// <summary>How often a checkpoint is triggered; <c>null</c> turns periodic checkpoints off.</summary>
    [Id(0)] public TimeSpan? Interval { get; init; }

    /// <summary>Exactly-once (aligned barriers, the default) or at-least-once.</summary>
    [Id(1)] public CheckpointingMode Mode { get; init; } = CheckpointingMode.ExactlyOnce;

    /// <summary>A checkpoint not completed within this time is aborted and counts as failed (default 10 minutes).</summary>
    [Id(2)] public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>The least time between the end of one checkpoint and the trigger of the next (default 0).</summary>
    [Id(3)] public TimeSpan MinPauseBetweenCheckpoints { get; init; } = TimeSpan.Zero;

    /// <summary>How many checkpoints may be in progress at once (default 1).</summary>
    [Id(4)] public int MaxConcurrentCheckpoints { get; init; } = 1;

    /// <summary>How many consecutive failed checkpoints are tolerated before the job fails (default 0).</summary>
    [Id(5)] public int TolerableFailedCheckpoints { get; init; }

    /// <summary>How many completed checkpoints are kept (default 1); older ones are deleted.</summary>
    [Id(6)] public int RetainedCheckpoints { get; init; } = 1;

    /// <summary>Whether retained checkpoints survive a cancellation.</summary>
    [Id(7)] public CheckpointRetention Retention { get; init; } = CheckpointRetention.DeleteOnCancellation;

    /// <summary>Where checkpoints go; <c>null</c> uses the silo's default.</summary>
    [Id(8)] public CheckpointStorageKind? Storage { get; init; }

    /// <summary>The root directory of file-system storage; <c>null</c> uses the silo's default.</summary>
    [Id(9)] public string? Directory { get; init; }

    /// <summary>
    /// Whether backends that support it take incremental checkpoints (RocksDB: upload only the SST files the storage
    /// does not hold yet); <c>false</c> takes full checkpoints in the portable format; <c>null</c> uses the silo's
    /// default (<c>Platform:RocksDb:IncrementalCheckpoints</c>, on unless set). Ignored by the heap backend, and by
    /// in-memory storage, which only holds full checkpoints.
    /// </summary>
    [Id(10)] public bool? Incremental { get; init; }

    /// <summary>
    /// Whether a job whose completed checkpoints can no longer be restored (every retained one damaged or unreadable)
    /// may start its next attempt with empty state and its sources at their beginning. Off by default: the job fails
    /// instead, naming each checkpoint and why it could not be restored, since starting over replays the whole input
    /// into sinks that already hold its output.
    /// </summary>
    [Id(11)] public bool AllowStartWithoutState { get; init; }
}
