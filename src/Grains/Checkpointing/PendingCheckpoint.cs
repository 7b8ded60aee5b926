using Platform.Tasks;

namespace Platform.Checkpointing;

/// <summary>What the job does once a snapshot completes (Flink's SavepointType.PostCheckpointAction).</summary>
internal enum PostCheckpointAction
{
    /// <summary>The job keeps running.</summary>
    None,

    /// <summary>Stop with savepoint: sources stop at the savepoint's barrier and the job finishes.</summary>
    Stop,

    /// <summary>Stop with savepoint after bounded sources read the rest of their input.</summary>
    StopAndDrain,
}

/// <summary>A checkpoint, or a savepoint with its target, format and post-checkpoint action.</summary>
internal sealed record SnapshotType(SavepointTarget? Savepoint)
{
    /// <summary>A periodic or manual checkpoint of the job's own checkpoint storage.</summary>
    public static readonly SnapshotType Checkpoint = new((SavepointTarget?)null);

    /// <summary>Whether this is a savepoint (self-contained, in its own directory, never retained or subsumed).</summary>
    public bool IsSavepoint => Savepoint is not null;

    /// <summary>What follows its completion.</summary>
    public PostCheckpointAction PostCheckpointAction => Savepoint switch
    {
        { Stop: true, Drain: true } => PostCheckpointAction.StopAndDrain,
        { Stop: true } => PostCheckpointAction.Stop,
        _ => PostCheckpointAction.None,
    };

    /// <summary>Whether it is a stop with savepoint.</summary>
    public bool IsStop => PostCheckpointAction != PostCheckpointAction.None;

    /// <summary>Whether a newer completed checkpoint makes it redundant: checkpoints yes, savepoints never (as in Flink).</summary>
    public bool CanBeSubsumed => !IsSavepoint;
}

/// <summary>The phases of a <see cref="PendingCheckpoint"/>; each moves forward only.</summary>
internal enum PendingCheckpointPhase
{
    /// <summary>Triggered; waiting for every subtask's acknowledgement.</summary>
    AwaitingAcknowledgements,

    /// <summary>Every subtask acknowledged; its metadata (the commit point) is being written.</summary>
    Finalizing,

    /// <summary>Its metadata is written: it exists.</summary>
    Completed,

    /// <summary>It failed or was aborted; its files are discarded.</summary>
    Aborted,
}

/// <summary>
/// A checkpoint in progress (Flink's PendingCheckpoint): which subtasks still owe an acknowledgement, the snapshots
/// received, and its phase. The coordinator completes or aborts it through one path each.
/// </summary>
internal sealed class PendingCheckpoint(long id, DateTimeOffset triggeredAt, bool manual, List<(TaskId Id, string TaskName)> subtasks)
{
    private readonly Dictionary<TaskId, string> _names = subtasks.ToDictionary(s => s.Id, s => s.TaskName);
    private readonly HashSet<TaskId> _missing = [.. subtasks.Select(s => s.Id)];
    private readonly List<SubtaskCheckpointStats> _stats = [];

    public long Id { get; } = id;

    public DateTimeOffset TriggeredAt { get; } = triggeredAt;

    public bool IsManual { get; } = manual;

    /// <summary>A checkpoint, or a savepoint and what follows it.</summary>
    public required SnapshotType Type { get; init; }

    /// <summary>When it expires: the job's checkpoint timeout, or a draining stop's own.</summary>
    public required TimeSpan Timeout { get; init; }

    /// <summary>The attempt it was triggered in.</summary>
    public required int Attempt { get; init; }

    public PendingCheckpointPhase Phase { get; private set; } = PendingCheckpointPhase.AwaitingAcknowledgements;

    /// <summary>The snapshots received, one per subtask.</summary>
    public List<SubtaskSnapshot> Snapshots { get; } = [];

    /// <summary>The subtasks that were finished when they were counted in (their final snapshots, FLIP-147).</summary>
    public HashSet<TaskId> FinishedSubtasks { get; } = [];

    public int Total => _names.Count;

    public int Acknowledged => _stats.Count;

    public IEnumerable<TaskId> Missing => _missing;

    /// <summary>What was published to make sources inject its barrier (a subtask whose input ended takes part on it directly).</summary>
    public CheckpointTrigger? Trigger { get; set; }

    /// <summary>When the trigger last went out (published, or delivered directly to the subtasks that had not answered).</summary>
    public DateTimeOffset? TriggerSentAt { get; set; }

    /// <summary>Whether <paramref name="task"/> has not acknowledged it yet.</summary>
    public bool IsAwaiting(TaskId task) => Phase == PendingCheckpointPhase.AwaitingAcknowledgements && _missing.Contains(task);

    public bool IsFullyAcknowledged => _missing.Count == 0;

    public bool IsExpired(DateTimeOffset now) => Phase == PendingCheckpointPhase.AwaitingAcknowledgements && now - TriggeredAt > Timeout;

    /// <summary>Counts a subtask's snapshot in; false when it is not awaited (a duplicate, or the checkpoint moved on).</summary>
    public bool Acknowledge(TaskId task, SubtaskSnapshot snapshot, SubtaskCheckpointMetrics metrics, bool finished = false)
    {
        if (Phase != PendingCheckpointPhase.AwaitingAcknowledgements || !_missing.Remove(task))
        {
            return false;
        }

        Snapshots.Add(snapshot);
        if (finished)
        {
            FinishedSubtasks.Add(task);
        }

        _stats.Add(new SubtaskCheckpointStats
        {
            TaskName = _names[task],
            TaskIndex = task.TaskIndex,
            SubtaskIndex = task.SubtaskIndex,
            SyncDuration = metrics.SyncDuration,
            AsyncDuration = metrics.AsyncDuration,
            AlignmentDuration = metrics.AlignmentDuration,
            StateSize = metrics.StateSize,
            CheckpointedSize = metrics.CheckpointedSize,
            AcknowledgedAt = DateTimeOffset.UtcNow,
            Finished = finished,
        });
        return true;
    }

    /// <summary>Every subtask acknowledged: its metadata is written next.</summary>
    public void BeginFinalizing() => MoveTo(PendingCheckpointPhase.Finalizing, PendingCheckpointPhase.AwaitingAcknowledgements);

    /// <summary>Its metadata is written.</summary>
    public void MarkCompleted() => MoveTo(PendingCheckpointPhase.Completed, PendingCheckpointPhase.Finalizing);

    /// <summary>It failed or was aborted; false when it already had (one abort path, taken once).</summary>
    public bool TryAbort()
    {
        if (Phase is PendingCheckpointPhase.Completed or PendingCheckpointPhase.Aborted)
        {
            return false;
        }

        Phase = PendingCheckpointPhase.Aborted;
        return true;
    }

    /// <summary>The shared files its snapshots reference (they must outlive it while it is in progress).</summary>
    public IEnumerable<string> SharedPaths() => Snapshots.SelectMany(s => s.SharedPaths());

    public CheckpointStats Stats(CheckpointStatus status) => new()
    {
        Id = Id,
        Status = status,
        TriggeredAt = TriggeredAt,
        EndToEndDuration = status == CheckpointStatus.InProgress ? null : DateTimeOffset.UtcNow - TriggeredAt,
        StateSize = _stats.Sum(s => s.StateSize),
        CheckpointedSize = _stats.Sum(s => s.CheckpointedSize),
        IsManual = IsManual,
        Subtasks = [.. _stats],
        SubtasksTotal = Total,
        SavepointPath = Type.Savepoint?.Location.Directory,
    };

    private void MoveTo(PendingCheckpointPhase next, PendingCheckpointPhase expected)
    {
        if (Phase != expected)
        {
            throw new InvalidOperationException($"Checkpoint {Id} is {Phase}; it cannot move to {next} (only from {expected}).");
        }

        Phase = next;
    }
}
