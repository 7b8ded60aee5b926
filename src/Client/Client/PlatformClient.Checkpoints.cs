using Platform.Checkpointing;

namespace Platform.Client;

public sealed partial class PlatformClient
{
    // How often a caller watching a checkpoint hears how far it got.
    private static readonly TimeSpan CheckpointProgressInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Triggers a checkpoint of a running job now, reports its statistics to <paramref name="progress"/> while subtasks
    /// acknowledge it (about twice a second), and returns them once it completed or failed.
    /// </summary>
    /// <exception cref="InvalidOperationException">The job is not running or a checkpoint cannot be triggered now.</exception>
    /// <exception cref="TimeoutException">The checkpoint was still in progress after <paramref name="timeout"/> (default 10 minutes).</exception>
    public async Task<CheckpointStats> TriggerCheckpointAsync(string jobId, IProgress<CheckpointStats> progress, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(jobId);
        ArgumentNullException.ThrowIfNull(progress);
        var coordinator = _grains.GetGrain<ICheckpointCoordinatorGrain>(jobId);
        var id = await coordinator.TriggerCheckpoint().WaitAsync(cancellationToken);
        var limit = timeout ?? TimeSpan.FromMinutes(10);
        var stats = await LongPollAsync(
            async wait =>
            {
                var current = await coordinator.WaitForCheckpoint(id, wait < CheckpointProgressInterval ? wait : CheckpointProgressInterval);
                if (current is not null)
                {
                    progress.Report(current);
                }

                return current;
            },
            current => current is { Status: not CheckpointStatus.InProgress },
            limit,
            _ => $"Checkpoint {id} of job {jobId} is still in progress after {limit}.",
            cancellationToken);
        return stats!;
    }
}
