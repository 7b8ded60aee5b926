using Azure.Storage.Blobs;
using Microsoft.Extensions.Logging.Abstractions;
using Platform.Checkpointing;
using Platform.Storage;
using Platform.Storage.AzureBlob;
using Platform.Storage.FileSystem;
using Platform.Storage.InMemory;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Storage;

/// <summary>The checkpoint-storage contract; every storage runs this suite.</summary>
public abstract class CheckpointStorageConformanceTests
{
    private readonly string _jobId = $"job-{Guid.NewGuid():N}";

    internal abstract ICheckpointStorage Storage { get; }

    /// <summary>Damages the stored metadata of a checkpoint.</summary>
    internal abstract void CorruptMetadata(string jobId, long checkpointId, Func<byte[], byte[]> corrupt);

    /// <summary>The metadata of a checkpoint with no subtasks, committed now.</summary>
    internal static CheckpointMetadata EmptyMetadata(string jobId, long id) => new()
    {
        JobId = jobId,
        CheckpointId = id,
        TriggeredAt = DateTimeOffset.UtcNow,
        CompletedAt = DateTimeOffset.UtcNow,
        MaxParallelism = 128,
        Subtasks = [],
    };

    private static CheckpointMetadata Metadata(string jobId, long id, params StateHandle[] handles) => new()
    {
        JobId = jobId,
        CheckpointId = id,
        TriggeredAt = DateTimeOffset.UnixEpoch.AddSeconds(id),
        CompletedAt = DateTimeOffset.UnixEpoch.AddSeconds(id + 1),
        MaxParallelism = 128,
        Subtasks =
        [
            new SubtaskSnapshot
            {
                TaskIndex = 0,
                SubtaskIndex = 0,
                Operators = [new OperatorSnapshot { OperatorUid = "source", SourceOffset = 42 * id }],
            },
            new SubtaskSnapshot
            {
                TaskIndex = 1,
                SubtaskIndex = 0,
                Operators = [.. handles.Select(h => new OperatorSnapshot { OperatorUid = "count", KeyedState = new KeyedStateSnapshot { KeyGroupStart = 0, KeyGroupEnd = 127, Handle = h } })],
            },
        ],
    };

    [Fact]
    public async Task A_checkpoint_round_trips_state_and_metadata()
    {
        var content = Enumerable.Range(0, 10_000).Select(i => (byte)i).ToArray();
        var handle = await Storage.WriteStateAsync(_jobId, 1, "1-0-count.state", content);
        await Storage.WriteMetadataAsync(Metadata(_jobId, 1, handle));

        Assert.Equal([1L], await Storage.ListCheckpointsAsync(_jobId));
        var metadata = await Storage.ReadMetadataAsync(_jobId, 1);
        Assert.Equal(42, metadata.Subtasks[0].Operators[0].SourceOffset);
        var read = metadata.Subtasks[1].Operators[0].KeyedState!.Handle!;
        Assert.Equal(handle.Size, read.Size);
        Assert.Equal(handle.Checksum, read.Checksum);
        Assert.Equal(content, await Storage.ReadStateAsync(_jobId, handle));
    }

    [Fact]
    public async Task A_checkpoint_without_metadata_does_not_exist()
    {
        await Storage.WriteStateAsync(_jobId, 5, "orphan.state", new byte[] { 1, 2, 3 });

        Assert.Empty(await Storage.ListCheckpointsAsync(_jobId));
        await Assert.ThrowsAsync<CorruptCheckpointException>(() => Storage.ReadMetadataAsync(_jobId, 5));
    }

    [Fact]
    public async Task Checkpoints_are_listed_in_order_and_deleted_with_their_files()
    {
        foreach (var id in new long[] { 3, 1, 2 })
        {
            var handle = await Storage.WriteStateAsync(_jobId, id, "s.state", new byte[] { (byte)id });
            await Storage.WriteMetadataAsync(Metadata(_jobId, id, handle));
        }

        Assert.Equal([1L, 2, 3], await Storage.ListCheckpointsAsync(_jobId));
        await Storage.DeleteCheckpointAsync(_jobId, 2);
        await Storage.DeleteCheckpointAsync(_jobId, 2);
        Assert.Equal([1L, 3], await Storage.ListCheckpointsAsync(_jobId));

        await Storage.WriteStateAsync(_jobId, 4, "aborted.state", new byte[] { 4 });
        await Storage.DeleteAllExceptAsync(_jobId, new HashSet<long> { 3 });
        Assert.Equal([3L], await Storage.ListCheckpointsAsync(_jobId));
    }

    [Fact]
    public async Task A_committed_checkpoint_is_never_overwritten_by_another_commit_of_its_id()
    {
        var handle = await Storage.WriteStateAsync(_jobId, 1, "s.state", new byte[] { 1, 2, 3 });
        var committed = Metadata(_jobId, 1, handle);
        await Storage.WriteMetadataAsync(committed);

        // The same commit again (a retry whose first attempt succeeded unacknowledged) is that commit, not an error.
        await Storage.WriteMetadataAsync(committed);

        // Other metadata under the same id: the id was reused, so the coordinator's state was lost.
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => Storage.WriteMetadataAsync(Metadata(_jobId, 1)));
        Assert.Contains($"Checkpoint 1 of job '{_jobId}' is already committed", error.Message);
        Assert.Contains("chk-1", error.Message);
        Assert.Contains("_metadata", error.Message);
        Assert.Contains("never overwritten", error.Message);

        Assert.Equal([1L], await Storage.ListCheckpointsAsync(_jobId));
        var read = (await Storage.ReadMetadataAsync(_jobId, 1)).Subtasks[1].Operators.Single().KeyedState!.Handle!;
        Assert.Equal(handle.Checksum, read.Checksum);
        Assert.Equal([1, 2, 3], await Storage.ReadStateAsync(_jobId, read));
    }

    [Fact]
    public async Task Truncated_metadata_is_reported_with_its_file()
    {
        await Storage.WriteMetadataAsync(Metadata(_jobId, 1));
        CorruptMetadata(_jobId, 1, bytes => bytes[..(bytes.Length / 2)]);

        var error = await Assert.ThrowsAsync<CorruptCheckpointException>(() => Storage.ReadMetadataAsync(_jobId, 1));
        Assert.Contains("_metadata", error.FilePath);
        Assert.Contains("chk-1", error.Message);
    }

    [Fact]
    public async Task Altered_metadata_fails_its_checksum()
    {
        await Storage.WriteMetadataAsync(Metadata(_jobId, 1));
        CorruptMetadata(_jobId, 1, bytes => System.Text.Encoding.UTF8.GetBytes(System.Text.Encoding.UTF8.GetString(bytes).Replace("\"sourceOffset\":42", "\"sourceOffset\":43")));

        var error = await Assert.ThrowsAsync<CorruptCheckpointException>(() => Storage.ReadMetadataAsync(_jobId, 1));
        Assert.Contains("checksum", error.Message);
    }

    [Fact]
    public async Task A_state_file_that_does_not_match_its_handle_is_refused()
    {
        var handle = await Storage.WriteStateAsync(_jobId, 1, "s.state", new byte[] { 1, 2, 3, 4 });

        var wrongChecksum = handle with { Checksum = handle.Checksum ^ 1 };
        var error = await Assert.ThrowsAsync<CorruptCheckpointException>(() => Storage.ReadStateAsync(_jobId, wrongChecksum));
        Assert.Contains("s.state", error.Message);
        await Assert.ThrowsAsync<CorruptCheckpointException>(() => Storage.ReadStateAsync(_jobId, handle with { Size = 3 }));
    }

    [Fact]
    public async Task State_streams_in_and_out_and_is_verified_on_the_way_out()
    {
        var content = Enumerable.Range(0, 3_000_000).Select(i => (byte)(i * 31)).ToArray();
        var handle = await Storage.WriteStateAsync(_jobId, 1, "1-0-count-MANIFEST", new MemoryStream(content));

        Assert.Equal(content.Length, handle.Size);
        using var copy = new MemoryStream();
        await Storage.ReadStateAsync(_jobId, handle, copy);
        Assert.Equal(content, copy.ToArray());

        var error = await Assert.ThrowsAsync<CorruptCheckpointException>(() => Storage.ReadStateAsync(_jobId, handle with { Checksum = handle.Checksum ^ 1 }, Stream.Null));
        Assert.Contains("1-0-count-MANIFEST", error.Message);
    }

    [Fact]
    public async Task Shared_files_live_beside_the_checkpoints_until_deleted()
    {
        if (!Storage.SupportsSharedState)
        {
            await Assert.ThrowsAsync<NotSupportedException>(() => Storage.WriteSharedStateAsync(_jobId, "x.sst", new MemoryStream([1])));
            Assert.Empty(await Storage.ListSharedStateAsync(_jobId));
            return;
        }

        var first = await Storage.WriteSharedStateAsync(_jobId, "a-000010.sst", new MemoryStream([1, 2, 3]));
        var second = await Storage.WriteSharedStateAsync(_jobId, "a-000011.sst", new MemoryStream([4, 5]));
        Assert.Equal("shared/a-000010.sst", first.Path);
        Assert.Equal(["shared/a-000010.sst", "shared/a-000011.sst"], (await Storage.ListSharedStateAsync(_jobId)).Order(StringComparer.Ordinal));

        // Deleting checkpoints leaves shared files alone: the coordinator decides when they are unreferenced.
        await Storage.DeleteAllExceptAsync(_jobId, new HashSet<long>());
        Assert.Equal(2, (await Storage.ListSharedStateAsync(_jobId)).Count);

        await Storage.DeleteSharedStateAsync(_jobId, [first.Path, "shared/missing.sst"]);
        Assert.Equal(["shared/a-000011.sst"], await Storage.ListSharedStateAsync(_jobId));
        using var copy = new MemoryStream();
        await Storage.ReadStateAsync(_jobId, second, copy);
        Assert.Equal([4, 5], copy.ToArray());
        await Assert.ThrowsAsync<CorruptCheckpointException>(() => Storage.ReadStateAsync(_jobId, first, Stream.Null));
    }
}

public sealed class FileSystemCheckpointStorageTests : CheckpointStorageConformanceTests
{
    private readonly string _root = TestData.NewDirectory("checkpoints");

    internal override ICheckpointStorage Storage => new FileSystemCheckpointStorage(_root);

    internal override void CorruptMetadata(string jobId, long checkpointId, Func<byte[], byte[]> corrupt)
    {
        var path = Path.Combine(_root, jobId, $"chk-{checkpointId}", "_metadata");
        File.WriteAllBytes(path, corrupt(File.ReadAllBytes(path)));
    }

    [Fact]
    public async Task Files_follow_the_documented_layout_and_leave_no_temporary_files()
    {
        var jobId = "layout-job";
        var handle = await Storage.WriteStateAsync(jobId, 7, "1-0-count.state", new byte[] { 1 });
        await Storage.WriteMetadataAsync(EmptyMetadata(jobId, 7));

        Assert.Equal("chk-7/1-0-count.state", handle.Path);
        Assert.Equal(
            ["1-0-count.state", "_metadata"],
            Directory.EnumerateFiles(Path.Combine(_root, jobId, "chk-7")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_refused_commit_leaves_the_committed_metadata_and_no_temporary_file()
    {
        var jobId = "refused-job";
        CheckpointMetadata Commit(DateTimeOffset at) => new() { JobId = jobId, CheckpointId = 3, TriggeredAt = at, CompletedAt = at, MaxParallelism = 128, Subtasks = [] };
        await Storage.WriteMetadataAsync(Commit(DateTimeOffset.UnixEpoch));
        var path = Path.Combine(_root, jobId, "chk-3", "_metadata");
        var committed = await File.ReadAllBytesAsync(path);

        await Assert.ThrowsAsync<InvalidOperationException>(() => Storage.WriteMetadataAsync(Commit(DateTimeOffset.UnixEpoch.AddDays(1))));

        Assert.Equal(committed, await File.ReadAllBytesAsync(path));
        Assert.Equal(["_metadata"], Directory.EnumerateFiles(Path.Combine(_root, jobId, "chk-3")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_state_handle_cannot_point_outside_the_jobs_directory()
    {
        var handle = new StateHandle { Path = "../../etc/passwd", Size = 1, Checksum = 0 };

        var error = await Assert.ThrowsAsync<CorruptCheckpointException>(() => Storage.ReadStateAsync("job", handle));
        Assert.Contains("leaves the job's checkpoint directory", error.Message);
    }
}

public sealed class InMemoryCheckpointStorageTests : CheckpointStorageConformanceTests
{
    private readonly InMemoryCheckpointStorage _storage = new();

    internal override ICheckpointStorage Storage => _storage;

    internal override void CorruptMetadata(string jobId, long checkpointId, Func<byte[], byte[]> corrupt) =>
        _storage.CorruptMetadata(jobId, checkpointId, corrupt);

    [Fact]
    public async Task State_above_the_size_limit_is_refused_with_advice()
    {
        var storage = new InMemoryCheckpointStorage(maxStateSize: 100);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => storage.WriteStateAsync("job", 1, "big.state", new byte[101]));
        Assert.Contains("101 bytes", error.Message);
        Assert.Contains("file-system checkpoint storage", error.Message);
    }
}

/// <summary>The conformance suite against a real Azurite, each test in its own container, plus what only blob storage has.</summary>
public sealed class AzureBlobCheckpointStorageTests(AzuriteFixture fixture) : CheckpointStorageConformanceTests, IClassFixture<AzuriteFixture>
{
    private const string Prefix = "cluster-a";
    private readonly string _containerName = AzuriteFixture.NewContainerName();
    private AzureBlobContainerProvider? _provider;

    private AzureBlobContainerProvider Provider => _provider ??= new AzureBlobContainerProvider(Options(fixture.Azurite.ConnectionString), NullLogger<AzureBlobContainerProvider>.Instance);

    private BlobContainerClient Container => new(fixture.Azurite.ConnectionString, _containerName);

    internal override ICheckpointStorage Storage => new AzureBlobCheckpointStorage(Provider);

    private AzureBlobStorageOptions Options(string connectionString) => new()
    {
        ConnectionString = connectionString,
        ContainerName = _containerName,
        Prefix = $"/{Prefix}/",
        MaxRetries = 1,
        RetryDelay = TimeSpan.FromMilliseconds(50),
        NetworkTimeout = TimeSpan.FromSeconds(10),
        DeleteConcurrency = 4,
    };

    internal override void CorruptMetadata(string jobId, long checkpointId, Func<byte[], byte[]> corrupt)
    {
        var blob = Container.GetBlobClient($"{Prefix}/{jobId}/chk-{checkpointId}/_metadata");
        blob.Upload(BinaryData.FromBytes(corrupt(blob.DownloadContent().Value.Content.ToArray())), overwrite: true);
    }

    private List<string> BlobNames() => [.. Container.GetBlobs().Select(b => b.Name).Order(StringComparer.Ordinal)];

    [Fact]
    public async Task The_container_is_created_and_blobs_follow_the_documented_layout()
    {
        Assert.False(Container.Exists().Value);
        var jobId = "layout-job";
        var handle = await Storage.WriteStateAsync(jobId, 7, "1-0-count.state", new byte[] { 1 });
        var shared = await Storage.WriteSharedStateAsync(jobId, "a-000001.sst", new MemoryStream([2]));
        await Storage.WriteMetadataAsync(EmptyMetadata(jobId, 7));

        Assert.Equal("chk-7/1-0-count.state", handle.Path);
        Assert.Equal("shared/a-000001.sst", shared.Path);
        Assert.Equal(
            ["cluster-a/layout-job/chk-7/1-0-count.state", "cluster-a/layout-job/chk-7/_metadata", "cluster-a/layout-job/shared/a-000001.sst"],
            BlobNames());
        Assert.Contains(_containerName, Storage.Description);
    }

    [Fact]
    public async Task Deleting_a_checkpoint_deletes_every_blob_in_groups_and_leaves_its_neighbours()
    {
        var jobId = "many-files";
        var handles = new List<StateHandle>();
        for (var i = 0; i < 40; i++)
        {
            handles.Add(await Storage.WriteStateAsync(jobId, 1, $"{i}.state", new byte[] { (byte)i }));
        }

        await Storage.WriteMetadataAsync(EmptyMetadata(jobId, 1));
        // chk-10 shares the "chk-1" prefix: deleting chk-1 must not touch it.
        var neighbour = await Storage.WriteStateAsync(jobId, 10, "0.state", new byte[] { 9 });
        await Storage.WriteMetadataAsync(EmptyMetadata(jobId, 10));

        await Storage.DeleteCheckpointAsync(jobId, 1);

        Assert.Equal([10L], await Storage.ListCheckpointsAsync(jobId));
        Assert.Equal(["cluster-a/many-files/chk-10/0.state", "cluster-a/many-files/chk-10/_metadata"], BlobNames());
        Assert.Equal([9], await Storage.ReadStateAsync(jobId, neighbour));
    }

    [Fact]
    public async Task A_state_blob_replaced_with_other_bytes_is_reported_by_name()
    {
        var handle = await Storage.WriteStateAsync("job", 3, "1-0-count.state", new byte[] { 1, 2, 3, 4 });
        await Container.GetBlobClient("cluster-a/job/chk-3/1-0-count.state").UploadAsync(BinaryData.FromBytes([1, 2, 3, 5]), overwrite: true);

        var error = await Assert.ThrowsAsync<CorruptCheckpointException>(() => Storage.ReadStateAsync("job", handle));
        Assert.Equal($"{_containerName}/cluster-a/job/chk-3/1-0-count.state", error.FilePath);
        Assert.Contains("checksum", error.Message);
        await Assert.ThrowsAsync<CorruptCheckpointException>(() => Storage.ReadStateAsync("job", handle, Stream.Null));
    }

    [Fact]
    public async Task A_state_handle_cannot_point_outside_the_jobs_folder()
    {
        var error = await Assert.ThrowsAsync<CorruptCheckpointException>(() => Storage.ReadStateAsync("job", new StateHandle { Path = "../other-job/chk-1/s.state", Size = 1, Checksum = 0 }));
        Assert.Contains("leaves the job's checkpoint folder", error.Message);
    }

    [Fact]
    public async Task A_container_deleted_while_in_use_is_not_created_again_and_every_write_says_the_checkpoints_are_lost()
    {
        var handle = await Storage.WriteStateAsync("job", 1, "s.state", new byte[] { 1 });
        await Storage.WriteMetadataAsync(EmptyMetadata("job", 1));
        await Container.DeleteAsync();

        // A new container would take checkpoints whose shared files went with the old one: none of them could be restored.
        var metadata = EmptyMetadata("job", 2);
        var errors = new[]
        {
            await Assert.ThrowsAsync<InvalidOperationException>(() => Storage.WriteStateAsync("job", 2, "s.state", new byte[] { 2 })),
            await Assert.ThrowsAsync<InvalidOperationException>(() => Storage.WriteStateAsync("job", 2, "big.state", new MemoryStream([3]))),
            await Assert.ThrowsAsync<InvalidOperationException>(() => Storage.WriteSharedStateAsync("job", "a-000002.sst", new MemoryStream([4]))),
            await Assert.ThrowsAsync<InvalidOperationException>(() => Storage.WriteMetadataAsync(metadata)),
        };
        foreach (var error in errors)
        {
            Assert.Contains($"Blob container '{_containerName}'", error.Message);
            Assert.Contains("was deleted while in use", error.Message);
            Assert.Contains("the checkpoints it held", error.Message);
            Assert.Contains("are lost", error.Message);
            Assert.Contains("Recreate the container and restart the job from a savepoint", error.Message);
        }

        Assert.False((await Container.ExistsAsync()).Value);
        Assert.Empty(await Storage.ListCheckpointsAsync("job"));
        await Assert.ThrowsAsync<CorruptCheckpointException>(() => Storage.ReadStateAsync("job", handle));

        // Recreated by the operator, it takes writes again.
        await Container.CreateAsync();
        var written = await Storage.WriteStateAsync("job", 2, "s.state", new byte[] { 5 });
        Assert.Equal([5], await Storage.ReadStateAsync("job", written));
    }

    [Fact]
    public async Task A_first_write_cancelled_while_the_container_is_being_created_fails_alone()
    {
        using var cancel = new CancellationTokenSource();
        // Both wait on the one creation, which is in flight (a round trip to Azurite) when the first caller gives up.
        var cancelled = Storage.WriteStateAsync("job", 1, "a.state", new byte[] { 1 }, cancel.Token);
        var other = Storage.WriteStateAsync("job", 1, "b.state", new byte[] { 2 });
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.Equal([2], await Storage.ReadStateAsync("job", await other));
        Assert.True((await Container.ExistsAsync()).Value);
    }

    [Fact]
    public async Task A_failed_creation_of_the_container_is_tried_again_by_the_next_write()
    {
        await using var azurite = await AzuriteProcess.StartAsync();
        var storage = new AzureBlobCheckpointStorage(new AzureBlobContainerProvider(Options(azurite.ConnectionString), NullLogger<AzureBlobContainerProvider>.Instance));
        azurite.Kill();

        // The service is unreachable: creation fails once the client's retries run out.
        var down = await Assert.ThrowsAsync<AggregateException>(() => storage.WriteStateAsync("job", 1, "s.state", new byte[] { 1 }));
        Assert.Contains("Connection refused", down.Message);

        await azurite.StartAgainAsync();
        var handle = await storage.WriteStateAsync("job", 1, "s.state", new byte[] { 1 });

        Assert.Equal([1], await storage.ReadStateAsync("job", handle));
        Assert.True((await new BlobContainerClient(azurite.ConnectionString, _containerName).ExistsAsync()).Value);
    }

    [Fact]
    public async Task A_wrong_account_key_is_refused_with_what_to_do()
    {
        var wrongKey = fixture.Azurite.ConnectionString.Replace("AccountKey=Eby8", "AccountKey=Xby8", StringComparison.Ordinal);
        var storage = new AzureBlobCheckpointStorage(new AzureBlobContainerProvider(Options(wrongKey), NullLogger<AzureBlobContainerProvider>.Instance));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => storage.WriteStateAsync("job", 1, "s.state", new byte[] { 1 }));
        Assert.Contains("refused", error.Message);
        Assert.Contains("Storage Blob Data Contributor", error.Message);
        Assert.Contains("Platform:AzureBlob:ConnectionString", error.Message);
    }
}
