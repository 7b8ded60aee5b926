using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Platform.Functions;
using Platform.State;
using Platform.State.Heap;
using Platform.State.RocksDb;

namespace Platform.Tests.State;

/// <summary>The keyed-state conformance suite against the RocksDB backend, plus what is particular to it.</summary>
public sealed partial class RocksDbKeyedStateTests : KeyedStateConformanceTests, IDisposable
{
    private readonly List<string> _directories = [];

    internal override IKeyedStateBackend<TKey> CreateBackend<TKey>(KeyGroupRange range) => CreateRocksDb<TKey>(range);

    public void Dispose()
    {
        foreach (var directory in _directories)
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    private RocksDbKeyedStateBackend<TKey> CreateRocksDb<TKey>(KeyGroupRange range, Action<RocksDbStateOptions>? configure = null)
        where TKey : notnull
    {
        var directory = Path.Combine(Path.GetTempPath(), "platform-tests", "rocksdb", Guid.NewGuid().ToString("N"));
        _directories.Add(directory);
        var options = new RocksDbStateOptions { LocalDirectory = directory };
        configure?.Invoke(options);
        return new RocksDbKeyedStateBackend<TKey>(range, MaxParallelism, KeyHashers.Create<TKey>(Serializer), Serializer, Services.GetRequiredService<Orleans.Serialization.Session.SerializerSessionPool>(), options, "test-operator");
    }

    private static HeapKeyedStateBackend<TKey> CreateHeap<TKey>(KeyGroupRange range)
        where TKey : notnull =>
        new(range, MaxParallelism, KeyHashers.Create<TKey>(Serializer), Serializer, Services.GetRequiredService<Orleans.Serialization.Session.SerializerSessionPool>(), Services.GetRequiredService<DeepCopier>(), "test-operator");

    private static readonly KeyGroupRange All = new(0, MaxParallelism - 1);
    private static readonly ValueStateDescriptor<long> Count = new("count");
    private static readonly ListStateDescriptor<string> Names = new("names");
    private static readonly MapStateDescriptor<string, int> Scores = new("scores");
    private static readonly ReducingStateDescriptor<long> Largest = new("largest", new Max());
    private static readonly AggregatingStateDescriptor<int, (long Sum, long Count), double> Mean = new("mean", new Average());

    private static void Fill(IKeyedStateBackend<long> backend, int keys)
    {
        var count = backend.GetValueState(Count);
        var names = backend.GetListState(Names);
        var scores = backend.GetMapState(Scores);
        var largest = backend.GetReducingState(Largest);
        var mean = backend.GetAggregatingState(Mean);
        for (long key = 0; key < keys; key++)
        {
            backend.SetCurrentKey(key);
            count.Update(key * 7);
            names.AddAll([$"n{key}", $"m{key}"]);
            scores.Put("x", (int)key);
            if (key % 3 == 0)
            {
                scores.Put($"y{key}", -1);
            }

            largest.Add(key);
            largest.Add(key / 2);
            mean.Add((int)key);
            mean.Add(1);
        }
    }

    private static Dictionary<long, string> Describe(IKeyedStateBackend<long> backend, int keys)
    {
        var count = backend.GetValueState(Count);
        var names = backend.GetListState(Names);
        var scores = backend.GetMapState(Scores);
        var largest = backend.GetReducingState(Largest);
        var mean = backend.GetAggregatingState(Mean);
        var result = new Dictionary<long, string>();
        for (long key = 0; key < keys; key++)
        {
            backend.SetCurrentKey(key);
            var map = string.Join(",", scores.Entries().OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => $"{e.Key}={e.Value}"));
            result[key] = $"{count.Value}|{string.Join(",", names.Get())}|{map}|{largest.Get()}|{mean.Get()}";
        }

        return result;
    }

    private static byte[] WriteSnapshot(IKeyedStateBackend backend)
    {
        using var snapshot = backend.Snapshot();
        return snapshot.Write();
    }

    [Fact]
    public void A_heap_snapshot_restores_on_RocksDB_with_identical_state()
    {
        using var heap = CreateHeap<long>(All);
        Fill(heap, 500);

        using var rocksDb = CreateRocksDb<long>(All);
        rocksDb.Restore([(WriteSnapshot(heap), "heap")]);

        Assert.Equal(Describe(heap, 500), Describe(rocksDb, 500));
        Assert.Equal(500, rocksDb.CountKeys(Scores.Name));
    }

    [Fact]
    public void A_RocksDB_snapshot_restores_on_the_heap_with_identical_state()
    {
        using var rocksDb = CreateRocksDb<long>(All);
        Fill(rocksDb, 500);

        using var heap = CreateHeap<long>(All);
        heap.Restore([(WriteSnapshot(rocksDb), "rocksdb")]);

        Assert.Equal(Describe(rocksDb, 500), Describe(heap, 500));
        Assert.Equal(500, heap.CountKeys(Count.Name));
    }

    [Fact]
    public void Restored_state_that_is_not_registered_crosses_backends_unchanged()
    {
        using var heap = CreateHeap<long>(All);
        Fill(heap, 200);

        using var rocksDb = CreateRocksDb<long>(All);
        rocksDb.Restore([(WriteSnapshot(heap), "heap")]);
        Assert.Equal(200, rocksDb.CountKeys(Scores.Name));
        Assert.Equal(200, rocksDb.CountKeys(Count.Name));
        var passedThrough = WriteSnapshot(rocksDb);

        using var again = CreateHeap<long>(All);
        again.Restore([(passedThrough, "rocksdb")]);
        Assert.Equal(Describe(heap, 200), Describe(again, 200));
    }

    [Fact]
    public void Both_backends_write_the_same_entries_for_the_same_state()
    {
        using var heap = CreateHeap<long>(All);
        using var rocksDb = CreateRocksDb<long>(All);
        Fill(heap, 300);
        Fill(rocksDb, 300);

        Assert.Equal(Entries(WriteSnapshot(heap)), Entries(WriteSnapshot(rocksDb)));

        // Entries in a stable order; map values are compared as dictionaries (their entry order is not part of the state).
        static List<string> Entries(byte[] file)
        {
            var maps = Serializer.GetSerializer<Dictionary<string, int>>();
            return [.. KeyedStateFile.Read(file, "snapshot", All, MaxParallelism)
                .SelectMany(g => g.State.Entries.Select(e =>
                {
                    var value = g.State.Kind == StateKind.Map
                        ? string.Join(",", maps.Deserialize(e.Value)!.OrderBy(p => p.Key, StringComparer.Ordinal))
                        : Convert.ToHexString(e.Value);
                    return $"{g.KeyGroup}/{g.State.StateName}/{g.State.Kind}/{Convert.ToHexString(e.Key)}={value}";
                }))
                .Order(StringComparer.Ordinal)];
        }
    }

    [Fact]
    public void Map_entries_of_keys_whose_bytes_share_a_prefix_stay_apart()
    {
        using var backend = CreateRocksDb<string>(All);
        var map = backend.GetMapState(new MapStateDescriptor<string, string>("map"));
        foreach (var key in new[] { "a", "ab", "abc", "b" })
        {
            backend.SetCurrentKey(key);
            map.Put("k", key);
            map.Put(key, key);
        }

        foreach (var key in new[] { "a", "ab", "abc", "b" })
        {
            backend.SetCurrentKey(key);
            Assert.Equal(new[] { "k", key }.Order(StringComparer.Ordinal), map.Keys().Order(StringComparer.Ordinal));
            Assert.All(map.Values(), v => Assert.Equal(key, v));
        }

        backend.SetCurrentKey("ab");
        map.Clear();
        Assert.True(map.IsEmpty);
        backend.SetCurrentKey("a");
        Assert.Equal(2, map.Entries().Count);
        backend.SetCurrentKey("abc");
        Assert.Equal(2, map.Entries().Count);
        Assert.Equal(3, backend.CountKeys("map"));
    }

    [Fact]
    public void State_larger_than_the_block_cache_write_buffer_and_state_cache_reads_back()
    {
        const int Keys = 200_000;
        using var backend = CreateRocksDb<long>(All, o =>
        {
            o.BlockCacheSize = 1024 * 1024;
            o.WriteBufferSize = 1024 * 1024;
            o.StateCacheSize = 1024 * 1024;
        });
        var state = backend.GetValueState(new ValueStateDescriptor<byte[]?>("payload"));
        for (long key = 0; key < Keys; key++)
        {
            backend.SetCurrentKey(key);
            state.Update(Payload(key));
        }

        Assert.True(Directory.GetFiles(backend.WorkingDirectory, "*.sst").Length > 0, "the state should have been flushed to SST files");
        for (long key = 0; key < Keys; key++)
        {
            backend.SetCurrentKey(key);
            Assert.Equal(Payload(key), state.Value);
        }

        Assert.Equal(Keys, backend.CountKeys("payload"));

        using var restored = CreateRocksDb<long>(All, o => o.BlockCacheSize = 1024 * 1024);
        restored.Restore([(WriteSnapshot(backend), "large")]);
        var restoredState = restored.GetValueState(new ValueStateDescriptor<byte[]?>("payload"));
        for (long key = 0; key < Keys; key += 997)
        {
            restored.SetCurrentKey(key);
            Assert.Equal(Payload(key), restoredState.Value);
        }

        Assert.Equal(Keys, restored.CountKeys("payload"));

        static byte[] Payload(long key)
        {
            var payload = new byte[200];
            new Random((int)key).NextBytes(payload);
            return payload;
        }
    }

    [Fact]
    public void Disposing_the_backend_deletes_its_working_directory()
    {
        var backend = CreateRocksDb<string>(All);
        backend.SetCurrentKey("k");
        backend.GetValueState(new ValueStateDescriptor<int>("v")).Update(1);
        Assert.True(Directory.Exists(backend.WorkingDirectory));

        backend.Dispose();

        Assert.False(Directory.Exists(backend.WorkingDirectory));
        Assert.Throws<ObjectDisposedException>(() => backend.GetValueState(new ValueStateDescriptor<int>("v")));
    }

    [Fact]
    public async Task A_snapshot_keeps_the_database_open_until_it_is_disposed()
    {
        var backend = CreateRocksDb<long>(All);
        Fill(backend, 100);
        var expected = Describe(backend, 100);
        var snapshot = backend.Snapshot();

        backend.Dispose();
        Assert.True(Directory.Exists(backend.WorkingDirectory));
        var file = await Task.Run(snapshot.Write);
        snapshot.Dispose();
        Assert.False(Directory.Exists(backend.WorkingDirectory));
        Assert.Throws<ObjectDisposedException>(() => snapshot.Write());

        using var restored = CreateRocksDb<long>(All);
        restored.Restore([(file, "snapshot")]);
        Assert.Equal(expected, Describe(restored, 100));
    }

    [Fact]
    public async Task A_snapshot_written_on_another_thread_while_processing_continues_is_consistent()
    {
        using var backend = CreateRocksDb<long>(All);
        Fill(backend, 2_000);
        var expected = Describe(backend, 2_000);

        using var snapshot = backend.Snapshot();
        var writing = Task.Run(snapshot.Write);
        var count = backend.GetValueState(Count);
        var scores = backend.GetMapState(Scores);
        for (var round = 0; round < 3; round++)
        {
            for (long key = 0; key < 2_000; key++)
            {
                backend.SetCurrentKey(key);
                count.Update(-key);
                scores.Clear();
                scores.Put("z", round);
            }
        }

        using var restored = CreateRocksDb<long>(All);
        restored.Restore([(await writing, "snapshot")]);
        Assert.Equal(expected, Describe(restored, 2_000));
    }
}
