using Platform.Checkpointing;

namespace Platform.Client;

/// <summary>Savepoints: take one of a running job, resume a new job from it (<see cref="Graph.StreamJobBuilder.RestoreFrom"/>), dispose of it.</summary>
public sealed partial class PlatformClient
{
    /// <summary>
    /// Takes a savepoint of a running job and waits until it completes: a self-contained directory that a new job can
    /// start from, at another parallelism or on another state backend (portable format).
    /// </summary>
    /// <exception cref="InvalidOperationException">The job is not running with checkpointing settings, or the savepoint failed (the message says why).</exception>
    /// <exception cref="ArgumentException">The target is outside the silos' savepoint root (a directory, or for a URL <c>{container URL}/{SavepointPrefix}</c>), or a <see cref="SavepointFormat.Native"/> savepoint is asked of a job on the heap state backend (it has no native format).</exception>
    public async Task<SavepointInfo> TriggerSavepointAsync(string jobId, SavepointRequest? request = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var coordinator = _grains.GetGrain<ICheckpointCoordinatorGrain>(jobId);
        var id = await coordinator.TriggerSavepoint(request ?? new SavepointRequest()).WaitAsync(cancellationToken);
        var stats = await LongPollAsync(
            wait => coordinator.WaitForCheckpoint(id, wait),
            stats => stats is { Status: not CheckpointStatus.InProgress },
            timeout ?? TimeSpan.FromMinutes(30),
            _ => $"Savepoint {id} of job {jobId} is still in progress after {timeout}.",
            cancellationToken);
        if (stats is not { Status: CheckpointStatus.Completed, SavepointPath: { } path })
        {
            throw new InvalidOperationException($"Savepoint {id} of job {jobId} failed: {stats?.FailureReason ?? "it is no longer known to the job"}.");
        }

        return new SavepointInfo { Path = path, JobId = jobId, CheckpointId = id, Size = stats.StateSize, CompletedAt = stats.TriggeredAt + (stats.EndToEndDuration ?? TimeSpan.Zero) };
    }

    /// <summary>
    /// Starts a savepoint (or, with <see cref="SavepointRequest.Stop"/>, a stop with savepoint) without waiting for it,
    /// as Flink's REST API does, and returns its trigger id: the request's <see cref="SavepointRequest.RequestId"/>, or
    /// a new one. Triggering again with the same id starts nothing new. Follow it with <see cref="GetSavepointAsync"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The job is not running with checkpointing settings.</exception>
    /// <exception cref="ArgumentException">The target is not allowed or the format does not fit the job's backend.</exception>
    public async Task<string> StartSavepointAsync(string jobId, SavepointRequest? request = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(jobId);
        request ??= new SavepointRequest();
        var triggerId = string.IsNullOrWhiteSpace(request.RequestId) ? Guid.NewGuid().ToString("N") : request.RequestId;
        await _grains.GetGrain<ICheckpointCoordinatorGrain>(jobId).TriggerSavepoint(request with { RequestId = triggerId }).WaitAsync(cancellationToken);
        return triggerId;
    }

    /// <summary>The savepoint started with trigger id <paramref name="triggerId"/>, as it stands; <c>null</c> if the job does not know it.</summary>
    public Task<CheckpointStats?> GetSavepointAsync(string jobId, string triggerId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(jobId);
        ArgumentException.ThrowIfNullOrWhiteSpace(triggerId);
        return _grains.GetGrain<ICheckpointCoordinatorGrain>(jobId).FindSavepoint(triggerId);
    }

    /// <summary>
    /// Stops a job with a savepoint (Flink's <c>stop</c>): sources stop right after the savepoint, the job processes
    /// everything before it and finishes; a job resumed from the savepoint continues with the next record, so nothing
    /// is lost or repeated between the two. With <see cref="SavepointRequest.Drain"/>, bounded sources first read to the
    /// end of their input: the job finishes with all of it processed (unlike Flink's <c>stop --drain</c>, which emits MAX_WATERMARK; this platform has no event-time timers to flush).
    /// </summary>
    /// <exception cref="InvalidOperationException">The savepoint failed (its sources had stopped, so the job fails over to its latest checkpoint and keeps running), or the job did not finish cleanly.</exception>
    public async Task<SavepointInfo> StopWithSavepointAsync(string jobId, SavepointRequest? request = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        timeout ??= request is { Drain: true } ? (request.DrainTimeout ?? TimeSpan.FromMinutes(30)) + TimeSpan.FromMinutes(1) : null;
        var savepoint = await TriggerSavepointAsync(jobId, (request ?? new SavepointRequest()) with { Stop = true }, timeout, cancellationToken);
        var status = await WaitForCompletionAsync(jobId, timeout ?? TimeSpan.FromMinutes(30), cancellationToken);
        if (status.State != Runtime.JobState.Finished)
        {
            throw new InvalidOperationException(
                $"Job {jobId} ended {status.State} after its stop savepoint at '{savepoint.Path}' completed: {status.Failure?.Describe()}. The savepoint is intact and can be resumed from.");
        }

        return savepoint;
    }

    /// <summary>
    /// Takes a savepoint, then cancels the job. Records processed between the two reach the sinks but not the savepoint
    /// (a job resumed from it processes them again); <see cref="StopWithSavepointAsync"/> leaves no such gap.
    /// </summary>
    public async Task<SavepointInfo> CancelWithSavepointAsync(string jobId, SavepointRequest? request = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var savepoint = await TriggerSavepointAsync(jobId, request, timeout, cancellationToken);
        await CancelAsync(jobId);
        return savepoint;
    }

    /// <summary>Deletes a savepoint under the silos' savepoint root (a directory, or a URL under the blob savepoint root).</summary>
    /// <exception cref="ArgumentException">The path is outside the savepoint root or is not a savepoint.</exception>
    public Task DisposeSavepointAsync(string path) => _grains.GetGrain<ISavepointAdminGrain>(0).Dispose(path);
}
