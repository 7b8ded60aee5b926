using Orleans;
using Orleans.Runtime;
using Platform.Checkpointing;

namespace Platform.Storage.AzureBlob;

/// <summary>A named Azure Blob checkpoint storage: one container client, built on first use.</summary>
internal sealed class AzureBlobCheckpointStorageProvider(AzureBlobContainerProvider container, string settingsName) : ICheckpointStorageProvider
{
    /// <summary>The silos' account and container, used by blob savepoints too.</summary>
    public AzureBlobContainerProvider Container => container;

    /// <inheritdoc />
    public CheckpointStorageKind Kind => CheckpointStorageKind.AzureBlob;

    /// <inheritdoc />
    public string? Unavailable => container.Options.IsConfigured
        ? null
        : $"The job's checkpoint storage is AzureBlob, but the silos have no Azure Blob account configured: set {settingsName}:ServiceUri, " +
          $"{settingsName}:ConnectionString or {container.Options.NamedConnectionKey} on the silos, or choose FileSystem storage.";

    /// <inheritdoc />
    public string? ResolveDirectory(string? jobDirectory) => null;

    /// <inheritdoc />
    public ICheckpointStorage Create(string? directory) => new AzureBlobCheckpointStorage(container);
}

/// <summary>Rejects bad <see cref="AzureBlobStorageOptions"/> of a named storage at startup, every problem in one error.</summary>
internal sealed class AzureBlobStorageOptionsValidator(AzureBlobStorageOptions options, string name) : IConfigurationValidator
{
    /// <inheritdoc />
    public void ValidateConfiguration()
    {
        var problems = options.Validate($"Checkpoint storage '{name}'").ToList();
        if (problems.Count > 0)
        {
            throw new OrleansConfigurationException(string.Join(Environment.NewLine, problems));
        }
    }
}
