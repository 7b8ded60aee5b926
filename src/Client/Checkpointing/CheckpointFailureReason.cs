namespace Platform.Checkpointing;

/// <summary>
/// Why a checkpoint or savepoint failed, with the meanings of Flink's <c>CheckpointFailureReason</c>. Only some count
/// towards <see cref="CheckpointingSettings.TolerableFailedCheckpoints"/>: those that say something is wrong with the
/// job or its storage, not those that only say the checkpoint was overtaken or the job stopped.
/// </summary>
[GenerateSerializer, Alias("platform.CheckpointFailureReason")]
public enum CheckpointFailureReason
{
    /// <summary>Not every subtask acknowledged it within the checkpoint timeout (Flink's CHECKPOINT_EXPIRED).</summary>
    Expired,

    /// <summary>A subtask could not snapshot or write its state (Flink's CHECKPOINT_DECLINED, TASK_CHECKPOINT_FAILURE).</summary>
    Declined,

    /// <summary>The trigger could not be published to the sources (Flink's TRIGGER_CHECKPOINT_FAILURE).</summary>
    TriggerFailed,

    /// <summary>Its metadata could not be written, so it was never committed (Flink's FINALIZE_CHECKPOINT_FAILURE).</summary>
    FinalizeFailed,

    /// <summary>A newer checkpoint completed first, which makes this one redundant (Flink's CHECKPOINT_SUBSUMED).</summary>
    Subsumed,

    /// <summary>A subtask referenced an incremental base that is no longer retained; the next checkpoint takes the newer base.</summary>
    BaseNotRetained,

    /// <summary>The job is restarting; checkpoints of the failed attempt are aborted (Flink's CHECKPOINT_COORDINATOR_SUSPEND).</summary>
    CoordinatorSuspended,

    /// <summary>The job reached a terminal state (Flink's CHECKPOINT_COORDINATOR_SHUTDOWN).</summary>
    CoordinatorShutdown,

    /// <summary>The coordinator was lost with the acknowledgements it had received (its silo died).</summary>
    CoordinatorLost,
}

/// <summary>Which failure reasons count towards the tolerable failed checkpoints.</summary>
public static class CheckpointFailureReasons
{
    /// <summary>
    /// Whether <paramref name="reason"/> counts towards <see cref="CheckpointingSettings.TolerableFailedCheckpoints"/>
    /// (as Flink's CheckpointFailureManager counts them): failures of the job or its storage do; a checkpoint overtaken
    /// by a newer one, or aborted because the job restarts or ends, does not.
    /// </summary>
    public static bool CountsAsFailure(this CheckpointFailureReason reason) => reason
        is CheckpointFailureReason.Expired
        or CheckpointFailureReason.Declined
        or CheckpointFailureReason.TriggerFailed
        or CheckpointFailureReason.FinalizeFailed;
}
