using Platform.Runtime;

namespace Platform.Catalog;

/// <summary>A request to start a catalog job by name.</summary>
[GenerateSerializer, Immutable, Alias("platform.JobRunRequest")]
public sealed record JobRunRequest
{
    /// <summary>The id the job is submitted under (the client chooses it, so that a retried request cannot start the job twice).</summary>
    [Id(0)] public required string JobId { get; init; }

    /// <summary>The catalog name of the job.</summary>
    [Id(1)] public required string Name { get; init; }

    /// <summary>The job's arguments, name → value as text; the silo parses them.</summary>
    [Id(2)] public IReadOnlyDictionary<string, string> Arguments { get; init; } = new Dictionary<string, string>();

    /// <summary>Overrides the job's default parallelism (the parallelism of operators that do not set their own).</summary>
    [Id(3)] public int? Parallelism { get; init; }

    /// <summary>The savepoint or retained checkpoint the job starts from; <c>null</c> for empty state.</summary>
    [Id(4)] public Checkpointing.RestoreSettings? RestoreFrom { get; init; }
}

/// <summary>
/// The silos' catalog of named jobs (a stateless worker, key 0): lists the jobs registered with
/// <c>siloBuilder.AddJob(...)</c> and starts one by name. Every silo should register the same jobs.
/// </summary>
[Alias("platform.IJobCatalogGrain")]
public interface IJobCatalogGrain : IGrainWithIntegerKey
{
    /// <summary>Every registered job, by name.</summary>
    Task<List<JobCatalogEntry>> List();

    /// <summary>Parses the arguments, builds the job and submits it under <see cref="JobRunRequest.JobId"/>; returns its status.</summary>
    /// <exception cref="JobNotInCatalogException">No job has that name.</exception>
    /// <exception cref="JobArgumentException">The arguments or the parallelism are wrong; the exception lists every problem.</exception>
    /// <exception cref="JobValidationException">The job built from the arguments is invalid (a missing input file, say).</exception>
    Task<JobStatusInfo> Run(JobRunRequest request);
}

/// <summary>The arguments of a catalog job run were refused; <see cref="Problems"/> lists everything wrong with them.</summary>
[GenerateSerializer, Alias("platform.JobArgumentException")]
public sealed class JobArgumentException : Exception
{
    /// <summary>Creates the exception for <paramref name="jobName"/> with every problem found.</summary>
    public JobArgumentException(string jobName, IReadOnlyList<string> problems)
        : base(Format(jobName, problems))
    {
        JobName = jobName;
        Problems = [.. problems];
    }

    /// <summary>The catalog name of the job.</summary>
    [Id(0)] public string JobName { get; }

    /// <summary>Every problem found, one sentence each.</summary>
    [Id(1)] public List<string> Problems { get; }

    private static string Format(string jobName, IReadOnlyList<string> problems) =>
        problems.Count == 1
            ? $"Job '{jobName}': {problems[0]}"
            : $"Job '{jobName}' cannot run with these arguments ({problems.Count} problems):" +
              string.Concat(problems.Select((p, i) => $"{Environment.NewLine}  {i + 1}. {p}"));
}

/// <summary>No job of the catalog has the name a client asked for.</summary>
[GenerateSerializer, Alias("platform.JobNotInCatalogException")]
public sealed class JobNotInCatalogException : Exception
{
    /// <summary>Creates the exception for <paramref name="name"/>, listing the names the catalog does have.</summary>
    public JobNotInCatalogException(string name, IReadOnlyList<string> known)
        : base(Format(name, known))
    {
        Name = name;
        Known = [.. known];
    }

    /// <summary>The name asked for.</summary>
    [Id(0)] public string Name { get; }

    /// <summary>The names the catalog has.</summary>
    [Id(1)] public List<string> Known { get; }

    private static string Format(string name, IReadOnlyList<string> known)
    {
        var suggestion = Suggestions.Closest(name, known);
        return $"No job named '{name}' is in the catalog" +
               (suggestion is null ? "." : $"; did you mean '{suggestion}'?") +
               (known.Count == 0 ? " The silos registered no jobs." : $" It has: {string.Join(", ", known)}.");
    }
}
