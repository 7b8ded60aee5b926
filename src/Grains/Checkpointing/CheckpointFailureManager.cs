namespace Platform.Checkpointing;

/// <summary>
/// Counts consecutive checkpoint failures against the job's tolerable number (Flink's CheckpointFailureManager). Only
/// failures whose reason counts (<see cref="CheckpointFailureReasons.CountsAsFailure"/>) and that are not savepoints
/// count: a failed savepoint must not fail over a healthy job (as in Flink); a failed stop with savepoint fails the
/// job over on its own terms.
/// </summary>
internal sealed class CheckpointFailureManager
{
    /// <summary>The failures counted since the last completed checkpoint.</summary>
    public int ConsecutiveFailures { get; private set; }

    /// <summary>A checkpoint completed, or a new attempt started: the count starts again.</summary>
    public void Reset() => ConsecutiveFailures = 0;

    /// <summary>Counts a failure; returns whether the job now exceeds <paramref name="tolerable"/>.</summary>
    public bool OnFailure(PendingCheckpoint checkpoint, CheckpointFailureReason reason, int tolerable)
    {
        if (checkpoint.Type.IsSavepoint || !reason.CountsAsFailure())
        {
            return false;
        }

        ConsecutiveFailures++;
        return ConsecutiveFailures > tolerable;
    }
}
