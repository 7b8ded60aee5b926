namespace Platform.Catalog;

/// <summary>The jobs registered in this silo's catalog (<c>siloBuilder.AddJob(...)</c>), by name.</summary>
internal sealed class JobCatalog
{
    private readonly Dictionary<string, JobDefinition> _jobs;

    public JobCatalog(IEnumerable<JobDefinition> definitions)
    {
        _jobs = new Dictionary<string, JobDefinition>(StringComparer.Ordinal);
        foreach (var definition in definitions)
        {
            // The registration extensions check this already; a definition added to the services directly is checked here.
            if (!_jobs.TryAdd(definition.Name, definition))
            {
                throw new InvalidOperationException($"Two jobs named '{definition.Name}' are registered in the job catalog; job names must be unique.");
            }
        }

        Entries = [.. _jobs.Values.OrderBy(j => j.Name, StringComparer.Ordinal).Select(j => j.ToEntry())];
    }

    /// <summary>Every job as the catalog lists it, by name.</summary>
    public IReadOnlyList<JobCatalogEntry> Entries { get; }

    /// <summary>The job named <paramref name="name"/>.</summary>
    /// <exception cref="JobNotInCatalogException">No job has that name.</exception>
    public JobDefinition Get(string name) =>
        _jobs.TryGetValue(name, out var definition) ? definition : throw new JobNotInCatalogException(name, [.. Entries.Select(e => e.Name)]);
}
