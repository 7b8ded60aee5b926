using System.Collections.Concurrent;
using Platform.Checkpointing;

namespace Platform.Storage.InMemory;

/// <summary>
/// Checkpoints held in memory (Flink's JobManagerCheckpointStorage): state travels inline in the handles that tasks
/// send to the coordinator, which keeps the metadata. For tests and small state only; a state file larger than
/// <see cref="MaxStateSize"/> is refused with an error that says what to use instead.
/// </summary>
internal sealed class InMemoryCheckpointStorage(int maxStateSize = InMemoryCheckpointStorage.DefaultMaxStateSize) : ICheckpointStorage
{
    /// <summary>Flink's default limit for state held by the job manager: 5 MiB per state file.</summary>
    public const int DefaultMaxStateSize = 5 * 1024 * 1024;

    // The serialized form is kept to verify it like a file; the object keeps the inline bytes JSON leaves out.
    private readonly ConcurrentDictionary<(string JobId, long CheckpointId), byte[]> _metadata = new();
    private readonly ConcurrentDictionary<(string JobId, long CheckpointId), CheckpointMetadata> _objects = new();

    public int MaxStateSize { get; } = maxStateSize;

    public string Description => "in-memory storage of the checkpoint coordinator";

    public Task<StateHandle> WriteStateAsync(string jobId, long checkpointId, string name, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        if (content.Length > MaxStateSize)
        {
            throw new InvalidOperationException(
                $"State file '{name}' of checkpoint {checkpointId} is {content.Length:N0} bytes, above the in-memory checkpoint storage limit of {MaxStateSize:N0} bytes. " +
                "In-memory storage is for small state and tests: use file-system checkpoint storage for this job.");
        }

        var bytes = content.ToArray();
        return Task.FromResult(new StateHandle
        {
            Path = $"{MetadataFormat.CheckpointDirectoryName(checkpointId)}/{name}",
            Size = bytes.Length,
            Checksum = MetadataFormat.Checksum(bytes),
            Inline = bytes,
        });
    }

    public bool SupportsSharedState => false;

    public async Task<StateHandle> WriteStateAsync(string jobId, long checkpointId, string name, Stream content, CancellationToken cancellationToken = default)
    {
        using var buffer = new MemoryStream();
        await content.CopyToAsync(buffer, cancellationToken);
        return await WriteStateAsync(jobId, checkpointId, name, buffer.GetBuffer().AsMemory(0, (int)buffer.Length), cancellationToken);
    }

    public Task<StateHandle> WriteSharedStateAsync(string jobId, string name, Stream content, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("In-memory checkpoint storage keeps no shared files, so it takes full checkpoints only; use file-system storage for incremental checkpoints.");

    public async Task ReadStateAsync(string jobId, StateHandle handle, Stream destination, CancellationToken cancellationToken = default) =>
        await destination.WriteAsync(await ReadStateAsync(jobId, handle, cancellationToken), cancellationToken);

    public Task<IReadOnlyList<string>> ListSharedStateAsync(string jobId, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<string>>([]);

    public Task DeleteSharedStateAsync(string jobId, IEnumerable<string> paths, CancellationToken cancellationToken = default) => Task.CompletedTask;

    public Task<byte[]> ReadStateAsync(string jobId, StateHandle handle, CancellationToken cancellationToken = default)
    {
        var bytes = handle.Inline ?? throw new CorruptCheckpointException(handle.Path, "the in-memory handle carries no bytes.");
        if (bytes.Length != handle.Size || MetadataFormat.Checksum(bytes) != handle.Checksum)
        {
            throw new CorruptCheckpointException(handle.Path, "its bytes do not match the recorded size and checksum.");
        }

        return Task.FromResult(bytes);
    }

    public Task WriteMetadataAsync(CheckpointMetadata metadata, CancellationToken cancellationToken = default)
    {
        var key = (metadata.JobId, metadata.CheckpointId);
        var content = MetadataFormat.Serialize(metadata);
        // A committed checkpoint is never replaced; the same bytes again are the same commit.
        var committed = _metadata.GetOrAdd(key, content);
        if (!ReferenceEquals(committed, content))
        {
            return committed.AsSpan().SequenceEqual(content)
                ? Task.CompletedTask
                : throw CheckpointCommitErrors.AlreadyCommitted(metadata.JobId, metadata.CheckpointId, $"{metadata.JobId}/{MetadataFormat.CheckpointDirectoryName(metadata.CheckpointId)}/{MetadataFormat.FileName} (in memory)");
        }

        _objects[key] = metadata;
        return Task.CompletedTask;
    }

    public Task<CheckpointMetadata> ReadMetadataAsync(string jobId, long checkpointId, CancellationToken cancellationToken = default)
    {
        var path = $"{jobId}/{MetadataFormat.CheckpointDirectoryName(checkpointId)}/{MetadataFormat.FileName} (in memory)";
        if (!_metadata.TryGetValue((jobId, checkpointId), out var bytes))
        {
            throw new CorruptCheckpointException(path, "the checkpoint does not exist.");
        }

        MetadataFormat.Deserialize(bytes, path);
        return Task.FromResult(_objects[(jobId, checkpointId)]);
    }

    public Task<IReadOnlyList<long>> ListCheckpointsAsync(string jobId, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<long>>([.. _metadata.Keys.Where(k => k.JobId == jobId).Select(k => k.CheckpointId).Order()]);

    public Task DeleteCheckpointAsync(string jobId, long checkpointId, CancellationToken cancellationToken = default)
    {
        _metadata.TryRemove((jobId, checkpointId), out _);
        _objects.TryRemove((jobId, checkpointId), out _);
        return Task.CompletedTask;
    }

    public Task DeleteAllExceptAsync(string jobId, IReadOnlySet<long> keep, CancellationToken cancellationToken = default)
    {
        foreach (var key in _metadata.Keys.Where(k => k.JobId == jobId && !keep.Contains(k.CheckpointId)))
        {
            _metadata.TryRemove(key, out _);
            _objects.TryRemove(key, out _);
        }

        return Task.CompletedTask;
    }

    /// <summary>Test hook: replaces a checkpoint's stored metadata bytes.</summary>
    internal void CorruptMetadata(string jobId, long checkpointId, Func<byte[], byte[]> corrupt) =>
        _metadata[(jobId, checkpointId)] = corrupt(_metadata[(jobId, checkpointId)]);
}
