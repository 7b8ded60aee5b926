using Platform.Hosting;
using Platform.Runtime;

namespace Platform.Jobs;

/// <summary>The registry's durable list of jobs.</summary>
[GenerateSerializer, Alias("platform.JobRegistryState")]
public sealed class JobRegistryState
{
    [Id(0)] public Dictionary<string, JobSummary> Jobs { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>
/// The cluster's list of jobs (one grain, key 0), updated by job managers on every state change. Durable, so that
/// a cluster started again on the same storage finds the jobs that were running and resumes them.
/// </summary>
[KeepAlive]
internal sealed class JobRegistryGrain(
    [PersistentState("registry", PlatformStreams.StateStorageName)] IPersistentState<JobRegistryState> state) : Grain, IJobRegistryGrain
{
    private const int MaxJobs = 1000;

    public async Task Record(JobSummary summary)
    {
        var jobs = state.State.Jobs;
        jobs[summary.JobId] = summary;
        if (jobs.Count > MaxJobs)
        {
            // Forget the oldest finished jobs first so the list stays bounded.
            foreach (var old in jobs.Values.Where(j => j.State.IsTerminal()).OrderBy(j => j.SubmittedAt).Take(jobs.Count - MaxJobs).ToList())
            {
                jobs.Remove(old.JobId);
            }
        }

        await state.WriteStateAsync();
    }

    public Task<List<JobSummary>> List() => Task.FromResult(state.State.Jobs.Values.OrderByDescending(j => j.SubmittedAt).ToList());
}
