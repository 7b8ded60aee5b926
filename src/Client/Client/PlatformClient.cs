using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Platform.Connectors;
using Platform.Graph;
using Platform.Runtime;

namespace Platform.Client;

/// <summary>
/// Submits and controls jobs through an Orleans client (or from inside a silo): submit, status, list, cancel and
/// wait for completion, and read what collect sinks gathered.
/// </summary>
public sealed partial class PlatformClient
{
    // Below any sensible response timeout, so that a long poll is never mistaken for a lost call.
    private static readonly TimeSpan LongPollInterval = TimeSpan.FromSeconds(5);
    private readonly IGrainFactory _grains;
    private readonly Serializer _serializer;

    /// <summary>Creates a client over a connected <see cref="IClusterClient"/>.</summary>
    public PlatformClient(IClusterClient client)
        : this(client, client.ServiceProvider)
    {
    }

    /// <summary>Creates a client from a grain factory and the services holding Orleans' serializer.</summary>
    public PlatformClient(IGrainFactory grains, IServiceProvider services)
    {
        _grains = grains ?? throw new ArgumentNullException(nameof(grains));
        _serializer = services.GetRequiredService<Serializer>();
    }

    /// <summary>Submits the job built by <paramref name="job"/> and returns its id once its tasks are deployed.</summary>
    /// <exception cref="JobValidationException">The graph is invalid; the exception lists every problem.</exception>
    public Task<string> SubmitAsync(StreamJobBuilder job, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        return SubmitAsync(job.ToJobGraph(_serializer), cancellationToken);
    }

    /// <summary>Submits a job graph and returns the job's id once its tasks are deployed.</summary>
    /// <exception cref="JobValidationException">The graph is invalid; the exception lists every problem.</exception>
    public async Task<string> SubmitAsync(JobGraph graph, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(graph);
        var jobId = NewJobId(graph.Name);
        cancellationToken.ThrowIfCancellationRequested();
        await JobManager(jobId).Submit(graph).WaitAsync(cancellationToken);
        return jobId;
    }

    /// <summary>The job's status.</summary>
    public Task<JobStatusInfo> GetStatusAsync(string jobId) => JobManager(jobId).GetStatus();

    /// <summary>The job's tasks (chained operators) with their parallelism and the edges between them; <c>null</c> for an unknown job.</summary>
    public Task<JobPlanInfo?> GetPlanAsync(string jobId) => JobManager(jobId).GetPlan();

    /// <summary>Every job known to the cluster, newest first.</summary>
    public async Task<IReadOnlyList<JobSummary>> ListJobsAsync() =>
        await _grains.GetGrain<IJobRegistryGrain>(0).List();

    /// <summary>Cancels the job and returns its status.</summary>
    public Task<JobStatusInfo> CancelAsync(string jobId) => JobManager(jobId).Cancel();

    /// <summary>Waits until the job is FINISHED, FAILED or CANCELED and returns its final status.</summary>
    /// <exception cref="TimeoutException">The job was still running after <paramref name="timeout"/>.</exception>
    public Task<JobStatusInfo> WaitForCompletionAsync(string jobId, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        LongPollAsync(
            wait => JobManager(jobId).WaitForTerminalState(wait),
            status => status.State.IsTerminal(),
            timeout,
            status => $"Job '{status?.Name}' ({jobId}) is still {status?.State} after {timeout}.",
            cancellationToken);

    /// <summary>
    /// Waits until every subtask of the job restored its state and runs (none is still created or initializing), or
    /// the job ended, and returns that status; <paramref name="progress"/> sees each status on the way. A job resumed
    /// from a large savepoint spends its first seconds or minutes here.
    /// </summary>
    /// <exception cref="TimeoutException">Subtasks were still initializing after <paramref name="timeout"/>.</exception>
    public async Task<JobStatusInfo> WaitUntilRunningAsync(string jobId, IProgress<JobStatusInfo>? progress = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        timeout ??= TimeSpan.FromMinutes(30);
        var deadline = DateTime.UtcNow + timeout.Value;
        while (true)
        {
            var status = await GetStatusAsync(jobId).WaitAsync(cancellationToken);
            progress?.Report(status);
            if (status.State.IsTerminal()
                || (status.State == JobState.Running && status.Tasks.Count > 0 && status.Tasks.All(t => t.State is not (TaskState.Created or TaskState.Initializing))))
            {
                return status;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Job {jobId} still has subtasks restoring their state after {timeout}.");
            }

            // Status is cheap to ask for but has no long poll: a few times a second is prompt enough for people.
            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
        }
    }

    /// <summary>Triggers a checkpoint of a running job now and waits until it completes or fails.</summary>
    /// <exception cref="InvalidOperationException">The job is not running or a checkpoint cannot be triggered now.</exception>
    public async Task<Checkpointing.CheckpointStats> TriggerCheckpointAsync(string jobId, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var coordinator = _grains.GetGrain<Checkpointing.ICheckpointCoordinatorGrain>(jobId);
        var id = await coordinator.TriggerCheckpoint().WaitAsync(cancellationToken);
        var stats = await LongPollAsync(
            wait => coordinator.WaitForCheckpoint(id, wait),
            stats => stats is { Status: not Checkpointing.CheckpointStatus.InProgress },
            timeout ?? TimeSpan.FromMinutes(10),
            _ => $"Checkpoint {id} of job {jobId} is still in progress after {timeout}.",
            cancellationToken);
        return stats!;
    }

    /// <summary>
    /// Calls a grain's long-poll method (it answers when done or after the wait it is given) until <paramref name="done"/>
    /// holds or the timeout passes. A poll lost with a dying silo is repeated: the grain's next activation answers.
    /// </summary>
    private static async Task<T> LongPollAsync<T>(
        Func<TimeSpan, Task<T>> poll,
        Func<T, bool> done,
        TimeSpan? timeout,
        Func<T?, string> describeTimeout,
        CancellationToken cancellationToken)
    {
        var deadline = timeout is { } t ? DateTimeOffset.UtcNow + t : DateTimeOffset.MaxValue;
        var last = default(T);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var remaining = deadline - DateTimeOffset.UtcNow;
            var wait = remaining < LongPollInterval ? remaining : LongPollInterval;
            try
            {
                last = await poll(wait < TimeSpan.Zero ? TimeSpan.Zero : wait).WaitAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is TimeoutException or OrleansMessageRejectionException && DateTimeOffset.UtcNow < deadline)
            {
                continue;
            }

            if (done(last))
            {
                return last;
            }

            if (DateTimeOffset.UtcNow >= deadline)
            {
                throw new TimeoutException(describeTimeout(last));
            }
        }
    }

    /// <summary>The job's checkpoint counts and recent history.</summary>
    public Task<Checkpointing.CheckpointStatistics> GetCheckpointStatisticsAsync(string jobId) =>
        _grains.GetGrain<Checkpointing.ICheckpointCoordinatorGrain>(jobId).GetStatistics();

    /// <summary>Reads every record that the collect sink with uid <paramref name="sinkUid"/> gathered.</summary>
    public async Task<IReadOnlyList<T>> GetCollectedAsync<T>(string jobId, string sinkUid)
    {
        var batches = await _grains.GetGrain<ICollectSinkGrain>(CollectSinkKey.For(jobId, sinkUid)).ReadAll();
        var records = new List<T>();
        foreach (var batch in batches)
        {
            records.AddRange(_serializer.Deserialize<T[]>(batch) ?? []);
        }

        return records;
    }

    private IJobManagerGrain JobManager(string jobId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(jobId);
        return _grains.GetGrain<IJobManagerGrain>(jobId);
    }

    private static string NewJobId(string name)
    {
        var slug = new string([.. name.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')]).Trim('-');
        if (slug.Length > 40)
        {
            slug = slug[..40];
        }

        return $"{(slug.Length == 0 ? "job" : slug)}-{Guid.NewGuid().ToString("N")[..12]}";
    }
}
