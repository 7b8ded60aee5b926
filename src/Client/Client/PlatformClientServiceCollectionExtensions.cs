using Microsoft.Extensions.DependencyInjection.Extensions;
using Platform.Client;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="PlatformClient"/>: one setup for every host that drives jobs (the CLI, the silo's REST API and web UI).</summary>
public static class PlatformClientServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="PlatformClient"/> as a singleton over the host's Orleans <see cref="IGrainFactory"/>: the cluster
    /// client's in a client host (<c>UseOrleansClient</c>), the silo's own inside a silo (<c>UseOrleans</c>).
    /// </summary>
    public static IServiceCollection AddPlatformClient(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(provider => new PlatformClient(provider.GetRequiredService<IGrainFactory>(), provider));
        return services;
    }
}
