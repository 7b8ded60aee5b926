using Platform.Checkpointing;

namespace Platform.Storage.FileSystem;

/// <summary>
/// Checkpoints in a directory every silo can reach (Flink's FileSystemCheckpointStorage). Every file is written to
/// a temporary name, flushed to disk, then renamed, so a reader never sees half a file under its final name; the
/// metadata is written last.
/// </summary>
internal sealed class FileSystemCheckpointStorage : ICheckpointStorage
{
    private readonly string _root;

    public FileSystemCheckpointStorage(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        _root = Path.GetFullPath(root);
    }

    public string Description => $"file system at {_root}";

    public async Task<StateHandle> WriteStateAsync(string jobId, long checkpointId, string name, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        var relative = Path.Combine(MetadataFormat.CheckpointDirectoryName(checkpointId), SafeName(name));
        await WriteAtomicallyAsync(Path.Combine(JobDirectory(jobId), relative), content, cancellationToken);
        return new StateHandle { Path = relative, Size = content.Length, Checksum = MetadataFormat.Checksum(content.Span) };
    }

    public async Task<byte[]> ReadStateAsync(string jobId, StateHandle handle, CancellationToken cancellationToken = default)
    {
        var path = Resolve(jobId, handle.Path);
        byte[] content;
        try
        {
            content = await File.ReadAllBytesAsync(path, cancellationToken);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new CorruptCheckpointException(path, "the file is missing.");
        }

        if (content.Length != handle.Size)
        {
            throw new CorruptCheckpointException(path, $"it has {content.Length} bytes but the checkpoint recorded {handle.Size}; it is truncated or was replaced.");
        }

        var checksum = MetadataFormat.Checksum(content);
        if (checksum != handle.Checksum)
        {
            throw new CorruptCheckpointException(path, $"its checksum is {checksum:x16} but the checkpoint recorded {handle.Checksum:x16}.");
        }

        return content;
    }

    public Task WriteMetadataAsync(CheckpointMetadata metadata, CancellationToken cancellationToken = default) =>
        WriteAtomicallyAsync(MetadataPath(metadata.JobId, metadata.CheckpointId), MetadataFormat.Serialize(metadata), cancellationToken);

    public async Task<CheckpointMetadata> ReadMetadataAsync(string jobId, long checkpointId, CancellationToken cancellationToken = default)
    {
        var path = MetadataPath(jobId, checkpointId);
        byte[] content;
        try
        {
            content = await File.ReadAllBytesAsync(path, cancellationToken);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new CorruptCheckpointException(path, "the file is missing.");
        }

        var metadata = MetadataFormat.Deserialize(content, path);
        if (metadata.JobId != jobId || metadata.CheckpointId != checkpointId)
        {
            throw new CorruptCheckpointException(path, $"it describes checkpoint {metadata.CheckpointId} of job '{metadata.JobId}', not checkpoint {checkpointId} of job '{jobId}'.");
        }

        return metadata;
    }

    public Task<IReadOnlyList<long>> ListCheckpointsAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var directory = JobDirectory(jobId);
        if (!Directory.Exists(directory))
        {
            return Task.FromResult<IReadOnlyList<long>>([]);
        }

        IReadOnlyList<long> ids = [.. Directory.EnumerateDirectories(directory)
            .Select(d => MetadataFormat.TryParseCheckpointDirectory(Path.GetFileName(d), out var id) ? id : -1)
            .Where(id => id >= 0 && File.Exists(MetadataPath(jobId, id)))
            .Order()];
        return Task.FromResult(ids);
    }

    public Task DeleteCheckpointAsync(string jobId, long checkpointId, CancellationToken cancellationToken = default)
    {
        var directory = Path.Combine(JobDirectory(jobId), MetadataFormat.CheckpointDirectoryName(checkpointId));
        // Remove the commit record first, so that a deletion cut short leaves no checkpoint that looks complete.
        DeleteFile(Path.Combine(directory, MetadataFormat.FileName));
        DeleteDirectory(directory);
        return Task.CompletedTask;
    }

    public Task DeleteAllExceptAsync(string jobId, IReadOnlySet<long> keep, CancellationToken cancellationToken = default)
    {
        var directory = JobDirectory(jobId);
        if (Directory.Exists(directory))
        {
            foreach (var child in Directory.EnumerateDirectories(directory))
            {
                if (MetadataFormat.TryParseCheckpointDirectory(Path.GetFileName(child), out var id) && !keep.Contains(id))
                {
                    DeleteFile(Path.Combine(child, MetadataFormat.FileName));
                    DeleteDirectory(child);
                }
            }
        }

        return Task.CompletedTask;
    }

    private string JobDirectory(string jobId) => Path.Combine(_root, SafeName(jobId));

    private string MetadataPath(string jobId, long checkpointId) =>
        Path.Combine(JobDirectory(jobId), MetadataFormat.CheckpointDirectoryName(checkpointId), MetadataFormat.FileName);

    private string Resolve(string jobId, string relative)
    {
        var jobDirectory = JobDirectory(jobId);
        var full = Path.GetFullPath(Path.Combine(jobDirectory, relative));
        if (!full.StartsWith(jobDirectory + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new CorruptCheckpointException(relative, $"the path leaves the job's checkpoint directory '{jobDirectory}'.");
        }

        return full;
    }

    private static string SafeName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Contains("..", StringComparison.Ordinal) || name.IndexOfAny(['/', '\\', '\0']) >= 0)
        {
            throw new ArgumentException($"'{name}' cannot be used as a checkpoint file or directory name.", nameof(name));
        }

        return name;
    }

    private static async Task WriteAtomicallyAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            await using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 64 * 1024, FileOptions.Asynchronous))
            {
                await stream.WriteAsync(content, cancellationToken);
                await stream.FlushAsync(cancellationToken);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            DeleteFile(temporary);
            throw;
        }
    }

    private static void DeleteFile(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    private static void DeleteDirectory(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
