using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Platform.Checkpointing;
using Platform.Hosting;
using Platform.Storage.AzureBlob;
using Platform.Storage.FileSystem;
using Platform.Storage.InMemory;

namespace Orleans.Hosting;

/// <summary>
/// Adds checkpoint storages to a silo, the way Orleans adds grain storage. A job reaches the storage named after its
/// storage kind (<c>FileSystem</c>, <c>InMemory</c>, <c>AzureBlob</c>); those three exist on every silo with the
/// <c>Platform</c> section's settings, and calling these methods with their names changes those settings. The
/// <c>AsDefault</c> variants also make the kind the storage of jobs that do not choose one.
/// </summary>
public static class CheckpointStorageSiloBuilderExtensions
{
    /// <summary>Adds (or reconfigures) the file-system checkpoint storage named <paramref name="name"/>.</summary>
    public static ISiloBuilder AddFileSystemCheckpointStorage(this ISiloBuilder builder, string name, Action<FileSystemCheckpointStorageOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddFileSystemCheckpointStorage(name, configure);
        return builder;
    }

    /// <summary>Makes the file-system storage (named <c>FileSystem</c>) the checkpoint storage of jobs that do not choose one.</summary>
    public static ISiloBuilder AddFileSystemCheckpointStorageAsDefault(this ISiloBuilder builder, Action<FileSystemCheckpointStorageOptions>? configure = null)
    {
        builder.AddFileSystemCheckpointStorage(CheckpointStorageProviders.Name(CheckpointStorageKind.FileSystem), configure);
        CheckpointStorageProviders.MakeDefault(builder.Services, CheckpointStorageKind.FileSystem);
        return builder;
    }

    /// <summary>Adds (or reconfigures) the in-memory checkpoint storage named <paramref name="name"/>.</summary>
    public static ISiloBuilder AddInMemoryCheckpointStorage(this ISiloBuilder builder, string name, Action<InMemoryCheckpointStorageOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddInMemoryCheckpointStorage(name, configure);
        return builder;
    }

    /// <summary>Makes the in-memory storage (named <c>InMemory</c>) the checkpoint storage of jobs that do not choose one.</summary>
    public static ISiloBuilder AddInMemoryCheckpointStorageAsDefault(this ISiloBuilder builder, Action<InMemoryCheckpointStorageOptions>? configure = null)
    {
        builder.AddInMemoryCheckpointStorage(CheckpointStorageProviders.Name(CheckpointStorageKind.InMemory), configure);
        CheckpointStorageProviders.MakeDefault(builder.Services, CheckpointStorageKind.InMemory);
        return builder;
    }

    /// <summary>Adds (or reconfigures) the Azure Blob checkpoint storage named <paramref name="name"/>.</summary>
    public static ISiloBuilder AddAzureBlobCheckpointStorage(this ISiloBuilder builder, string name, Action<AzureBlobStorageOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddAzureBlobCheckpointStorage(name, configure);
        return builder;
    }

    /// <summary>Makes Azure Blob storage (named <c>AzureBlob</c>, settings in <c>Platform:AzureBlob</c>) the checkpoint storage of jobs that do not choose one.</summary>
    public static ISiloBuilder AddAzureBlobCheckpointStorageAsDefault(this ISiloBuilder builder, Action<AzureBlobStorageOptions>? configure = null)
    {
        builder.AddAzureBlobCheckpointStorage(CheckpointStorageProviders.Name(CheckpointStorageKind.AzureBlob), configure);
        CheckpointStorageProviders.MakeDefault(builder.Services, CheckpointStorageKind.AzureBlob);
        return builder;
    }

    /// <summary>
    /// Adds the file-system checkpoint storage <paramref name="name"/>: named options, their validator (which only
    /// reads: nothing is created before the first checkpoint) and the provider. For <c>FileSystem</c>,
    /// <paramref name="configure"/> changes <c>Platform:CheckpointDirectory</c>.
    /// </summary>
    public static IServiceCollection AddFileSystemCheckpointStorage(this IServiceCollection services, string name, Action<FileSystemCheckpointStorageOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (name == CheckpointStorageProviders.Name(CheckpointStorageKind.FileSystem))
        {
            services.Configure<StreamingPlatformOptions>(o =>
            {
                var options = new FileSystemCheckpointStorageOptions { Directory = o.CheckpointDirectory };
                configure?.Invoke(options);
                o.CheckpointDirectory = options.Directory;
            });
            return services;
        }

        services.AddOptions<FileSystemCheckpointStorageOptions>(name).Configure(o => configure?.Invoke(o));
        services.AddTransient<IConfigurationValidator>(sp => new FileSystemCheckpointStorageOptionsValidator(Named<FileSystemCheckpointStorageOptions>(sp, name), name));
        CheckpointStorageProviders.Replace(services, name, sp => new FileSystemCheckpointStorageProvider(Named<FileSystemCheckpointStorageOptions>(sp, name).Directory));
        return services;
    }

    /// <summary>Adds the in-memory checkpoint storage <paramref name="name"/>. For <c>InMemory</c>, <paramref name="configure"/> changes <c>Platform:InMemoryMaxStateSize</c>.</summary>
    public static IServiceCollection AddInMemoryCheckpointStorage(this IServiceCollection services, string name, Action<InMemoryCheckpointStorageOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (name == CheckpointStorageProviders.Name(CheckpointStorageKind.InMemory))
        {
            services.Configure<StreamingPlatformOptions>(o =>
            {
                var options = new InMemoryCheckpointStorageOptions { MaxStateSize = o.InMemoryMaxStateSize };
                configure?.Invoke(options);
                o.InMemoryMaxStateSize = options.MaxStateSize;
            });
            return services;
        }

        services.AddOptions<InMemoryCheckpointStorageOptions>(name).Configure(o => configure?.Invoke(o));
        services.AddTransient<IConfigurationValidator>(sp => new InMemoryCheckpointStorageOptionsValidator(Named<InMemoryCheckpointStorageOptions>(sp, name), name));
        CheckpointStorageProviders.Replace(services, name, sp => new InMemoryCheckpointStorageProvider(Named<InMemoryCheckpointStorageOptions>(sp, name).MaxStateSize));
        return services;
    }

    /// <summary>
    /// Adds the Azure Blob checkpoint storage <paramref name="name"/>, with its own account client. For <c>AzureBlob</c>,
    /// <paramref name="configure"/> changes the silos' account settings (<c>Platform:AzureBlob</c>), which blob savepoints use too.
    /// </summary>
    public static IServiceCollection AddAzureBlobCheckpointStorage(this IServiceCollection services, string name, Action<AzureBlobStorageOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (name == CheckpointStorageProviders.Name(CheckpointStorageKind.AzureBlob))
        {
            services.Configure<StreamingPlatformOptions>(o => configure?.Invoke(o.AzureBlob));
            return services;
        }

        services.AddOptions<AzureBlobStorageOptions>(name).Configure<IServiceProvider>((o, sp) =>
        {
            o.Section = $"Checkpoint storage '{name}'";
            configure?.Invoke(o);
            o.NamedConnectionString ??= sp.GetService<IConfiguration>()?[o.NamedConnectionKey];
        });
        services.AddTransient<IConfigurationValidator>(sp => new AzureBlobStorageOptionsValidator(Named<AzureBlobStorageOptions>(sp, name), name));
        CheckpointStorageProviders.Replace(services, name, sp => new AzureBlobCheckpointStorageProvider(
            new AzureBlobContainerProvider(Named<AzureBlobStorageOptions>(sp, name), sp.GetRequiredService<ILogger<AzureBlobContainerProvider>>()),
            $"Checkpoint storage '{name}'"));
        return services;
    }

    private static T Named<T>(IServiceProvider services, string name) => services.GetRequiredService<IOptionsMonitor<T>>().Get(name);
}
