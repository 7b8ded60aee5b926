using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Platform.Hosting;
using Platform.Placement;

namespace Orleans.Hosting;

/// <summary>Adds the streaming platform to an Orleans silo.</summary>
public static class PlatformSiloBuilderExtensions
{
    /// <summary>
    /// Adds the streaming runtime (job managers, task grains, subtask placement) to the silo, with options from the
    /// <c>Platform</c> configuration section, then <paramref name="configure"/>. Bad options stop the silo at startup.
    /// </summary>
    public static ISiloBuilder AddStreamingPlatform(this ISiloBuilder builder, Action<StreamingPlatformOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddStreamingPlatform(builder.Configuration.GetSection(StreamingPlatformOptions.SectionName), configure);
        return builder;
    }

    /// <summary>Registers the streaming runtime's services.</summary>
    public static IServiceCollection AddStreamingPlatform(this IServiceCollection services, IConfiguration? section, Action<StreamingPlatformOptions>? configure = null)
    {
        var options = services.AddOptions<StreamingPlatformOptions>();
        if (section is not null)
        {
            options.Bind(section, o => o.ErrorOnUnknownConfiguration = true);
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StreamingPlatformOptions>, StreamingPlatformOptionsValidator>());
        services.AddPlacementDirector<SubtaskSpreadPlacement, SubtaskSpreadPlacementDirector>();
        return services;
    }
}
