using Platform.Checkpointing;
using Platform.State;
using Platform.Storage;
using Platform.Storage.FileSystem;
using Platform.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Platform.Tests.State;

/// <summary>Incremental checkpoints of the RocksDB backend: native files in real file-system checkpoint storage.</summary>
public sealed partial class RocksDbKeyedStateTests
{
    private const string JobId = "incremental-job";
    private static readonly ValueStateDescriptor<byte[]> Payload = new("payload");
    private readonly string _checkpointRoot = TestData.NewDirectory("incremental-checkpoints");
    private readonly ITestOutputHelper _output;

    public RocksDbKeyedStateTests(ITestOutputHelper output)
    {
        _output = output;
        _directories.Add(_checkpointRoot);
    }

    private FileSystemCheckpointStorage CheckpointStorage => new(_checkpointRoot);

    private static async Task<KeyedStateSnapshot> CheckpointAsync(IKeyedStateBackend backend, ICheckpointStorage storage, long id, long? baseId, bool incremental = true)
    {
        using var snapshot = backend.SnapshotForCheckpoint(new CheckpointSnapshotRequest(id, incremental, baseId));
        return await snapshot.WriteToAsync(new SnapshotTarget(storage, JobId, id, $"1-{backend.KeyGroupRange.Start}-count"), CancellationToken.None);
    }

    private static byte[] PayloadOf(long key, int version)
    {
        var bytes = new byte[200];
        new Random((int)key * 31 + version).NextBytes(bytes); // incompressible, like real state
        return bytes;
    }

    [Fact]
    public async Task An_incremental_checkpoint_restores_with_identical_state()
    {
        using var backend = CreateRocksDb<long>(All);
        Fill(backend, 500);

        var snapshot = await CheckpointAsync(backend, CheckpointStorage, 1, null);

        Assert.Null(snapshot.Handle);
        Assert.NotNull(snapshot.Native);
        Assert.Contains(snapshot.Native!.Files, f => f.IsShared && f.LocalName.EndsWith(".sst", StringComparison.Ordinal));
        Assert.Contains(snapshot.Native.Files, f => !f.IsShared && f.LocalName.StartsWith("MANIFEST", StringComparison.Ordinal));
        Assert.Equal(snapshot.Size, snapshot.SizeWrittenBy(1));

        using var restored = CreateRocksDb<long>(All);
        await restored.RestoreAsync([snapshot], 1, CheckpointStorage, JobId, CancellationToken.None);
        Assert.Equal(Describe(backend, 500), Describe(restored, 500));
        Assert.Equal(500, restored.CountKeys(Scores.Name));
    }

    [Fact]
    public async Task After_changing_one_percent_of_the_keys_the_next_checkpoint_uploads_about_one_percent()
    {
        const int keys = 20_000;
        using var backend = CreateRocksDb<long>(All);
        var payload = backend.GetValueState(Payload);
        for (long key = 0; key < keys; key++)
        {
            backend.SetCurrentKey(key);
            payload.Update(PayloadOf(key, 0));
        }

        var first = await CheckpointAsync(backend, CheckpointStorage, 1, null);
        var changed = 0L;
        for (long key = 0; key < keys; key += 100)
        {
            backend.SetCurrentKey(key);
            payload.Update(PayloadOf(key, 1));
            changed += 8 + 200; // key and value bytes
        }

        var second = await CheckpointAsync(backend, CheckpointStorage, 2, baseId: 1);

        var uploaded = second.SizeWrittenBy(2);
        _output.WriteLine($"state {second.Size:N0} bytes; changed {changed:N0} bytes (1% of keys); uploaded {uploaded:N0} bytes = {100.0 * uploaded / second.Size:F2}% of the state, {(double)uploaded / changed:F2}x the change");
        Assert.Equal(first.Size, first.SizeWrittenBy(1));
        Assert.True(first.Size > keys * 200L, $"the first checkpoint holds all the state ({first.Size} bytes)");
        Assert.True(uploaded < second.Size * 3 / 100, $"the second checkpoint uploaded {uploaded} of {second.Size} bytes; only about 1% changed");
        Assert.True(uploaded >= changed, $"the second checkpoint uploaded {uploaded} bytes, less than the {changed} bytes that changed");
        var shared = second.SharedFiles.Where(f => f.WrittenBy == 1).ToList();
        Assert.NotEmpty(shared);
        Assert.All(shared, f => Assert.Contains(first.Native!.Files, g => g.Handle.Path == f.Handle.Path));

        // The second checkpoint alone restores every value, the changed ones at their new version.
        using var restored = CreateRocksDb<long>(All);
        await restored.RestoreAsync([second], 2, CheckpointStorage, JobId, CancellationToken.None);
        var restoredPayload = restored.GetValueState(Payload);
        for (long key = 0; key < keys; key++)
        {
            restored.SetCurrentKey(key);
            Assert.Equal(PayloadOf(key, key % 100 == 0 ? 1 : 0), restoredPayload.Value);
        }
    }

    [Fact]
    public async Task A_checkpoint_after_a_restore_shares_the_files_it_was_restored_from()
    {
        using var backend = CreateRocksDb<long>(All);
        var payload = backend.GetValueState(Payload);
        for (long key = 0; key < 5000; key++)
        {
            backend.SetCurrentKey(key);
            payload.Update(PayloadOf(key, 0));
        }

        var first = await CheckpointAsync(backend, CheckpointStorage, 1, null);

        using var restored = CreateRocksDb<long>(All);
        await restored.RestoreAsync([first], 1, CheckpointStorage, JobId, CancellationToken.None);
        var next = await CheckpointAsync(restored, CheckpointStorage, 2, baseId: 1);

        Assert.NotEmpty(next.SharedFiles);
        Assert.All(next.SharedFiles, f => Assert.Equal(1, f.WrittenBy));
        Assert.True(next.SizeWrittenBy(2) < next.Size / 10, $"nothing changed, yet {next.SizeWrittenBy(2)} of {next.Size} bytes were uploaded again");
    }

    [Fact]
    public async Task Rescaling_takes_the_owned_key_groups_from_every_incremental_snapshot()
    {
        using var original = CreateRocksDb<long>(All);
        Fill(original, 400);
        var whole = await CheckpointAsync(original, CheckpointStorage, 1, null);
        var expected = Describe(original, 400);

        // 1 -> 2 subtasks, then each takes its own incremental checkpoint, then 2 -> 1.
        var halves = new List<KeyedStateSnapshot>();
        foreach (var range in new[] { new KeyGroupRange(0, 63), new KeyGroupRange(64, MaxParallelism - 1) })
        {
            using var half = CreateRocksDb<long>(range);
            await half.RestoreAsync([whole], 1, CheckpointStorage, JobId, CancellationToken.None);
            Assert.True(half.CountKeys(Count.Name) is > 0 and < 400);
            halves.Add(await CheckpointAsync(half, CheckpointStorage, 2, null));
        }

        using var merged = CreateRocksDb<long>(All);
        await merged.RestoreAsync(halves, 2, CheckpointStorage, JobId, CancellationToken.None);
        Assert.Equal(expected, Describe(merged, 400));
        Assert.Equal(400, merged.CountKeys(Count.Name));
        Assert.Equal(400, merged.CountKeys(Scores.Name));

        // A range across both halves takes a part of each.
        using var middle = CreateRocksDb<long>(new KeyGroupRange(32, 95));
        await middle.RestoreAsync(halves, 2, CheckpointStorage, JobId, CancellationToken.None);
        var hasher = KeyHashers.Create<long>(Serializer);
        var owned = Enumerable.Range(0, 400).Select(k => (long)k)
            .Where(k => KeyGroupAssignment.AssignToKeyGroup(hasher.Hash(k), MaxParallelism) is >= 32 and <= 95).ToList();
        Assert.Equal(owned.Count, middle.CountKeys(Count.Name));
        var count = middle.GetValueState(Count);
        foreach (var key in owned)
        {
            middle.SetCurrentKey(key);
            Assert.Equal(key * 7, count.Value);
        }
    }

    [Fact]
    public async Task A_damaged_shared_file_is_reported_by_name_and_nothing_is_restored()
    {
        using var backend = CreateRocksDb<long>(All);
        Fill(backend, 200);
        var snapshot = await CheckpointAsync(backend, CheckpointStorage, 1, null);
        var sst = snapshot.SharedFiles.First();
        var path = Path.Combine(_checkpointRoot, JobId, sst.Handle.Path);
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(path, bytes);

        using var restored = CreateRocksDb<long>(All);
        var error = await Assert.ThrowsAsync<CorruptCheckpointException>(
            () => restored.RestoreAsync([snapshot], 1, CheckpointStorage, JobId, CancellationToken.None));

        Assert.Contains(Path.GetFileName(sst.Handle.Path), error.Message);
        Assert.Contains("checksum", error.Message);
        Assert.Equal(0, restored.CountKeys(Count.Name));
        Assert.Empty(Directory.EnumerateDirectories(Path.GetDirectoryName(restored.WorkingDirectory)!, "*.restore-*"));
    }

    [Fact]
    public async Task The_heap_backend_refuses_an_incremental_snapshot_and_says_what_to_do()
    {
        using var backend = CreateRocksDb<long>(All);
        Fill(backend, 50);
        var snapshot = await CheckpointAsync(backend, CheckpointStorage, 1, null);

        using var heap = CreateHeap<long>(All);
        var error = await Assert.ThrowsAsync<IncompatibleStateException>(
            () => ((IKeyedStateBackend)heap).RestoreAsync([snapshot], 1, CheckpointStorage, JobId, CancellationToken.None));

        Assert.Contains("rocksdb", error.Message);
        Assert.Contains("savepoint", error.Message);
    }

    [Fact]
    public async Task A_full_checkpoint_is_one_file_in_the_portable_format()
    {
        using var backend = CreateRocksDb<long>(All);
        Fill(backend, 100);

        var snapshot = await CheckpointAsync(backend, CheckpointStorage, 1, null, incremental: false);

        Assert.Null(snapshot.Native);
        using var heap = CreateHeap<long>(All);
        await ((IKeyedStateBackend)heap).RestoreAsync([snapshot], 1, CheckpointStorage, JobId, CancellationToken.None);
        Assert.Equal(Describe(backend, 100), Describe(heap, 100));
    }
}
