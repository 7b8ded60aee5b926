using Platform.Checkpointing;
using Platform.Hosting;

namespace Platform.Storage.AzureBlob;

/// <summary>
/// Savepoints and restorable snapshots in Azure Blob Storage, addressed by URL: savepoints are written and disposed
/// under <c>{container URL}/{SavepointPrefix}</c> of the silos' container; a job resumes from any savepoint or retained
/// checkpoint in that container or in one the silos may restore from.
/// </summary>
internal sealed class AzureBlobSnapshotLocations(AzureBlobContainerProvider azureBlob) : ISnapshotLocations
{
    /// <inheritdoc />
    public CheckpointStorageKind Kind => CheckpointStorageKind.AzureBlob;

    /// <inheritdoc />
    public bool Claims(string path) => SavepointLocations.IsUrl(path);

    /// <inheritdoc />
    public SnapshotLocation NewSavepoint(string name, string? target)
    {
        var root = BlobSavepointRoot(target);
        var blobParent = string.IsNullOrWhiteSpace(target) ? root : target.TrimEnd('/');
        if (!(blobParent == root || blobParent.StartsWith(root + "/", StringComparison.Ordinal)) || !PlainFolders(blobParent[root.Length..]))
        {
            throw new ArgumentException(
                $"The savepoint target '{target}' is outside the silos' blob savepoint root '{root}' ({AzureBlobStorageOptions.SectionName}:ContainerName and " +
                $"{AzureBlobStorageOptions.SectionName}:{nameof(AzureBlobStorageOptions.SavepointPrefix)}); choose a URL under it, with plain folder names.");
        }

        return new SnapshotLocation(blobParent, name, $"{blobParent}/{name}", CheckpointStorageKind.AzureBlob);
    }

    // A savepoint, or a retained checkpoint ({prefix}/{jobId}/chk-{n}), anywhere in the silos' blob container or one of the
    // containers they may restore from: a savepoint is self-contained, so a copy under another prefix restores as well.
    /// <inheritdoc />
    public SnapshotLocation ForRestore(string path, CheckpointingSettings? job)
    {
        var url = path.TrimEnd('/');
        RequireBlobAccount(url);
        var located = url.IndexOfAny(['?', '#']) < 0 ? azureBlob.Locate(url + "/") : null;
        var segments = located?.Path.Split('/') ?? [];
        if (located is not { } found || segments.Length == 0 || !PlainFolders("/" + found.Path))
        {
            throw new ArgumentException(
                $"The restore path '{url}' is not in the silos' blob container {azureBlob.ContainerUrl} (nor in one of " +
                $"{AzureBlobStorageOptions.SectionName}:{nameof(AzureBlobStorageOptions.RestoreContainers)}); give the URL of a savepoint or of a retained checkpoint " +
                $"({azureBlob.ContainerUrl}/{{prefix}}/{{jobId}}/chk-{{n}}) in it, without a query string.");
        }

        var containerUrl = url[..^(found.Path.Length + 1)];
        string Under(int count) => count == 0 ? containerUrl : $"{containerUrl}/{string.Join('/', segments[..count])}";

        // As on the file system: a checkpoint's handles are relative to its job's folder, a savepoint's to its own.
        return MetadataFormat.TryParseCheckpointDirectory(segments[^1], out _) && segments.Length >= 2
            ? new SnapshotLocation(Under(segments.Length - 2), segments[^2], url, CheckpointStorageKind.AzureBlob)
            : new SnapshotLocation(Under(segments.Length - 1), segments[^1], url, CheckpointStorageKind.AzureBlob);
    }

    /// <inheritdoc />
    public async Task<SnapshotLocation> ForDisposalAsync(string path)
    {
        var url = path.TrimEnd('/');
        var root = BlobSavepointRoot(path);
        var relative = url.StartsWith(root + "/", StringComparison.Ordinal) ? url[root.Length..] : "";
        if (relative.Length == 0 || !PlainFolders(relative))
        {
            throw new ArgumentException($"'{path}' is outside the silos' blob savepoint root '{root}'; only savepoints under it can be disposed.");
        }

        var location = new SnapshotLocation(url[..url.LastIndexOf('/')], url[(url.LastIndexOf('/') + 1)..], url, CheckpointStorageKind.AzureBlob);
        if (!await At(location.Root).MetadataExistsAtAsync(location.JobId))
        {
            throw new ArgumentException($"'{path}' is not a savepoint (it has no {MetadataFormat.FileName} blob); nothing was deleted.");
        }

        return location;
    }

    /// <inheritdoc />
    public ICheckpointStorage StorageAt(SnapshotLocation location) => At(location.Root);

    /// <inheritdoc />
    public async Task<CheckpointMetadata> ReadMetadataAsync(SnapshotLocation location)
    {
        var storage = At(location.Root);
        if (!await storage.MetadataExistsAtAsync(Folder(location)))
        {
            throw new ArgumentException(
                $"The restore path '{location.Directory}' holds no savepoint or checkpoint (no {MetadataFormat.FileName} blob under it); check the URL, or whether the savepoint was disposed.");
        }

        return await storage.ReadMetadataAtAsync(Folder(location));
    }

    /// <inheritdoc />
    public Task WriteMetadataAsync(SnapshotLocation location, CheckpointMetadata metadata) =>
        At(location.Root).WriteMetadataAtAsync(Folder(location), metadata);

    /// <inheritdoc />
    public Task DeleteAsync(SnapshotLocation location) => At(location.Root).DeleteFolderAsync(Folder(location));

    /// <summary>Blob storage rooted at a URL in the silos' container or one they may restore from (a savepoint's parent folder).</summary>
    /// <exception cref="ArgumentException">The URL is in no such container.</exception>
    private AzureBlobCheckpointStorage At(string rootUrl) =>
        azureBlob.Locate(rootUrl.TrimEnd('/') + "/") is { } located
            ? new AzureBlobCheckpointStorage(azureBlob, located.Container, located.Path)
            : throw new ArgumentException($"'{rootUrl}' is not in the silos' blob container {azureBlob.ContainerUrl} nor in one of {AzureBlobStorageOptions.SectionName}:{nameof(AzureBlobStorageOptions.RestoreContainers)}.");

    // The snapshot's folder relative to the root: the savepoint's name, or {jobId}/chk-{n} for a retained checkpoint.
    private static string Folder(SnapshotLocation location) => location.Directory[(location.Root.TrimEnd('/').Length + 1)..];

    // The URL under which blob savepoints are written: {container URL}/{SavepointPrefix}.
    private string BlobSavepointRoot(string? what)
    {
        RequireBlobAccount(what);
        return $"{azureBlob.ContainerUrl}/{azureBlob.SavepointPrefix}".TrimEnd('/');
    }

    private void RequireBlobAccount(string? what)
    {
        if (!azureBlob.Options.IsConfigured)
        {
            throw new ArgumentException(
                $"{(string.IsNullOrWhiteSpace(what) ? $"{StreamingPlatformOptions.SectionName}:{nameof(StreamingPlatformOptions.SavepointStorage)} is AzureBlob" : $"'{what}' is a blob URL")}, " +
                "but the silos have no Azure Blob account configured " +
                $"({AzureBlobStorageOptions.SectionName}); use a savepoint directory, or configure the silos' blob container.");
        }
    }

    // "" or "/a/b": folder names only, nothing that would escape or be read as a query.
    private static bool PlainFolders(string relative) =>
        relative.Length == 0 || (relative[0] == '/' && relative.IndexOfAny(['\\', '?', '#', '%']) < 0 && relative[1..].Split('/').All(s => s is not ("" or "." or "..")));
}
