using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Providers;
using Platform.Checkpointing;
using Platform.Hosting;
using Platform.Storage;
using Platform.Storage.AzureBlob;
using Platform.Storage.FileSystem;
using Platform.Storage.InMemory;

[assembly: RegisterProvider("FileSystem", CheckpointStorageProviders.Kind, "Silo", typeof(FileSystemCheckpointStorageProviderBuilder))]
[assembly: RegisterProvider("InMemory", CheckpointStorageProviders.Kind, "Silo", typeof(InMemoryCheckpointStorageProviderBuilder))]
[assembly: RegisterProvider("AzureBlob", CheckpointStorageProviders.Kind, "Silo", typeof(AzureBlobCheckpointStorageProviderBuilder))]

namespace Platform.Hosting;

/// <summary>
/// Checkpoint storages as Orleans-style providers. Each is registered under a name; a job reaches the one named after
/// its storage kind (<c>FileSystem</c>, <c>InMemory</c>, <c>AzureBlob</c>), and jobs that choose none the one of the
/// silo's default kind, which configuration alone selects with <c>Platform:CheckpointStorage:ProviderType</c> (a
/// provider an assembly registered with <c>[assembly: RegisterProvider(name, "CheckpointStorage", "Silo", typeof(builder))]</c>),
/// as <c>Platform:StateBackend:ProviderType</c> selects the state backend.
/// </summary>
/// <remarks>
/// The storages named after the kinds read their settings from the <c>Platform</c> section's existing keys
/// (<c>Platform:CheckpointDirectory</c>, <c>Platform:InMemoryMaxStateSize</c>, <c>Platform:AzureBlob</c>), checked by
/// <see cref="StreamingPlatformOptionsValidator"/>; storages under other names have named options and their own
/// <see cref="Orleans.IConfigurationValidator"/>.
/// </remarks>
internal static class CheckpointStorageProviders
{
    /// <summary>The provider kind in <see cref="RegisterProviderAttribute"/>.</summary>
    public const string Kind = "CheckpointStorage";

    /// <summary>The configuration section, under <c>Platform</c>.</summary>
    public const string SectionName = "CheckpointStorage";

    /// <summary>The providers registered by the loaded assemblies, by name (case-insensitive).</summary>
    public static IReadOnlyDictionary<string, Type> Registered() => StateBackendProviders.Registered(Kind);

    /// <summary>Registers the storages named after the kinds, from the <c>Platform</c> section, unless code registered one of those names already.</summary>
    public static void AddBuiltIn(IServiceCollection services)
    {
        services.TryAddKeyedSingleton<ICheckpointStorageProvider>(Name(CheckpointStorageKind.FileSystem), (sp, _) =>
            new FileSystemCheckpointStorageProvider(Platform(sp).CheckpointDirectory));
        services.TryAddKeyedSingleton<ICheckpointStorageProvider>(Name(CheckpointStorageKind.InMemory), (sp, _) =>
            new InMemoryCheckpointStorageProvider(Platform(sp).InMemoryMaxStateSize));
        services.TryAddKeyedSingleton<ICheckpointStorageProvider>(Name(CheckpointStorageKind.AzureBlob), (sp, _) =>
            new AzureBlobCheckpointStorageProvider(sp.GetRequiredService<AzureBlobContainerProvider>(), AzureBlobStorageOptions.SectionName));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ISnapshotLocations, FileSystemSnapshotLocations>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ISnapshotLocations, AzureBlobSnapshotLocations>());
    }

    /// <summary>The name jobs of <paramref name="kind"/> reach their storage by.</summary>
    public static string Name(CheckpointStorageKind kind) => kind.ToString();

    /// <summary>Registers <paramref name="provider"/> under <paramref name="name"/>, replacing an earlier registration of that name.</summary>
    public static void Replace(IServiceCollection services, string name, Func<IServiceProvider, ICheckpointStorageProvider> provider)
    {
        foreach (var existing in services.Where(d => d.IsKeyedService && d.ServiceType == typeof(ICheckpointStorageProvider) && Equals(d.ServiceKey, name)).ToList())
        {
            services.Remove(existing);
        }

        services.AddKeyedSingleton(name, (sp, _) => provider(sp));
    }

    /// <summary>Makes <paramref name="kind"/> the checkpoint storage of jobs that do not choose one.</summary>
    public static void MakeDefault(IServiceCollection services, CheckpointStorageKind kind) =>
        services.Configure<StreamingPlatformOptions>(o => o.DefaultCheckpointStorage = kind);

    private static StreamingPlatformOptions Platform(IServiceProvider services) => services.GetRequiredService<IOptions<StreamingPlatformOptions>>().Value;
}

/// <summary>The <c>FileSystem</c> checkpoint storage provider: <c>Platform:CheckpointStorage:ProviderType = FileSystem</c>; its directory is <c>Platform:CheckpointDirectory</c>.</summary>
internal sealed class FileSystemCheckpointStorageProviderBuilder : IProviderBuilder<ISiloBuilder>
{
    public void Configure(ISiloBuilder builder, string? name, IConfigurationSection configurationSection) => builder.AddFileSystemCheckpointStorageAsDefault();
}

/// <summary>The <c>InMemory</c> checkpoint storage provider: <c>Platform:CheckpointStorage:ProviderType = InMemory</c>; its limit is <c>Platform:InMemoryMaxStateSize</c>.</summary>
internal sealed class InMemoryCheckpointStorageProviderBuilder : IProviderBuilder<ISiloBuilder>
{
    public void Configure(ISiloBuilder builder, string? name, IConfigurationSection configurationSection) => builder.AddInMemoryCheckpointStorageAsDefault();
}

/// <summary>The <c>AzureBlob</c> checkpoint storage provider: <c>Platform:CheckpointStorage:ProviderType = AzureBlob</c>; its account is in <c>Platform:AzureBlob</c>.</summary>
internal sealed class AzureBlobCheckpointStorageProviderBuilder : IProviderBuilder<ISiloBuilder>
{
    public void Configure(ISiloBuilder builder, string? name, IConfigurationSection configurationSection) => builder.AddAzureBlobCheckpointStorageAsDefault();
}
