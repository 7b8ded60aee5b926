using Platform.Tasks;

namespace Platform.Checkpointing;

/// <summary>What the coordinator needs to run a job's checkpoints for one attempt.</summary>
[GenerateSerializer, Immutable, Alias("platform.CoordinatorStart")]
public sealed record CoordinatorStart
{
    /// <summary>The job's checkpointing settings.</summary>
    [Id(0)] public required CheckpointingSettings Settings { get; init; }

    /// <summary>The attempt whose subtasks take part.</summary>
    [Id(1)] public required int Attempt { get; init; }

    /// <summary>Every subtask of the attempt, with its task's name.</summary>
    [Id(2)] public required List<(TaskId Id, string TaskName)> Subtasks { get; init; }

    /// <summary>The job's max parallelism.</summary>
    [Id(3)] public required int MaxParallelism { get; init; }

    /// <summary>The job's name (for telemetry); null in state persisted before it existed.</summary>
    [Id(4)] public string? JobName { get; init; }

    /// <summary>The state backend the job's subtasks run on (what a native savepoint would be); null in state persisted before it existed.</summary>
    [Id(5)] public State.StateBackendKind? StateBackend { get; init; }
}

/// <summary>
/// Where the next attempt of a job restores from: <see cref="Checkpoint"/>, or nothing. <see cref="NoneRestorable"/>
/// says why a job that has completed checkpoints cannot restore any of them, so that it fails instead of starting empty.
/// </summary>
[GenerateSerializer, Immutable, Alias("platform.RestorePoint")]
public sealed record RestorePoint([property: Id(0)] CheckpointMetadata? Checkpoint, [property: Id(1)] string? NoneRestorable = null);

/// <summary>How the job manager drives its job's checkpoint coordinator.</summary>
[Alias("platform.ICheckpointCoordinatorControl")]
public interface ICheckpointCoordinatorControl : IGrainWithStringKey
{
    /// <summary>Starts (or restarts, for a new attempt) triggering checkpoints; aborts those of earlier attempts.</summary>
    Task Start(CoordinatorStart start);

    /// <summary>Stops triggering and aborts checkpoints in progress (the job is failing over or stopping).</summary>
    Task Suspend(string reason);

    /// <summary>
    /// A subtask finished. With its <paramref name="finalSnapshot"/> it counts as acknowledged in every later
    /// checkpoint; without one (it held state files) no checkpoint can complete any more, so triggering stops.
    /// </summary>
    Task OnTaskFinished(TaskId task, SubtaskSnapshot? finalSnapshot, long lastCheckpoint);

    /// <summary>
    /// The newest retained checkpoint whose metadata is intact; damaged ones are reported and skipped. When the job has
    /// completed checkpoints but none can be restored, the answer says why instead of letting the job start empty.
    /// </summary>
    Task<RestorePoint> LatestRestorable(CheckpointingSettings settings);

    /// <summary>Marks a checkpoint as impossible to restore (a state file is damaged), so recovery falls back to an older one.</summary>
    Task MarkUnrestorable(long checkpointId, string reason);

    /// <summary>Counts a restore from <paramref name="checkpointId"/>.</summary>
    Task RecordRestore(long checkpointId);

    /// <summary>
    /// Whether <paramref name="attempt"/> may finish: not while its stop with savepoint is still in progress (finishing
    /// would delete the partial savepoint and the checkpoints after the sources stopped), and not once it failed (or was
    /// lost with the coordinator): then the job restarts from its latest checkpoint.
    /// </summary>
    Task<StopOutcome> GetStopOutcome(int attempt);

    /// <summary>
    /// Makes sure checkpoints are triggered for <paramref name="attempt"/> (the job manager's heartbeat): activates a
    /// coordinator lost with its silo, whose activation re-arms the persisted trigger schedule.
    /// </summary>
    Task EnsureScheduled(int attempt);

    /// <summary>The job reached a terminal state: stop, and delete or keep checkpoints as the settings say.</summary>
    Task Shutdown(Runtime.JobState finalState);
}

/// <summary>How the coordinator tells the job manager that checkpoints keep failing.</summary>
[Alias("platform.ICheckpointFailureListener")]
public interface ICheckpointFailureListener : IGrainWithStringKey
{
    /// <summary>More consecutive checkpoints failed than the job tolerates.</summary>
    Task CheckpointFailureThresholdExceeded(int attempt, string reason);
}
