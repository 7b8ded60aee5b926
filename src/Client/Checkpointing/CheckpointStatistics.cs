namespace Platform.Checkpointing;

/// <summary>Where a checkpoint is in its life.</summary>
[GenerateSerializer, Alias("platform.CheckpointStatus")]
public enum CheckpointStatus
{
    /// <summary>Triggered; not every task has acknowledged yet.</summary>
    InProgress,

    /// <summary>Every task acknowledged and the metadata is written.</summary>
    Completed,

    /// <summary>Declined, timed out, or aborted.</summary>
    Failed,
}

/// <summary>One subtask's part of a checkpoint (Flink's subtask checkpoint statistics).</summary>
[GenerateSerializer, Immutable, Alias("platform.SubtaskCheckpointStats")]
public sealed record SubtaskCheckpointStats
{
    /// <summary>The task's name.</summary>
    [Id(0)] public required string TaskName { get; init; }

    /// <summary>The subtask's index.</summary>
    [Id(1)] public required int SubtaskIndex { get; init; }

    /// <summary>The synchronous part: freezing state and forwarding the barrier, during which processing pauses.</summary>
    [Id(2)] public TimeSpan SyncDuration { get; init; }

    /// <summary>The asynchronous part: writing the frozen state while processing goes on.</summary>
    [Id(3)] public TimeSpan AsyncDuration { get; init; }

    /// <summary>From the first barrier to the last on the subtask's inputs (zero for sources and single-channel tasks).</summary>
    [Id(4)] public TimeSpan AlignmentDuration { get; init; }

    /// <summary>The full size of the subtask's state in this checkpoint (files shared with earlier checkpoints included).</summary>
    [Id(5)] public long StateSize { get; init; }

    /// <summary>When the acknowledgement reached the coordinator.</summary>
    [Id(6)] public DateTimeOffset AcknowledgedAt { get; init; }

    /// <summary>The bytes the subtask wrote to storage for this checkpoint (for an incremental one, only new files).</summary>
    [Id(7)] public long CheckpointedSize { get; init; }

    /// <summary>Whether the subtask had finished and counted in with its final snapshot (FLIP-147) instead of taking part.</summary>
    [Id(8)] public bool Finished { get; init; }

    /// <summary>The task's index in the job's plan (<see cref="Runtime.TaskPlanInfo.Index"/>); <c>null</c> in statistics recorded before it was kept.</summary>
    [Id(9)] public int? TaskIndex { get; init; }
}

/// <summary>One checkpoint (Flink's checkpoint statistics).</summary>
[GenerateSerializer, Immutable, Alias("platform.CheckpointStats")]
public sealed record CheckpointStats
{
    /// <summary>The checkpoint's id.</summary>
    [Id(0)] public required long Id { get; init; }

    /// <summary>Its status.</summary>
    [Id(1)] public required CheckpointStatus Status { get; init; }

    /// <summary>When it was triggered.</summary>
    [Id(2)] public required DateTimeOffset TriggeredAt { get; init; }

    /// <summary>From trigger to completion or failure.</summary>
    [Id(3)] public TimeSpan? EndToEndDuration { get; init; }

    /// <summary>The full size of the checkpoint's state: every file it references, including those an incremental checkpoint shares with earlier ones.</summary>
    [Id(4)] public long StateSize { get; init; }

    /// <summary>Why it failed, when it did.</summary>
    [Id(5)] public string? FailureReason { get; init; }

    /// <summary>Whether it was triggered by hand rather than periodically.</summary>
    [Id(6)] public bool IsManual { get; init; }

    /// <summary>The subtasks that acknowledged it.</summary>
    [Id(7)] public IReadOnlyList<SubtaskCheckpointStats> Subtasks { get; init; } = [];

    /// <summary>How many subtasks must acknowledge.</summary>
    [Id(8)] public int SubtasksTotal { get; init; }

    /// <summary>
    /// The bytes this checkpoint wrote to storage (Flink's "checkpointed data size"): for an incremental checkpoint only
    /// the files storage did not hold yet; for a full one, the same as <see cref="StateSize"/>.
    /// </summary>
    [Id(9)] public long CheckpointedSize { get; init; }

    /// <summary>For a savepoint, its directory; <c>null</c> for a checkpoint.</summary>
    [Id(10)] public string? SavepointPath { get; init; }

    /// <summary>Why it failed, as one of Flink's checkpoint failure reasons; <c>null</c> unless it failed.</summary>
    [Id(11)] public CheckpointFailureReason? FailureCause { get; init; }
}

/// <summary>A job's checkpointing history and counts.</summary>
[GenerateSerializer, Immutable, Alias("platform.CheckpointStatistics")]
public sealed record CheckpointStatistics
{
    /// <summary>Completed checkpoints.</summary>
    [Id(0)] public long Completed { get; init; }

    /// <summary>Failed checkpoints.</summary>
    [Id(1)] public long Failed { get; init; }

    /// <summary>Checkpoints in progress now.</summary>
    [Id(2)] public long InProgress { get; init; }

    /// <summary>How many times the job was restored from a checkpoint.</summary>
    [Id(3)] public long Restored { get; init; }

    /// <summary>The id of the latest restored checkpoint.</summary>
    [Id(4)] public long? LatestRestoredId { get; init; }

    /// <summary>The most recent checkpoints, newest first.</summary>
    [Id(5)] public IReadOnlyList<CheckpointStats> History { get; init; } = [];

    /// <summary>The ids of the retained completed checkpoints, oldest first.</summary>
    [Id(6)] public IReadOnlyList<long> Retained { get; init; } = [];

    /// <summary>Checkpoints that recovery skipped because a file was damaged, each with the reason (naming the file).</summary>
    [Id(7)] public IReadOnlyList<string> SkippedAsCorrupt { get; init; } = [];

    /// <summary>The latest completed checkpoint.</summary>
    public CheckpointStats? LatestCompleted => History.FirstOrDefault(c => c.Status == CheckpointStatus.Completed);

    /// <summary>The latest failed checkpoint.</summary>
    public CheckpointStats? LatestFailed => History.FirstOrDefault(c => c.Status == CheckpointStatus.Failed);
}

/// <summary>The checkpoint coordinator of a job (one per job, key = job id), as clients see it.</summary>
[Alias("platform.ICheckpointCoordinatorGrain")]
public interface ICheckpointCoordinatorGrain : IGrainWithStringKey
{
    /// <summary>
    /// Triggers a savepoint and returns its checkpoint id (the id already triggered for the same
    /// <see cref="SavepointRequest.RequestId"/>, if any); follow it with <see cref="WaitForCheckpoint"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The job is not running with checkpointing settings, or the target is not allowed (the message says why).</exception>
    Task<long> TriggerSavepoint(SavepointRequest request);

    /// <summary>Triggers a checkpoint now and returns its id.</summary>
    /// <exception cref="InvalidOperationException">The job is not running, or checkpoints cannot be triggered now (the message says why).</exception>
    Task<long> TriggerCheckpoint();

    /// <summary>Waits up to <paramref name="maxWait"/> for checkpoint <paramref name="checkpointId"/> to complete or fail.</summary>
    [Orleans.Concurrency.AlwaysInterleave]
    Task<CheckpointStats?> WaitForCheckpoint(long checkpointId, TimeSpan maxWait);

    /// <summary>The job's checkpoint statistics.</summary>
    [Orleans.Concurrency.AlwaysInterleave]
    Task<CheckpointStatistics> GetStatistics();

    /// <summary>
    /// The savepoint triggered for <paramref name="requestId"/> (<see cref="SavepointRequest.RequestId"/>, the REST API's
    /// trigger id), as it stands now; <c>null</c> if no savepoint of that request is remembered.
    /// </summary>
    [Orleans.Concurrency.AlwaysInterleave]
    Task<CheckpointStats?> FindSavepoint(string requestId);
}
