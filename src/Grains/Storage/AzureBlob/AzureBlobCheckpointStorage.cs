using System.IO.Hashing;
using Azure;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Platform.Checkpointing;

namespace Platform.Storage.AzureBlob;

/// <summary>
/// Checkpoints in an Azure Blob Storage container, in the filesystem storage's layout under an optional prefix:
/// <c>{prefix}/{jobId}/chk-{n}/...</c>, <c>{prefix}/{jobId}/shared/...</c>. A block blob becomes visible only when its
/// upload commits, so no reader sees half a file; <c>_metadata</c> is uploaded last and is the commit record.
/// Savepoints use the same class rooted elsewhere: <paramref name="container"/> and <paramref name="prefix"/> default to
/// the configured ones, and a savepoint's folder takes the place of a job's (<c>{prefix}/{savepoint}/chk-{n}/...</c>, its
/// <c>_metadata</c> at <c>{prefix}/{savepoint}/_metadata</c>).
/// </summary>
internal sealed class AzureBlobCheckpointStorage(AzureBlobContainerProvider provider, BlobContainerClient? container = null, string? prefix = null) : ICheckpointStorage
{
    private const int CopyBufferSize = 1024 * 1024;

    // Large state files go up in 8 MiB blocks, 4 at a time, so an upload holds at most ~32 MiB in memory.
    private static readonly StorageTransferOptions Transfer = new()
    {
        InitialTransferSize = 8 * 1024 * 1024,
        MaximumTransferSize = 8 * 1024 * 1024,
        MaximumConcurrency = 4,
    };

    private BlobContainerClient Container => container ?? provider.Container;

    private string Prefix => prefix?.Trim('/') ?? provider.Prefix;

    /// <inheritdoc />
    public string Description
    {
        get
        {
            try
            {
                var blobs = Container;
                return $"Azure Blob container '{blobs.Name}' of account '{blobs.AccountName}'{(Prefix.Length > 0 ? $" under '{Prefix}/'" : "")}";
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException)
            {
                return $"Azure Blob storage (not usable: {ex.Message})";
            }
        }
    }

    /// <inheritdoc />
    public bool SupportsSharedState => true;

    /// <inheritdoc />
    public async Task<StateHandle> WriteStateAsync(string jobId, long checkpointId, string name, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        var relative = $"{MetadataFormat.CheckpointDirectoryName(checkpointId)}/{SafeName(name)}";
        await UploadAsync(BlobName(jobId, relative), BinaryData.FromBytes(content), cancellationToken);
        return new StateHandle { Path = relative, Size = content.Length, Checksum = MetadataFormat.Checksum(content.Span) };
    }

    /// <inheritdoc />
    public Task<StateHandle> WriteStateAsync(string jobId, long checkpointId, string name, Stream content, CancellationToken cancellationToken = default) =>
        UploadStreamAsync(jobId, $"{MetadataFormat.CheckpointDirectoryName(checkpointId)}/{SafeName(name)}", content, cancellationToken);

    /// <inheritdoc />
    public Task<StateHandle> WriteSharedStateAsync(string jobId, string name, Stream content, CancellationToken cancellationToken = default) =>
        UploadStreamAsync(jobId, $"{NativeStateFile.SharedDirectory}/{SafeName(name)}", content, cancellationToken);

    /// <inheritdoc />
    public async Task ReadStateAsync(string jobId, StateHandle handle, Stream destination, CancellationToken cancellationToken = default)
    {
        var blob = Container.GetBlobClient(Resolve(jobId, handle.Path));
        (long Length, ulong Checksum) copied;
        try
        {
            var download = await blob.DownloadStreamingAsync(cancellationToken: cancellationToken);
            await using var source = download.Value.Content;
            copied = await StateFileCopy.CopyHashingAsync(source, destination, CopyBufferSize, cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            throw new CorruptCheckpointException(PathOf(blob), "the blob is missing.");
        }
        catch (RequestFailedException ex) when (ex.Status == 403)
        {
            throw AzureBlobErrors.AccessDenied(ex, $"read '{PathOf(blob)}'");
        }

        StateFileCopy.Verify(PathOf(blob), handle, copied.Length, copied.Checksum);
    }

    /// <inheritdoc />
    public async Task<byte[]> ReadStateAsync(string jobId, StateHandle handle, CancellationToken cancellationToken = default)
    {
        var blob = Container.GetBlobClient(Resolve(jobId, handle.Path));
        var content = await DownloadAsync(blob, cancellationToken);
        StateFileCopy.Verify(PathOf(blob), handle, content.Length, MetadataFormat.Checksum(content));
        return content;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<string>> ListSharedStateAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var directory = BlobName(jobId, $"{NativeStateFile.SharedDirectory}/");
        var job = BlobName(jobId, "");
        var paths = new List<string>();
        await foreach (var name in ListAsync(directory, cancellationToken))
        {
            paths.Add(name[job.Length..]);
        }

        return paths;
    }

    /// <inheritdoc />
    public Task DeleteSharedStateAsync(string jobId, IEnumerable<string> paths, CancellationToken cancellationToken = default) =>
        DeleteAsync([.. paths.Select(p => Resolve(jobId, p))], cancellationToken);

    /// <inheritdoc />
    /// <remarks>The commit is conditional (If-None-Match: *): a committed <c>_metadata</c> is never replaced.</remarks>
    public async Task WriteMetadataAsync(CheckpointMetadata metadata, CancellationToken cancellationToken = default)
    {
        var content = MetadataFormat.Serialize(metadata);
        var conditions = new BlobRequestConditions { IfNoneMatch = ETag.All };
        if (await UploadAsync(MetadataBlob(metadata.JobId, metadata.CheckpointId), BinaryData.FromBytes(content), conditions, cancellationToken) is { } existing)
        {
            // The same bytes are this very commit, acknowledged late (the client retried after the first attempt succeeded).
            var committed = await DownloadAsync(existing, cancellationToken);
            if (!committed.AsSpan().SequenceEqual(content))
            {
                throw CheckpointCommitErrors.AlreadyCommitted(metadata.JobId, metadata.CheckpointId, PathOf(existing));
            }
        }
    }

    /// <inheritdoc />
    public async Task<CheckpointMetadata> ReadMetadataAsync(string jobId, long checkpointId, CancellationToken cancellationToken = default)
    {
        var blob = Container.GetBlobClient(MetadataBlob(jobId, checkpointId));
        var path = PathOf(blob);
        var metadata = MetadataFormat.Deserialize(await DownloadAsync(blob, cancellationToken), path);
        if (metadata.JobId != jobId || metadata.CheckpointId != checkpointId)
        {
            throw new CorruptCheckpointException(path, $"it describes checkpoint {metadata.CheckpointId} of job '{metadata.JobId}', not checkpoint {checkpointId} of job '{jobId}'.");
        }

        return metadata;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<long>> ListCheckpointsAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var ids = new List<long>();
        await foreach (var (id, file) in ListCheckpointFilesAsync(jobId, cancellationToken))
        {
            if (file == MetadataFormat.FileName)
            {
                ids.Add(id);
            }
        }

        ids.Sort();
        return ids;
    }

    /// <inheritdoc />
    public async Task DeleteCheckpointAsync(string jobId, long checkpointId, CancellationToken cancellationToken = default)
    {
        // The commit record first, so that a deletion cut short leaves no checkpoint that looks complete.
        await DeleteAsync([MetadataBlob(jobId, checkpointId)], cancellationToken);
        var files = new List<string>();
        await foreach (var name in ListAsync(BlobName(jobId, $"{MetadataFormat.CheckpointDirectoryName(checkpointId)}/"), cancellationToken))
        {
            files.Add(name);
        }

        await DeleteAsync(files, cancellationToken);
    }

    /// <inheritdoc />
    public async Task DeleteAllExceptAsync(string jobId, IReadOnlySet<long> keep, CancellationToken cancellationToken = default)
    {
        var commits = new List<string>();
        var files = new List<string>();
        await foreach (var (id, file) in ListCheckpointFilesAsync(jobId, cancellationToken))
        {
            if (!keep.Contains(id))
            {
                var name = BlobName(jobId, $"{MetadataFormat.CheckpointDirectoryName(id)}/{file}");
                (file == MetadataFormat.FileName ? commits : files).Add(name);
            }
        }

        await DeleteAsync(commits, cancellationToken);
        await DeleteAsync(files, cancellationToken);
    }

    /// <summary>Commits a savepoint (or any snapshot folder) by uploading <c>{prefix}/{directory}/_metadata</c>, last.</summary>
    public async Task WriteMetadataAtAsync(string directory, CheckpointMetadata metadata, CancellationToken cancellationToken = default) =>
        await UploadAsync(FolderBlob(directory, MetadataFormat.FileName), BinaryData.FromBytes(MetadataFormat.Serialize(metadata)), cancellationToken);

    /// <summary>Whether <c>{prefix}/{directory}/_metadata</c> exists: whether the folder holds a committed snapshot.</summary>
    public async Task<bool> MetadataExistsAtAsync(string directory, CancellationToken cancellationToken = default)
    {
        var blob = Container.GetBlobClient(FolderBlob(directory, MetadataFormat.FileName));
        try
        {
            return await blob.ExistsAsync(cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 403)
        {
            throw AzureBlobErrors.AccessDenied(ex, $"read '{PathOf(blob)}'");
        }
    }

    /// <summary>Reads and verifies <c>{prefix}/{directory}/_metadata</c>.</summary>
    /// <exception cref="CorruptCheckpointException">It is missing, truncated or altered; the message names the blob.</exception>
    public async Task<CheckpointMetadata> ReadMetadataAtAsync(string directory, CancellationToken cancellationToken = default)
    {
        var blob = Container.GetBlobClient(FolderBlob(directory, MetadataFormat.FileName));
        return MetadataFormat.Deserialize(await DownloadAsync(blob, cancellationToken), PathOf(blob));
    }

    /// <summary>Deletes the folder <c>{prefix}/{directory}/</c>, its <c>_metadata</c> first; missing blobs are not an error.</summary>
    public async Task DeleteFolderAsync(string directory, CancellationToken cancellationToken = default)
    {
        // The commit record first, so that a deletion cut short leaves nothing that looks like a savepoint.
        await DeleteAsync([FolderBlob(directory, MetadataFormat.FileName)], cancellationToken);
        var files = new List<string>();
        await foreach (var name in ListAsync(FolderBlob(directory, ""), cancellationToken))
        {
            files.Add(name);
        }

        await DeleteAsync(files, cancellationToken);
    }


    private async Task UploadAsync(string name, BinaryData content, CancellationToken cancellationToken) =>
        await UploadAsync(name, content, conditions: null, cancellationToken);

    // Returns the blob when the conditions refused the upload because it already exists, null when it was written.
    private async Task<BlobClient?> UploadAsync(string name, BinaryData content, BlobRequestConditions? conditions, CancellationToken cancellationToken)
    {
        await provider.EnsureCreatedAsync(cancellationToken);
        var blob = Container.GetBlobClient(name);
        try
        {
            await blob.UploadAsync(content, new BlobUploadOptions { Conditions = conditions }, cancellationToken);
            return null;
        }
        catch (RequestFailedException ex) when (conditions is not null && (ex.ErrorCode == BlobErrorCode.BlobAlreadyExists || ex.Status == 412))
        {
            return blob;
        }
        catch (RequestFailedException ex) when (ex.Status == 404 && ex.ErrorCode == BlobErrorCode.ContainerNotFound)
        {
            throw provider.ContainerDeleted(ex);
        }
        catch (RequestFailedException ex) when (ex.Status == 403)
        {
            throw AzureBlobErrors.AccessDenied(ex, $"write '{PathOf(blob)}'");
        }
    }

    // Hashes the content on its way up; the SDK reads the stream once, in order, and buffers what it may have to resend.
    private async Task<StateHandle> UploadStreamAsync(string jobId, string relative, Stream content, CancellationToken cancellationToken)
    {
        await provider.EnsureCreatedAsync(cancellationToken);
        var blob = Container.GetBlobClient(BlobName(jobId, relative));
        var hashing = new HashingReadStream(content);
        try
        {
            await blob.UploadAsync(hashing, new BlobUploadOptions { TransferOptions = Transfer }, cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 404 && ex.ErrorCode == BlobErrorCode.ContainerNotFound)
        {
            throw provider.ContainerDeleted(ex);
        }
        catch (RequestFailedException ex) when (ex.Status == 403)
        {
            throw AzureBlobErrors.AccessDenied(ex, $"write '{PathOf(blob)}'");
        }

        return new StateHandle { Path = relative, Size = hashing.BytesRead, Checksum = hashing.Checksum };
    }

    private async Task<byte[]> DownloadAsync(BlobClient blob, CancellationToken cancellationToken)
    {
        try
        {
            var download = await blob.DownloadContentAsync(cancellationToken);
            return download.Value.Content.ToArray();
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            throw new CorruptCheckpointException(PathOf(blob), "the blob is missing.");
        }
        catch (RequestFailedException ex) when (ex.Status == 403)
        {
            throw AzureBlobErrors.AccessDenied(ex, $"read '{PathOf(blob)}'");
        }
    }

    // Every blob under chk-*/ of the job, as (checkpoint id, name inside the checkpoint's folder).
    private async IAsyncEnumerable<(long Id, string File)> ListCheckpointFilesAsync(string jobId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var job = BlobName(jobId, "");
        await foreach (var name in ListAsync(job + "chk-", cancellationToken))
        {
            var relative = name[job.Length..];
            var slash = relative.IndexOf('/', StringComparison.Ordinal);
            if (slash > 0 && MetadataFormat.TryParseCheckpointDirectory(relative[..slash], out var id))
            {
                yield return (id, relative[(slash + 1)..]);
            }
        }
    }

    private async IAsyncEnumerable<string> ListAsync(string prefix, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var pages = Container.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix }, cancellationToken).AsPages();
        await using var enumerator = pages.GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            bool more;
            try
            {
                more = await enumerator.MoveNextAsync();
            }
            catch (RequestFailedException ex) when (ex.Status == 404 && ex.ErrorCode == BlobErrorCode.ContainerNotFound)
            {
                // Nothing was ever written (the container is created by the first upload).
                yield break;
            }
            catch (RequestFailedException ex) when (ex.Status == 403)
            {
                throw AzureBlobErrors.AccessDenied(ex, $"list '{Container.Name}/{prefix}'");
            }

            if (!more)
            {
                yield break;
            }

            foreach (var item in enumerator.Current.Values)
            {
                yield return item.Name;
            }
        }
    }

    // Azure.Storage.Blobs.Batch is not available here, so a "batch" is a group of deletes run a bounded number at a time.
    private async Task DeleteAsync(IReadOnlyList<string> names, CancellationToken cancellationToken)
    {
        if (names.Count == 0)
        {
            return;
        }

        var blobs = Container;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = provider.Options.DeleteConcurrency, CancellationToken = cancellationToken };
        try
        {
            await Parallel.ForEachAsync(names, parallel, async (name, token) =>
                await blobs.DeleteBlobIfExistsAsync(name, DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: token));
        }
        catch (RequestFailedException ex) when (ex.Status == 404 && ex.ErrorCode == BlobErrorCode.ContainerNotFound)
        {
            // Nothing to delete.
        }
        catch (RequestFailedException ex) when (ex.Status == 403)
        {
            throw AzureBlobErrors.AccessDenied(ex, $"delete blobs in container '{blobs.Name}'");
        }
    }

    private string BlobName(string jobId, string relative) =>
        Prefix.Length == 0 ? $"{SafeName(jobId)}/{relative}" : $"{Prefix}/{SafeName(jobId)}/{relative}";

    // A blob in a folder of one or more segments under the prefix (a savepoint's, or a checkpoint's {jobId}/chk-{n}).
    private string FolderBlob(string directory, string relative)
    {
        var segments = directory.Trim('/').Split('/');
        if (segments.Any(s => s is "" or "." or "..") || directory.IndexOfAny(['\\', '?', '#']) >= 0)
        {
            throw new ArgumentException($"'{directory}' is not a folder of plain names separated by '/'.", nameof(directory));
        }

        var folder = string.Join('/', segments);
        return Prefix.Length == 0 ? $"{folder}/{relative}" : $"{Prefix}/{folder}/{relative}";
    }

    private string MetadataBlob(string jobId, long checkpointId) =>
        BlobName(jobId, $"{MetadataFormat.CheckpointDirectoryName(checkpointId)}/{MetadataFormat.FileName}");

    // A handle comes from metadata that may have been edited: it must name a blob inside the job's folder.
    private string Resolve(string jobId, string relative)
    {
        var segments = relative.Split('/');
        if (relative.Length == 0 || relative.Contains('\\') || segments.Any(s => s is "" or "." or ".."))
        {
            throw new CorruptCheckpointException(relative, $"the path leaves the job's checkpoint folder '{BlobName(jobId, "")}' or is not a relative blob path.");
        }

        return BlobName(jobId, relative);
    }

    private static string PathOf(BlobClient blob) => $"{blob.BlobContainerName}/{blob.Name}";

    private static string SafeName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Contains("..", StringComparison.Ordinal) || name.IndexOfAny(['/', '\\', '\0']) >= 0)
        {
            throw new ArgumentException($"'{name}' cannot be used as a checkpoint file or folder name.", nameof(name));
        }

        return name;
    }

    /// <summary>A forward-only read stream that hashes (XxHash64) and counts what passes through it.</summary>
    private sealed class HashingReadStream(Stream inner) : Stream
    {
        private readonly XxHash64 _hash = new();

        public long BytesRead { get; private set; }

        public ulong Checksum => _hash.GetCurrentHashAsUInt64();

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer);
            Append(buffer[..read]);
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            Append(buffer.Span[..read]);
            return read;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private void Append(ReadOnlySpan<byte> read)
        {
            _hash.Append(read);
            BytesRead += read.Length;
        }
    }
}
