using Platform.Checkpointing;

namespace Platform.Storage.FileSystem;

/// <summary>
/// Checkpoints in a directory every silo can reach (Flink's FileSystemCheckpointStorage). Every file is written to
/// a temporary name, flushed to disk, then renamed, so a reader never sees half a file under its final name; the
/// metadata is written last. Each rename and each new directory is flushed too (<see cref="DurableFiles"/>), so a
/// commit that returned survives a power loss.
/// </summary>
internal sealed class FileSystemCheckpointStorage : ICheckpointStorage
{
    private const int CopyBufferSize = 1024 * 1024;
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

    public bool SupportsSharedState => true;

    public Task<StateHandle> WriteStateAsync(string jobId, long checkpointId, string name, Stream content, CancellationToken cancellationToken = default) =>
        WriteStreamAsync(jobId, Path.Combine(MetadataFormat.CheckpointDirectoryName(checkpointId), SafeName(name)), content, cancellationToken);

    public Task<StateHandle> WriteSharedStateAsync(string jobId, string name, Stream content, CancellationToken cancellationToken = default) =>
        WriteStreamAsync(jobId, $"{NativeStateFile.SharedDirectory}/{SafeName(name)}", content, cancellationToken);

    public async Task ReadStateAsync(string jobId, StateHandle handle, Stream destination, CancellationToken cancellationToken = default)
    {
        var path = Resolve(jobId, handle.Path);
        (long Length, ulong Checksum) copied;
        try
        {
            await using var source = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.Asynchronous | FileOptions.SequentialScan); // the copy reads in CopyBufferSize chunks: no second buffer
            copied = await StateFileCopy.CopyHashingAsync(source, destination, CopyBufferSize, cancellationToken);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new CorruptCheckpointException(path, "the file is missing.");
        }

        StateFileCopy.Verify(path, handle, copied.Length, copied.Checksum);
    }

    public Task<IReadOnlyList<string>> ListSharedStateAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var directory = Path.Combine(JobDirectory(jobId), NativeStateFile.SharedDirectory);
        IReadOnlyList<string> paths = Directory.Exists(directory)
            ? [.. Directory.EnumerateFiles(directory).Select(f => $"{NativeStateFile.SharedDirectory}/{Path.GetFileName(f)}")]
            : [];
        return Task.FromResult(paths);
    }

    public Task DeleteSharedStateAsync(string jobId, IEnumerable<string> paths, CancellationToken cancellationToken = default)
    {
        foreach (var path in paths)
        {
            DeleteFile(Resolve(jobId, path));
        }

        return Task.CompletedTask;
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

        StateFileCopy.Verify(path, handle, content.Length, MetadataFormat.Checksum(content));
        return content;
    }

    public async Task WriteMetadataAsync(CheckpointMetadata metadata, CancellationToken cancellationToken = default)
    {
        var path = MetadataPath(metadata.JobId, metadata.CheckpointId);
        var content = MetadataFormat.Serialize(metadata);
        // A committed checkpoint is never replaced; the same bytes again are the same commit (a retried write).
        if (!await WriteAtomicallyAsync(path, content, overwrite: false, cancellationToken)
            && !(await File.ReadAllBytesAsync(path, cancellationToken)).AsSpan().SequenceEqual(content))
        {
            throw CheckpointCommitErrors.AlreadyCommitted(metadata.JobId, metadata.CheckpointId, path);
        }
    }

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


    // Streams a file to a temporary name, hashing as it goes, then renames it: a reader never sees half a file.
    private async Task<StateHandle> WriteStreamAsync(string jobId, string relative, Stream content, CancellationToken cancellationToken)
    {
        var path = Path.Combine(JobDirectory(jobId), relative);
        DurableFiles.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        (long Length, ulong Checksum) written;
        try
        {
            await using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0, FileOptions.Asynchronous))
            {
                written = await StateFileCopy.CopyHashingAsync(content, stream, CopyBufferSize, cancellationToken);
                await stream.FlushAsync(cancellationToken);
                stream.Flush(flushToDisk: true);
            }

            DurableFiles.Replace(temporary, path, overwrite: true);
        }
        catch
        {
            DeleteFile(temporary);
            throw;
        }

        return new StateHandle { Path = relative.Replace(Path.DirectorySeparatorChar, '/'), Size = written.Length, Checksum = written.Checksum };
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

    /// <summary>Writes a file under a temporary name, flushes it to disk, then renames it and flushes its directory: a reader never sees half of it, and the rename is durable.</summary>
    internal static async Task WriteAtomicallyAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken) =>
        await WriteAtomicallyAsync(path, content, overwrite: true, cancellationToken);

    // Without overwrite, returns false and leaves the file alone when it exists. (On Unix .NET checks, then renames: a
    // writer of the same file in that instant could still be replaced; only a reused checkpoint id gets this far.)
    private static async Task<bool> WriteAtomicallyAsync(string path, ReadOnlyMemory<byte> content, bool overwrite, CancellationToken cancellationToken)
    {
        DurableFiles.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            await using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 64 * 1024, FileOptions.Asynchronous))
            {
                await stream.WriteAsync(content, cancellationToken);
                await stream.FlushAsync(cancellationToken);
                stream.Flush(flushToDisk: true);
            }

            try
            {
                File.Move(temporary, path, overwrite);
            }
            catch (IOException) when (!overwrite && File.Exists(path))
            {
                DeleteFile(temporary);
                // The file may be an earlier attempt of this write whose flush failed: a retried commit makes it durable.
                DurableFiles.FlushDirectory(Path.GetDirectoryName(path)!);
                return false;
            }

            // Outside the catch above: a failed flush is a failed commit, never mistaken for an existing file.
            DurableFiles.FlushDirectory(Path.GetDirectoryName(path)!);
            return true;
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
