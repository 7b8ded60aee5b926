using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Serialization;
using Platform.Graph;
using Platform.Runtime;

namespace Platform.Catalog;

/// <summary>
/// Lists the silo's job catalog and starts catalog jobs: parses the arguments, builds the graph with the job's factory
/// and submits it to the job manager under the id the client chose, as <c>PlatformClient.SubmitAsync</c> would. A
/// stateless worker, because the catalog is the same on every silo and a run holds no state of its own.
/// </summary>
[StatelessWorker]
internal sealed partial class JobCatalogGrain(JobCatalog catalog, Serializer serializer, ILogger<JobCatalogGrain> logger) : Grain, IJobCatalogGrain
{
    public Task<List<JobCatalogEntry>> List() => Task.FromResult(catalog.Entries.ToList());

    public async Task<JobStatusInfo> Run(JobRunRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrWhiteSpace(request.JobId);
        var definition = catalog.Get(request.Name);

        var problems = new List<string>();
        if (request.Parallelism is { } requested && requested < 1)
        {
            problems.Add($"Parallelism {requested} is not allowed; it must be at least 1.");
        }

        var arguments = JobArguments.TryParse(definition, request.Arguments, problems);
        if (problems.Count > 0)
        {
            LogRefused(request.Name, problems.Count);
            throw new JobArgumentException(definition.Name, problems);
        }

        var graph = Build(definition, arguments, request.Parallelism ?? definition.Parallelism);
        graph.Restore = request.RestoreFrom;
        LogRunning(request.Name, request.JobId, string.Join(", ", request.Arguments.Select(a => $"{a.Key}={a.Value}")));
        return await GrainFactory.GetGrain<IJobManagerGrain>(request.JobId).Submit(graph);
    }

    private JobGraph Build(JobDefinition definition, JobArguments arguments, int parallelism)
    {
        StreamJobBuilder builder;
        try
        {
            builder = definition.Build(arguments);
        }
        catch (ArgumentException ex)
        {
            // The factory's own checks (combinations of arguments, say) are bad arguments, like the parser's.
            throw new JobArgumentException(definition.Name, [ex.Message]);
        }
        catch (Exception ex) when (ex is not JobArgumentException)
        {
            // The factory's exception type may not be serializable to the client: pass on what it says.
            LogBuildFailed(ex, definition.Name);
            throw new InvalidOperationException($"Building catalog job '{definition.Name}' failed: {ex.GetType().Name}: {ex.Message}");
        }

        builder.DefaultParallelism = parallelism;
        return builder.ToJobGraph(serializer);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Catalog job '{Name}' starts as job {JobId} with arguments [{Arguments}]")]
    private partial void LogRunning(string name, string jobId, string arguments);

    [LoggerMessage(Level = LogLevel.Information, Message = "Catalog job '{Name}' was refused: {Count} problem(s) with its arguments")]
    private partial void LogRefused(string name, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Building catalog job '{Name}' failed")]
    private partial void LogBuildFailed(Exception exception, string name);
}
