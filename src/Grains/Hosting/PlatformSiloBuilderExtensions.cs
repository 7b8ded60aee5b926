using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Runtime.Hosting;
using Orleans.Serialization;
using Platform.Hosting;
using Platform.Jobs;
using Platform.Placement;
using Platform.Storage;
using Platform.Storage.FileSystem;

namespace Orleans.Hosting;

/// <summary>Adds the streaming platform to an Orleans silo.</summary>
public static class PlatformSiloBuilderExtensions
{
    /// <summary>
    /// Adds the streaming runtime to the silo: job managers, checkpoint coordinators, task grains and their placement,
    /// the jobs' control streams (memory streams, with subscriptions kept in <c>PubSubStore</c>), and file-system grain
    /// storage for the platform's own state under <see cref="StreamingPlatformOptions.StateDirectory"/>. Options come
    /// from the <c>Platform</c> configuration section, then <paramref name="configure"/>; bad options stop the silo.
    /// </summary>
    public static ISiloBuilder AddStreamingPlatform(this ISiloBuilder builder, Action<StreamingPlatformOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddStreamingPlatform(builder.Configuration.GetSection(StreamingPlatformOptions.SectionName), configure);
        builder.AddMemoryStreams(PlatformStreams.ProviderName);
        return builder;
    }

    /// <summary>Registers the streaming runtime's services (the stream provider is added by the <see cref="ISiloBuilder"/> overload).</summary>
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
        services.TryAddSingleton<CheckpointStorageFactory>();
        services.AddGrainStorage(PlatformStreams.StateStorageName, (sp, name) => CreateStateStorage(sp, name, "platform"));
        services.AddGrainStorage("PubSubStore", (sp, name) => CreateStateStorage(sp, name, "pubsub"));
        services.AddSingleton<JobFailureWatcher>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<JobFailureWatcher>());
        return services;
    }

    private static FileSystemGrainStorage CreateStateStorage(IServiceProvider services, string name, string folder) => new(
        name,
        Path.Combine(services.GetRequiredService<IOptions<StreamingPlatformOptions>>().Value.StateDirectory, folder),
        services.GetRequiredService<Serializer>(),
        services.GetRequiredService<ILogger<FileSystemGrainStorage>>());
}
