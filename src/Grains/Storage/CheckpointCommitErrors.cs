namespace Platform.Storage;

/// <summary>The error every storage gives when a checkpoint's metadata is written over an existing, different commit.</summary>
internal static class CheckpointCommitErrors
{
    /// <summary>
    /// A second commit of a checkpoint id with other content. Only a lost coordinator state (its next id reset) reuses
    /// an id; replacing the commit record would silently swap a restorable checkpoint for another one.
    /// </summary>
    public static InvalidOperationException AlreadyCommitted(string jobId, long checkpointId, string path) => new(
        $"Checkpoint {checkpointId} of job '{jobId}' is already committed ('{path}' exists with other content), and a committed checkpoint is never " +
        "overwritten. A checkpoint id is used twice only when the checkpoint coordinator's state was lost: restart the job from its latest " +
        "retained checkpoint or from a savepoint.");
}
