using Microsoft.Extensions.Options;
using Platform.Checkpointing;
using Platform.Hosting;

namespace Platform.Storage.FileSystem;

/// <summary>
/// Savepoints and restorable snapshots on a file system: savepoints are written and disposed under
/// <see cref="StreamingPlatformOptions.SavepointDirectory"/>; a job resumes from a savepoint there or a retained
/// checkpoint under the silos' checkpoint directory or its own.
/// </summary>
internal sealed class FileSystemSnapshotLocations(IOptions<StreamingPlatformOptions> options, CheckpointStorageFactory storageFactory) : ISnapshotLocations
{
    private string SavepointRoot => Path.GetFullPath(options.Value.SavepointDirectory);

    /// <inheritdoc />
    public CheckpointStorageKind Kind => CheckpointStorageKind.FileSystem;

    /// <inheritdoc />
    public bool Claims(string path) => !SavepointLocations.IsUrl(path);

    /// <inheritdoc />
    public SnapshotLocation NewSavepoint(string name, string? target)
    {
        var parent = Path.GetFullPath(string.IsNullOrWhiteSpace(target) ? SavepointRoot : target);
        if (!IsUnder(parent, SavepointRoot, allowEqual: true))
        {
            throw new ArgumentException(
                $"The savepoint target '{target}' is outside the silos' savepoint root '{SavepointRoot}' (Platform:SavepointDirectory); choose a directory under it.");
        }

        return new SnapshotLocation(parent, name, Path.Combine(parent, name));
    }

    /// <inheritdoc />
    public SnapshotLocation ForRestore(string path, CheckpointingSettings? job)
    {
        var full = Path.GetFullPath(path.TrimEnd('/', '\\'));
        var checkpointRoot = storageFactory.Resolve(new CheckpointingSettings { Storage = CheckpointStorageKind.FileSystem }).Directory;
        var roots = new[] { SavepointRoot, checkpointRoot, job?.Directory is { } own ? Path.GetFullPath(own) : null }
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

    /// <inheritdoc />
    public Task<SnapshotLocation> ForDisposalAsync(string path)
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

        return Task.FromResult(new SnapshotLocation(Path.GetDirectoryName(full)!, Path.GetFileName(full), full));
    }

    /// <inheritdoc />
    public ICheckpointStorage StorageAt(SnapshotLocation location) => new FileSystemCheckpointStorage(location.Root);

    /// <inheritdoc />
    public async Task<CheckpointMetadata> ReadMetadataAsync(SnapshotLocation location) =>
        MetadataFormat.Deserialize(await File.ReadAllBytesAsync(location.MetadataPath), location.MetadataPath);

    /// <inheritdoc />
    public Task WriteMetadataAsync(SnapshotLocation location, CheckpointMetadata metadata) =>
        FileSystemCheckpointStorage.WriteAtomicallyAsync(location.MetadataPath, MetadataFormat.Serialize(metadata), CancellationToken.None);

    /// <inheritdoc />
    public Task DeleteAsync(SnapshotLocation location)
    {
        try
        {
            File.Delete(location.MetadataPath);
            Directory.Delete(location.Directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }

        return Task.CompletedTask;
    }

    // Symbolic links resolved: a link under the root that leads outside it is outside it.
    private static bool IsUnder(string path, string root, bool allowEqual) => RealPath.IsUnder(path, root, allowEqual);
}
