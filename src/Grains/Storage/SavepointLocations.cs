using Microsoft.Extensions.Options;
using Platform.Checkpointing;
using Platform.Hosting;
using Platform.Storage.AzureBlob;
using Platform.Storage.FileSystem;

namespace Platform.Storage;

/// <summary>Where a savepoint or a restored snapshot lives: the storage that reads its files, and its metadata.</summary>
/// <param name="Root">The storage root; state handles are relative to <c>{Root}/{JobId}</c>. For blob storage, a URL.</param>
/// <param name="JobId">The directory under the root that handles are relative to.</param>
/// <param name="Directory">The savepoint's (or checkpoint's) own directory, holding <c>_metadata</c>; in blob storage, its URL.</param>
/// <param name="Kind">
/// The storage: <see cref="CheckpointStorageKind.FileSystem"/>, or <see cref="CheckpointStorageKind.AzureBlob"/> for a
/// savepoint or retained checkpoint in the silos' blob container (or one they may restore from), read and written with
/// the silos' own client.
/// </param>
[GenerateSerializer, Immutable, Alias("platform.SnapshotLocation")]
public sealed record SnapshotLocation(
    [property: Id(0)] string Root,
    [property: Id(1)] string JobId,
    [property: Id(2)] string Directory,
    [property: Id(3)] CheckpointStorageKind Kind = CheckpointStorageKind.FileSystem)
{
    /// <summary>The storage that reads and writes the snapshot's files.</summary>
    internal ICheckpointStorage Storage(CheckpointStorageFactory factory) =>
        Kind == CheckpointStorageKind.FileSystem ? new FileSystemCheckpointStorage(Root) : factory.AzureBlobAt(Root);

    /// <summary>Reads and verifies the snapshot's <c>_metadata</c>.</summary>
    /// <exception cref="CorruptCheckpointException">It is truncated or altered (or, on the file system, missing).</exception>
    /// <exception cref="ArgumentException">A blob snapshot has no <c>_metadata</c>: there is none at that URL.</exception>
    internal async Task<CheckpointMetadata> ReadMetadataAsync(CheckpointStorageFactory factory)
    {
        if (Kind == CheckpointStorageKind.FileSystem)
        {
            return MetadataFormat.Deserialize(await File.ReadAllBytesAsync(MetadataPath), MetadataPath);
        }

        var storage = factory.AzureBlobAt(Root);
        if (!await storage.MetadataExistsAtAsync(BlobFolder))
        {
            throw new ArgumentException(
                $"The restore path '{Directory}' holds no savepoint or checkpoint (no {MetadataFormat.FileName} blob under it); check the URL, or whether the savepoint was disposed.");
        }

        return await storage.ReadMetadataAtAsync(BlobFolder);
    }

    /// <summary>Commits a savepoint by writing its <c>_metadata</c>, after every state file.</summary>
    internal Task WriteMetadataAsync(CheckpointStorageFactory factory, CheckpointMetadata metadata) =>
        Kind == CheckpointStorageKind.FileSystem
            ? FileSystemCheckpointStorage.WriteAtomicallyAsync(MetadataPath, MetadataFormat.Serialize(metadata), CancellationToken.None)
            : factory.AzureBlobAt(Root).WriteMetadataAtAsync(BlobFolder, metadata);

    /// <summary>Deletes the snapshot's directory (its <c>_metadata</c> first, so that what is left never looks committed).</summary>
    internal async Task DeleteAsync(CheckpointStorageFactory factory)
    {
        if (Kind != CheckpointStorageKind.FileSystem)
        {
            await factory.AzureBlobAt(Root).DeleteFolderAsync(BlobFolder);
            return;
        }

        try
        {
            File.Delete(MetadataPath);
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    internal string MetadataPath => Path.Combine(Directory, MetadataFormat.FileName);

    // The snapshot's folder relative to the root: the savepoint's name, or {jobId}/chk-{n} for a retained checkpoint.
    private string BlobFolder => Directory[(Root.TrimEnd('/').Length + 1)..];
}

/// <summary>
/// Resolves and checks savepoint paths against the silo's roots: savepoints are written and disposed under
/// <see cref="StreamingPlatformOptions.SavepointDirectory"/> or, as blob URLs, under <c>{container URL}/{SavepointPrefix}</c>;
/// a job resumes from a savepoint there or a retained checkpoint under a checkpoint directory, or from any snapshot in
/// the silos' blob container and the containers they may restore from. Errors say what is wrong and what to do.
/// </summary>
internal sealed class SavepointLocations(IOptions<StreamingPlatformOptions> options, AzureBlobContainerProvider azureBlob, CheckpointStorageFactory storageFactory)
{
    private string SavepointRoot => Path.GetFullPath(options.Value.SavepointDirectory);

    /// <summary>
    /// A new savepoint directory for a job, under <paramref name="target"/> (a directory, or a URL in the silos' blob
    /// container) or, without one, under the root of <see cref="StreamingPlatformOptions.SavepointStorage"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The target is outside the savepoint root, or names blob storage the silos do not have.</exception>
    public SnapshotLocation NewSavepoint(string jobId, string? target)
    {
        var name = $"savepoint-{Shorten(jobId)}-{Guid.NewGuid().ToString("N")[..8]}";
        if (IsUrl(target) || (string.IsNullOrWhiteSpace(target) && options.Value.SavepointStorage == CheckpointStorageKind.AzureBlob))
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

        var parent = Path.GetFullPath(string.IsNullOrWhiteSpace(target) ? SavepointRoot : target);
        if (!IsUnder(parent, SavepointRoot, allowEqual: true))
        {
            throw new ArgumentException(
                $"The savepoint target '{target}' is outside the silos' savepoint root '{SavepointRoot}' (Platform:SavepointDirectory); choose a directory under it.");
        }

        return new SnapshotLocation(parent, name, Path.Combine(parent, name));
    }

    /// <summary>The location of a savepoint or retained checkpoint to restore from.</summary>
    /// <exception cref="ArgumentException">The path is outside the allowed roots or holds no snapshot.</exception>
    public SnapshotLocation ForRestore(string path, CheckpointingSettings? job)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new ArgumentException("The restore path is empty; give a savepoint directory or a retained checkpoint's chk-{n} directory.");
        }

        if (IsUrl(path))
        {
            return ForBlobRestore(path.TrimEnd('/'));
        }

        var full = Path.GetFullPath(path.TrimEnd('/', '\\'));
        var roots = new[] { SavepointRoot, Path.GetFullPath(options.Value.CheckpointDirectory), job?.Directory is { } own ? Path.GetFullPath(own) : null }
            .OfType<string>().Distinct().ToList();
        if (!roots.Any(root => IsUnder(full, root, allowEqual: false)))
        {
            throw new ArgumentException(
                $"The restore path '{path}' is outside the silos' savepoint and checkpoint roots ({string.Join(", ", roots)}); " +
                "restore from a savepoint or a retained checkpoint under one of them.");
        }

        if (!Directory.Exists(full) || !File.Exists(Path.Combine(full, MetadataFormat.FileName)))
        {
            throw new ArgumentException(
                $"The restore path '{path}' holds no savepoint or checkpoint (no {MetadataFormat.FileName} file in '{full}'); check the path, or whether the savepoint was disposed.");
        }

        // A retained checkpoint's handles are relative to its job's directory ({root}/{jobId}/chk-{n}/...); a
        // savepoint's are relative to the savepoint's own directory.
        var parent = Path.GetDirectoryName(full)!;
        return MetadataFormat.TryParseCheckpointDirectory(Path.GetFileName(full), out _)
            ? new SnapshotLocation(Path.GetDirectoryName(parent)!, Path.GetFileName(parent), full)
            : new SnapshotLocation(parent, Path.GetFileName(full), full);
    }

    // A savepoint, or a retained checkpoint ({prefix}/{jobId}/chk-{n}), anywhere in the silos' blob container or one of the
    // containers they may restore from: a savepoint is self-contained, so a copy under another prefix restores as well.
    private SnapshotLocation ForBlobRestore(string url)
    {
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

    /// <summary>Deletes a savepoint under the savepoint root (a directory, or a URL under the blob savepoint root), <c>_metadata</c> first.</summary>
    /// <exception cref="ArgumentException">The path is outside the savepoint root or holds no savepoint; nothing was deleted.</exception>
    public async Task DisposeAsync(string path)
    {
        if (IsUrl(path))
        {
            var url = path.TrimEnd('/');
            var root = BlobSavepointRoot(path);
            var relative = url.StartsWith(root + "/", StringComparison.Ordinal) ? url[root.Length..] : "";
            if (relative.Length == 0 || !PlainFolders(relative))
            {
                throw new ArgumentException($"'{path}' is outside the silos' blob savepoint root '{root}'; only savepoints under it can be disposed.");
            }

            var location = new SnapshotLocation(url[..url.LastIndexOf('/')], url[(url.LastIndexOf('/') + 1)..], url, CheckpointStorageKind.AzureBlob);
            var storage = storageFactory.AzureBlobAt(location.Root);
            if (!await storage.MetadataExistsAtAsync(location.JobId))
            {
                throw new ArgumentException($"'{path}' is not a savepoint (it has no {MetadataFormat.FileName} blob); nothing was deleted.");
            }

            await storage.DeleteFolderAsync(location.JobId);
            return;
        }

        var full = Path.GetFullPath(path.TrimEnd('/', '\\'));
        if (!IsUnder(full, SavepointRoot, allowEqual: false))
        {
            throw new ArgumentException($"'{path}' is outside the silos' savepoint root '{SavepointRoot}'; only savepoints under it can be disposed.");
        }

        if (!File.Exists(Path.Combine(full, MetadataFormat.FileName)))
        {
            throw new ArgumentException($"'{path}' is not a savepoint (it has no {MetadataFormat.FileName}); nothing was deleted.");
        }

        await new SnapshotLocation(Path.GetDirectoryName(full)!, Path.GetFileName(full), full).DeleteAsync(storageFactory);
    }

    // The URL under which blob savepoints are written: {container URL}/{SavepointPrefix}.
    private string BlobSavepointRoot(string? what)
    {
        RequireBlobAccount(what);
        return $"{azureBlob.ContainerUrl}/{azureBlob.SavepointPrefix}".TrimEnd('/');
    }

    private void RequireBlobAccount(string? what)
    {
        if (!options.Value.AzureBlob.IsConfigured)
        {
            throw new ArgumentException(
                $"{(string.IsNullOrWhiteSpace(what) ? $"{StreamingPlatformOptions.SectionName}:{nameof(StreamingPlatformOptions.SavepointStorage)} is AzureBlob" : $"'{what}' is a blob URL")}, " +
                "but the silos have no Azure Blob account configured " +
                $"({AzureBlobStorageOptions.SectionName}); use a savepoint directory, or configure the silos' blob container.");
        }
    }

    private static bool IsUrl(string? path) =>
        Uri.TryCreate(path, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp);

    // "" or "/a/b": folder names only, nothing that would escape or be read as a query.
    private static bool PlainFolders(string relative) =>
        relative.Length == 0 || (relative[0] == '/' && relative.IndexOfAny(['\\', '?', '#', '%']) < 0 && relative[1..].Split('/').All(s => s is not ("" or "." or "..")));

    private static bool IsUnder(string path, string root, bool allowEqual) =>
        (allowEqual && string.Equals(path, root, StringComparison.Ordinal))
        || path.StartsWith(root.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private static string Shorten(string jobId) =>
        new([.. jobId.Where(char.IsLetterOrDigit).TakeLast(12)]);
}
