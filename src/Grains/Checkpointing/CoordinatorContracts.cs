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
}

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

    /// <summary>The newest retained checkpoint whose metadata is intact; damaged ones are reported and skipped.</summary>
    Task<CheckpointMetadata?> LatestRestorable(CheckpointingSettings settings);

    /// <summary>Marks a checkpoint as impossible to restore (a state file is damaged), so recovery falls back to an older one.</summary>
    Task MarkUnrestorable(long checkpointId, string reason);

    /// <summary>Counts a restore from <paramref name="checkpointId"/>.</summary>
    Task RecordRestore(long checkpointId);

    /// <summary>
    /// Why <paramref name="attempt"/> must not finish: its stop with savepoint failed (or was lost with the coordinator),
    /// so finishing would delete the checkpoints it must restart from. Null when nothing stands in the way.
    /// </summary>
    Task<string?> FailedStop(int attempt);

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
