using Platform.Catalog;
using Platform.Runtime;

namespace Platform.Client;

public sealed partial class PlatformClient
{
    /// <summary>The jobs the silos registered in their catalog, by name.</summary>
    public async Task<IReadOnlyList<JobCatalogEntry>> GetCatalogAsync() => await Catalog.List();

    /// <summary>
    /// Starts the catalog job <paramref name="name"/> with <paramref name="arguments"/> (name → value as text; the silo
    /// parses them) and returns its id once its tasks are deployed. <paramref name="parallelism"/> overrides the job's
    /// default parallelism; <paramref name="restoreFrom"/> starts it from a savepoint or retained checkpoint.
    /// </summary>
    /// <exception cref="JobNotInCatalogException">No job has that name.</exception>
    /// <exception cref="JobArgumentException">The arguments or the parallelism are wrong; the exception lists every problem.</exception>
    /// <exception cref="JobValidationException">The job built from the arguments is invalid; the exception lists every problem.</exception>
    public async Task<string> RunAsync(
        string name,
        IReadOnlyDictionary<string, string> arguments,
        int? parallelism = null,
        CancellationToken cancellationToken = default,
        Checkpointing.RestoreSettings? restoreFrom = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(arguments);
        var jobId = NewJobId(name);
        cancellationToken.ThrowIfCancellationRequested();
        await Catalog.Run(new JobRunRequest
        {
            JobId = jobId,
            Name = name,
            Arguments = new Dictionary<string, string>(arguments, StringComparer.Ordinal),
            Parallelism = parallelism,
            RestoreFrom = restoreFrom,
        }).WaitAsync(cancellationToken);
        return jobId;
    }

    private IJobCatalogGrain Catalog => _grains.GetGrain<IJobCatalogGrain>(0);
}
