using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Runtime.Hosting;
using Orleans.Serialization;
using Orleans.Storage;
using Platform.Catalog;
using Platform.Hosting;
using Platform.Jobs;
using Platform.Placement;
using Platform.State;
using Platform.Storage;
using Platform.Storage.AzureBlob;
using Platform.Storage.FileSystem;

namespace Orleans.Hosting;

/// <summary>Adds the streaming platform to an Orleans silo.</summary>
public static class PlatformSiloBuilderExtensions
{
    /// <summary>The grain storage of stream subscriptions (Orleans' name for it).</summary>
    public const string PubSubStoreName = "PubSubStore";

    /// <summary>
    /// Adds the streaming runtime to the silo: job managers, checkpoint coordinators, task grains and their placement,
    /// the jobs' control streams (memory streams, with subscriptions kept in <c>PubSubStore</c>), and file-system grain
    /// storage for the platform's own state under <see cref="StreamingPlatformOptions.StateDirectory"/>, unless grain
    /// storage named <c>platform-state</c> or <c>PubSubStore</c> is configured already (for example Redis through
    /// <c>Orleans:GrainStorage:platform-state:ProviderType</c>). Options come from the <c>Platform</c> configuration
    /// section, then <paramref name="configure"/>; bad options stop the silo.
    /// </summary>
    public static ISiloBuilder AddStreamingPlatform(this ISiloBuilder builder, Action<StreamingPlatformOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var section = builder.Configuration.GetSection(StreamingPlatformOptions.SectionName);
        builder.Services.AddStreamingPlatform(section, configure: null);
        StateBackendProviders.Apply(builder, section.GetSection(StateBackendProviders.SectionName));
        StateBackendProviders.Apply(builder, section.GetSection(CheckpointStorageProviders.SectionName), CheckpointStorageProviders.Kind);
        if (configure is not null)
        {
            // Code runs after configuration, so what it sets wins.
            builder.Services.Configure(configure);
        }

        builder.AddMemoryStreams(PlatformStreams.ProviderName);
        return builder;
    }

    /// <summary>Makes the heap the state backend of jobs that do not choose one (the default).</summary>
    public static ISiloBuilder UseHeapStateBackend(this ISiloBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Configure<StreamingPlatformOptions>(o => o.DefaultStateBackend = Platform.State.StateBackendKind.Heap);
        return builder;
    }

    /// <summary>
    /// Makes embedded RocksDB the state backend of jobs that do not choose one, optionally changing its settings
    /// (<see cref="StreamingPlatformOptions.RocksDb"/>, bound from <c>Platform:RocksDb</c>).
    /// </summary>
    public static ISiloBuilder UseRocksDbStateBackend(this ISiloBuilder builder, Action<Platform.State.RocksDb.RocksDbStateOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Configure<StreamingPlatformOptions>(o =>
        {
            o.DefaultStateBackend = Platform.State.StateBackendKind.RocksDb;
            configure?.Invoke(o.RocksDb);
        });
        return builder;
    }

    /// <summary>
    /// Makes Azure Blob Storage the checkpoint storage of jobs that do not choose one, optionally changing its settings
    /// (<see cref="StreamingPlatformOptions.AzureBlob"/>, bound from <c>Platform:AzureBlob</c>); the same as
    /// <see cref="CheckpointStorageSiloBuilderExtensions.AddAzureBlobCheckpointStorageAsDefault"/>.
    /// </summary>
    public static ISiloBuilder UseAzureBlobCheckpointStorage(this ISiloBuilder builder, Action<AzureBlobStorageOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddAzureBlobCheckpointStorageAsDefault(configure);
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

        // An Aspire-style connection string (ConnectionStrings:{Platform:AzureBlob:ConnectionName}) lives outside the section.
        services.AddSingleton<IPostConfigureOptions<StreamingPlatformOptions>>(sp => new PostConfigureOptions<StreamingPlatformOptions>(
            null, o => o.AzureBlob.NamedConnectionString ??= sp.GetService<IConfiguration>()?[o.AzureBlob.NamedConnectionKey]));
        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StreamingPlatformOptions>, StreamingPlatformOptionsValidator>());
        services.AddPlacementDirector<SubtaskSpreadPlacement, SubtaskSpreadPlacementDirector>();
        // The platform's instruments, on the silo's meter factory (their meter lives and dies with this container).
        services.AddMetrics();
        services.TryAddSingleton<Platform.Diagnostics.StreamingMetrics>();
        services.TryAddSingleton(sp => new AzureBlobContainerProvider(
            sp.GetRequiredService<IOptions<StreamingPlatformOptions>>().Value.AzureBlob, sp.GetRequiredService<ILogger<AzureBlobContainerProvider>>()));
        CheckpointStorageProviders.AddBuiltIn(services);
        services.TryAddSingleton<CheckpointStorageFactory>();
        services.TryAddSingleton<SavepointLocations>();
        // Empty unless jobs are added (siloBuilder.AddJob), so that the catalog grain answers on every silo.
        services.TryAddSingleton<JobCatalog>();
        services.AddBuiltInStateBackends();
        AddStateStorageUnlessConfigured(services, PlatformStreams.StateStorageName, "platform");
        AddStateStorageUnlessConfigured(services, PubSubStoreName, "pubsub");
        services.AddSingleton<JobFailureWatcher>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<JobFailureWatcher>());
        return services;
    }

    /// <summary>
    /// Registers file-system grain storage under <paramref name="name"/> unless a grain storage of that name is already
    /// registered: by configuration (<c>Orleans:GrainStorage:{name}:ProviderType</c>, as .NET Aspire's
    /// <c>WithGrainStorage</c> sets it, applied before the silo builder's code runs) or by code that ran first. Silos on
    /// separate machines share the platform's control state that way (for example in Redis).
    /// </summary>
    private static void AddStateStorageUnlessConfigured(IServiceCollection services, string name, string folder)
    {
        if (!services.Any(d => d.IsKeyedService && d.ServiceType == typeof(IGrainStorage) && Equals(d.ServiceKey, name)))
        {
            services.AddGrainStorage(name, (sp, key) => CreateStateStorage(sp, key, folder));
        }
    }

    private static FileSystemGrainStorage CreateStateStorage(IServiceProvider services, string name, string folder) => new(
        name,
        Path.Combine(services.GetRequiredService<IOptions<StreamingPlatformOptions>>().Value.StateDirectory, folder),
        services.GetRequiredService<Serializer>(),
        services.GetRequiredService<ILogger<FileSystemGrainStorage>>());
}
