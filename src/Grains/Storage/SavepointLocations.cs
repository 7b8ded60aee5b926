using Microsoft.Extensions.Options;
using Platform.Checkpointing;
using Platform.Hosting;
using Platform.Storage.AzureBlob;
using Platform.Storage.FileSystem;

namespace Platform.Storage;

/// <summary>Where a savepoint or a restored snapshot lives: the storage that reads its files, and its metadata.</summary>
/// <param name="Root">The storage root; state handles are relative to <c>{Root}/{JobId}</c>.</param>
/// <param name="JobId">The directory under the root that handles are relative to.</param>
/// <param name="Directory">The savepoint's (or checkpoint's) own directory, holding <c>_metadata</c>; for a blob checkpoint, its URL.</param>
/// <param name="Kind">
/// The storage: <see cref="CheckpointStorageKind.FileSystem"/>, or <see cref="CheckpointStorageKind.AzureBlob"/> for a
/// retained checkpoint in the silos' blob container (read with the silos' own client; <paramref name="Root"/> is then the container URL and prefix).
/// </param>
[GenerateSerializer, Immutable, Alias("platform.SnapshotLocation")]
public sealed record SnapshotLocation(
    [property: Id(0)] string Root,
    [property: Id(1)] string JobId,
    [property: Id(2)] string Directory,
    [property: Id(3)] CheckpointStorageKind Kind = CheckpointStorageKind.FileSystem)
{
    /// <summary>The storage that reads the snapshot's files.</summary>
    internal ICheckpointStorage Storage(CheckpointStorageFactory factory) =>
        Kind == CheckpointStorageKind.FileSystem ? new FileSystemCheckpointStorage(Root) : factory.Create(Kind, null);

    /// <summary>Reads and verifies the snapshot's <c>_metadata</c>.</summary>
    /// <exception cref="CorruptCheckpointException">It is missing, truncated or altered.</exception>
    internal async Task<CheckpointMetadata> ReadMetadataAsync(CheckpointStorageFactory factory)
    {
        if (Kind == CheckpointStorageKind.FileSystem)
        {
            return MetadataFormat.Deserialize(await File.ReadAllBytesAsync(MetadataPath), MetadataPath);
        }

        MetadataFormat.TryParseCheckpointDirectory(Directory[(Directory.LastIndexOf('/') + 1)..], out var checkpointId);
        return await Storage(factory).ReadMetadataAsync(JobId, checkpointId);
    }

    internal string MetadataPath => Path.Combine(Directory, MetadataFormat.FileName);
}

/// <summary>
/// Resolves and checks savepoint paths against the silo's roots: savepoints are written under
/// <see cref="StreamingPlatformOptions.SavepointDirectory"/>, and a job resumes from a savepoint there or a retained
/// checkpoint under a checkpoint directory. Errors say what is wrong and what to do.
/// </summary>
internal sealed class SavepointLocations(IOptions<StreamingPlatformOptions> options, AzureBlobContainerProvider azureBlob)
{
    private string SavepointRoot => Path.GetFullPath(options.Value.SavepointDirectory);

    /// <summary>A new savepoint directory for a job, under <paramref name="target"/> or the savepoint root.</summary>
    public SnapshotLocation NewSavepoint(string jobId, string? target)
    {
        var parent = Path.GetFullPath(string.IsNullOrWhiteSpace(target) ? SavepointRoot : target);
        if (!IsUnder(parent, SavepointRoot, allowEqual: true))
        {
            throw new ArgumentException(
                $"The savepoint target '{target}' is outside the silos' savepoint root '{SavepointRoot}' (Platform:SavepointDirectory); choose a directory under it.");
        }

        var name = $"savepoint-{Shorten(jobId)}-{Guid.NewGuid().ToString("N")[..8]}";
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

        if (Uri.TryCreate(path, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp))
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

    // A retained checkpoint in the silos' blob container, named by its URL: {container URL}/{prefix}/{jobId}/chk-{n}.
    private SnapshotLocation ForBlobRestore(string url)
    {
        if (!options.Value.AzureBlob.IsConfigured)
        {
            throw new ArgumentException(
                $"The restore path '{url}' is a URL, but the silos have no Azure Blob account configured ({AzureBlobStorageOptions.SectionName}); " +
                "restore from a savepoint or checkpoint directory, or configure the silos' checkpoint container.");
        }

        var root = azureBlob.Container.Uri.ToString().TrimEnd('/') + (azureBlob.Prefix.Length > 0 ? $"/{azureBlob.Prefix}" : "");
        var relative = url.StartsWith(root + "/", StringComparison.Ordinal) ? url[(root.Length + 1)..].Split('/') : [];
        if (relative.Length != 2 || !MetadataFormat.TryParseCheckpointDirectory(relative[1], out _) || relative[0] is "" or "." or "..")
        {
            throw new ArgumentException(
                $"The restore path '{url}' is not a retained checkpoint in the silos' blob container; give {root}/{{jobId}}/chk-{{n}}.");
        }

        return new SnapshotLocation(root, relative[0], url, CheckpointStorageKind.AzureBlob);
    }

    /// <summary>Deletes a savepoint directory under the savepoint root.</summary>
    public void Dispose(string path)
    {
        var full = Path.GetFullPath(path.TrimEnd('/', '\\'));
        if (!IsUnder(full, SavepointRoot, allowEqual: false))
        {
            throw new ArgumentException($"'{path}' is outside the silos' savepoint root '{SavepointRoot}'; only savepoints under it can be disposed.");
        }

        if (!File.Exists(Path.Combine(full, MetadataFormat.FileName)))
        {
            throw new ArgumentException($"'{path}' is not a savepoint (it has no {MetadataFormat.FileName}); nothing was deleted.");
        }

        // The commit record first, so that a deletion cut short leaves nothing that looks like a savepoint.
        File.Delete(Path.Combine(full, MetadataFormat.FileName));
        Directory.Delete(full, recursive: true);
    }

    private static bool IsUnder(string path, string root, bool allowEqual) =>
        (allowEqual && string.Equals(path, root, StringComparison.Ordinal))
        || path.StartsWith(root.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private static string Shorten(string jobId) =>
        new([.. jobId.Where(char.IsLetterOrDigit).TakeLast(12)]);
}
