using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Platform.Catalog;

namespace Orleans.Hosting;

/// <summary>Registers named jobs in a silo's job catalog, so that clients can start them by name.</summary>
public static class JobCatalogSiloBuilderExtensions
{
    /// <summary>Adds <paramref name="definition"/> to the silo's job catalog.</summary>
    /// <exception cref="ArgumentException">The definition is not sound (a bad name or default, ...) or its name is taken.</exception>
    public static ISiloBuilder AddJob(this ISiloBuilder builder, JobDefinition definition)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddJob(definition);
        return builder;
    }

    /// <summary>Adds every job of <paramref name="definitions"/> to the silo's job catalog.</summary>
    /// <exception cref="ArgumentException">A definition is not sound or its name is taken.</exception>
    public static ISiloBuilder AddJobs(this ISiloBuilder builder, IEnumerable<JobDefinition> definitions)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(definitions);
        foreach (var definition in definitions)
        {
            builder.Services.AddJob(definition);
        }

        return builder;
    }

    /// <summary>Adds <paramref name="definition"/> to the job catalog of the silo whose services these are.</summary>
    /// <exception cref="ArgumentException">The definition is not sound (a bad name or default, ...) or its name is taken.</exception>
    public static IServiceCollection AddJob(this IServiceCollection services, JobDefinition definition)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(definition);

        // Checked now, so that a bad registration stops the silo while it is being configured, not at the first run.
        var problems = definition.Validate().ToList();
        if (services.Any(d => d.ServiceType == typeof(JobDefinition) && d.ImplementationInstance is JobDefinition j && j.Name == definition.Name))
        {
            problems.Add($"A job named '{definition.Name}' is already in the job catalog; job names must be unique.");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException(
                $"Job '{definition.Name}' cannot be added to the job catalog: {string.Join(" ", problems)}", nameof(definition));
        }

        services.AddSingleton(definition);
        services.TryAddSingleton<JobCatalog>();
        return services;
    }
}
