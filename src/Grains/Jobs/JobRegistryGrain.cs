using Platform.Runtime;

namespace Platform.Jobs;

/// <summary>The cluster's list of jobs (one grain, key 0), updated by job managers on every state change.</summary>
[KeepAlive]
internal sealed class JobRegistryGrain : Grain, IJobRegistryGrain
{
    private const int MaxJobs = 1000;
    private readonly Dictionary<string, JobSummary> _jobs = new(StringComparer.Ordinal);

    public Task Record(JobSummary summary)
    {
        _jobs[summary.JobId] = summary;
        if (_jobs.Count > MaxJobs)
        {
            // Forget the oldest finished jobs first so the list stays bounded.
            foreach (var old in _jobs.Values.Where(j => j.State.IsTerminal()).OrderBy(j => j.SubmittedAt).Take(_jobs.Count - MaxJobs).ToList())
            {
                _jobs.Remove(old.JobId);
            }
        }

        return Task.CompletedTask;
    }

    public Task<List<JobSummary>> List() => Task.FromResult(_jobs.Values.OrderByDescending(j => j.SubmittedAt).ToList());
}
