using Platform.Tasks;

namespace Platform.Checkpointing;

/// <summary>What the coordinator keeps durably, so that a job survives the loss of the silo hosting it.</summary>
/// <remarks>Its serialization ids are the format of persisted control state: never renumber them.</remarks>
[GenerateSerializer, Alias("platform.CoordinatorState")]
public sealed class CoordinatorState
{
    /// <summary>The next checkpoint id to hand out (see <see cref="CheckpointIdCounter"/>).</summary>
    [Id(0)] public long NextCheckpointId { get; set; } = 1;
    [Id(1)] public long Completed { get; set; }
    [Id(2)] public long Failed { get; set; }
    [Id(3)] public long Restored { get; set; }
    [Id(4)] public long? LatestRestoredId { get; set; }
    [Id(5)] public List<CheckpointStats> History { get; set; } = [];
    [Id(6)] public HashSet<long> Unrestorable { get; set; } = [];
    [Id(7)] public List<string> UnrestorableReasons { get; set; } = [];

    /// <summary>The settings and subtasks of the job's latest attempt; kept while the job restarts, so retention always follows the job's own settings.</summary>
    [Id(8)] public CoordinatorStart? Start { get; set; }

    /// <summary>Whether checkpoints are triggered for <see cref="Start"/>'s attempt (false while the job restarts or after it ended).</summary>
    [Id(9)] public bool Triggering { get; set; }

    /// <summary>The final snapshots of the attempt's finished subtasks, which every later checkpoint includes (FLIP-147).</summary>
    [Id(10)] public Dictionary<TaskId, SubtaskSnapshot> Finished { get; set; } = [];
    [Id(11)] public long? PinnedForRestore { get; set; }
    [Id(12)] public int PinnedUntilAttempt { get; set; }

    /// <summary>The latest checkpoint completed or restored: the base that incremental snapshots may share files with.</summary>
    [Id(13)] public long? LatestCompleted { get; set; }

    /// <summary>Savepoint request ids already triggered, with their checkpoint ids (idempotent retries).</summary>
    [Id(14)] public Dictionary<string, long> SavepointRequests { get; set; } = [];

    /// <summary>The outcomes of recent savepoints by id, kept longer than the checkpoint history for retried requests.</summary>
    [Id(15)] public Dictionary<long, CheckpointStats> Savepoints { get; set; } = [];

    /// <summary>
    /// The stop with savepoint in progress, persisted before its trigger goes out: an activation that finds it without
    /// holding it in memory knows the acknowledgements it needs went to a lost activation.
    /// </summary>
    [Id(16)] public PendingStop? PendingStop { get; set; }

    /// <summary>The attempt whose stop with savepoint failed, and why: such an attempt must not end FINISHED.</summary>
    [Id(17)] public FailedStop? FailedStop { get; set; }

    /// <summary>
    /// The latest checkpoint (or stop-with-savepoint) of <see cref="Start"/>'s attempt whose completion the subtasks
    /// must hear of, so that two-phase-commit sinks commit: persisted with the completion, and sent again on the job
    /// manager's heartbeat until every subtask confirmed it (a coordinator re-activated elsewhere sends it again).
    /// </summary>
    [Id(18)] public long? CommitNotice { get; set; }

    /// <summary>
    /// Why no checkpoint of <see cref="Start"/>'s attempt can complete any more (a subtask finished without a final
    /// snapshot), so that subtasks waiting for a final checkpoint fail the attempt instead of waiting forever.
    /// </summary>
    [Id(19)] public string? NoFurtherCheckpoints { get; set; }
}

/// <summary>A stop with savepoint that failed: its attempt, and the job's failure message.</summary>
[GenerateSerializer, Immutable, Alias("platform.FailedStop")]
public sealed record FailedStop([property: Id(0)] int Attempt, [property: Id(1)] string Reason);

/// <summary>A stop with savepoint in progress, as the coordinator persists it.</summary>
[GenerateSerializer, Immutable, Alias("platform.PendingStop")]
public sealed record PendingStop(
    [property: Id(0)] long CheckpointId,
    [property: Id(1)] int Attempt,
    [property: Id(2)] DateTimeOffset TriggeredAt,
    [property: Id(3)] DateTimeOffset Deadline,
    [property: Id(4)] SavepointTarget Target);

/// <summary>Where a stop with savepoint of one attempt stands, as the job manager asks before it lets the attempt finish.</summary>
[GenerateSerializer, Immutable, Alias("platform.StopOutcome")]
public sealed record StopOutcome([property: Id(0)] StopStatus Status, [property: Id(1)] string? Reason = null)
{
    /// <summary>No stop with savepoint is in progress or failed for the attempt.</summary>
    public static readonly StopOutcome None = new(StopStatus.None);

    /// <summary>A stop with savepoint is still in progress: the attempt must not finish yet.</summary>
    public static readonly StopOutcome Pending = new(StopStatus.Pending);
}

/// <summary>The states of <see cref="StopOutcome"/>.</summary>
[GenerateSerializer, Alias("platform.StopStatus")]
public enum StopStatus
{
    /// <summary>Nothing stands in the way of finishing (no stop, or it completed).</summary>
    None,

    /// <summary>The stop's savepoint has not completed or failed yet.</summary>
    Pending,

    /// <summary>The stop failed: the attempt restarts from its latest checkpoint instead of finishing.</summary>
    Failed,
}
