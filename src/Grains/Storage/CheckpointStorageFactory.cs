using Microsoft.Extensions.Options;
using Platform.Checkpointing;
using Platform.Hosting;
using Platform.Storage.AzureBlob;
using Platform.Storage.FileSystem;
using Platform.Storage.InMemory;

namespace Platform.Storage;

/// <summary>Creates the checkpoint storage a job's settings ask for, filling in the silo's defaults.</summary>
internal sealed class CheckpointStorageFactory(IOptions<StreamingPlatformOptions> options, AzureBlobContainerProvider azureBlob)
{
    /// <summary>The storage kind and directory that apply to a job.</summary>
    public (CheckpointStorageKind Kind, string? Directory) Resolve(CheckpointingSettings? settings)
    {
        var kind = settings?.Storage ?? options.Value.DefaultCheckpointStorage;
        return kind == CheckpointStorageKind.FileSystem
            ? (kind, Path.GetFullPath(settings?.Directory ?? options.Value.CheckpointDirectory))
            : (kind, null);
    }

    /// <summary>Why a job cannot use <paramref name="kind"/> on these silos, or <c>null</c> when it can.</summary>
    public string? Unavailable(CheckpointStorageKind kind) =>
        kind == CheckpointStorageKind.AzureBlob && !options.Value.AzureBlob.IsConfigured
            ? $"The job's checkpoint storage is AzureBlob, but the silos have no Azure Blob account configured: set {AzureBlobStorageOptions.SectionName}:ServiceUri, " +
              $"{AzureBlobStorageOptions.SectionName}:ConnectionString or {options.Value.AzureBlob.NamedConnectionKey} on the silos, or choose FileSystem storage."
            : null;

    /// <summary>
    /// The storage for a job. For in-memory storage every call returns a new instance: tasks only write inline
    /// state through it, and the coordinator keeps its own instance, which holds the metadata.
    /// </summary>
    public ICheckpointStorage Create(CheckpointStorageKind kind, string? directory) => kind switch
    {
        CheckpointStorageKind.FileSystem => new FileSystemCheckpointStorage(directory ?? options.Value.CheckpointDirectory),
        CheckpointStorageKind.InMemory => new InMemoryCheckpointStorage(options.Value.InMemoryMaxStateSize),
        CheckpointStorageKind.AzureBlob => new AzureBlobCheckpointStorage(azureBlob),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown checkpoint storage."),
    };

    /// <summary>Blob storage rooted at a URL in the silos' container or one they may restore from (a savepoint's parent folder).</summary>
    /// <exception cref="ArgumentException">The URL is in no such container.</exception>
    public AzureBlobCheckpointStorage AzureBlobAt(string rootUrl) =>
        azureBlob.Locate(rootUrl.TrimEnd('/') + "/") is { } located
            ? new AzureBlobCheckpointStorage(azureBlob, located.Container, located.Path)
            : throw new ArgumentException($"'{rootUrl}' is not in the silos' blob container {azureBlob.ContainerUrl} nor in one of {AzureBlobStorageOptions.SectionName}:{nameof(AzureBlobStorageOptions.RestoreContainers)}.");
}
