using Orleans.Serialization;
using Orleans.Serialization.Session;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions;
using Platform.State;
using Platform.State.Heap;

namespace Platform.Tests.State;

/// <summary>
/// The keyed-state contract every backend must honour. Each backend gets a subclass that creates it; the RocksDB
/// backend will join the heap backend here.
/// </summary>
public abstract partial class KeyedStateConformanceTests
{
    protected const int MaxParallelism = 128;

    protected static readonly IServiceProvider Services = new ServiceCollection().AddSerializer().BuildServiceProvider();

    protected static readonly Serializer Serializer = Services.GetRequiredService<Serializer>();

    /// <summary>Creates a backend owning every key group.</summary>
    internal abstract IKeyedStateBackend<TKey> CreateBackend<TKey>(KeyGroupRange range)
        where TKey : notnull;

    private IKeyedStateBackend<string> Backend() => CreateBackend<string>(new KeyGroupRange(0, MaxParallelism - 1));

    [Fact]
    public void Value_state_is_scoped_to_the_current_key_and_defaults_when_missing()
    {
        using var backend = Backend();
        var state = backend.GetValueState(new ValueStateDescriptor<long>("count", defaultValue: -1));

        backend.SetCurrentKey("a");
        Assert.Equal(-1, state.Value);
        state.Update(5);
        backend.SetCurrentKey("b");
        Assert.Equal(-1, state.Value);
        state.Update(7);
        backend.SetCurrentKey("a");
        Assert.Equal(5, state.Value);
        state.Clear();
        Assert.Equal(-1, state.Value);
        backend.SetCurrentKey("b");
        Assert.Equal(7, state.Value);
        Assert.Equal(1, backend.CountKeys("count"));
    }

    [Fact]
    public void Value_state_holds_null_and_large_values()
    {
        using var backend = Backend();
        var state = backend.GetValueState(new ValueStateDescriptor<string?>("text"));
        var large = new string('x', 5_000_000);

        backend.SetCurrentKey("k");
        Assert.Null(state.Value);
        state.Update(large);
        Assert.Equal(large, state.Value);
        state.Update(null);
        Assert.Null(state.Value);
    }

    [Fact]
    public void List_state_adds_updates_and_clears()
    {
        using var backend = Backend();
        var state = backend.GetListState(new ListStateDescriptor<int>("list"));

        backend.SetCurrentKey("a");
        Assert.Empty(state.Get());
        state.Add(1);
        state.AddAll([2, 3]);
        Assert.Equal([1, 2, 3], state.Get());
        backend.SetCurrentKey("b");
        Assert.Empty(state.Get());
        state.Update([9]);
        backend.SetCurrentKey("a");
        state.Update([4, 5]);
        Assert.Equal([4, 5], state.Get());
        state.Update([]);
        Assert.Empty(state.Get());
        Assert.Equal(1, backend.CountKeys("list"));
        backend.SetCurrentKey("b");
        Assert.Equal([9], state.Get());
        state.Clear();
        Assert.Empty(state.Get());
        Assert.Equal(0, backend.CountKeys("list"));
    }

    [Fact]
    public void Map_state_supports_every_operation()
    {
        using var backend = Backend();
        var state = backend.GetMapState(new MapStateDescriptor<string, int>("map"));

        backend.SetCurrentKey("a");
        Assert.True(state.IsEmpty);
        Assert.False(state.Contains("x"));
        Assert.False(state.TryGetValue("x", out _));
        Assert.Equal(0, state.Get("x"));
        state.Put("x", 1);
        state.PutAll([new("y", 2), new("z", 3)]);
        Assert.False(state.IsEmpty);
        Assert.True(state.TryGetValue("y", out var y));
        Assert.Equal(2, y);
        Assert.Equal(["x", "y", "z"], state.Keys().Order());
        Assert.Equal([1, 2, 3], state.Values().Order());
        Assert.Equal(3, state.Entries().Count);

        // Entries are a snapshot: changing the state while enumerating is allowed.
        foreach (var (key, value) in state.Entries())
        {
            state.Put(key, value * 10);
        }

        Assert.Equal([10, 20, 30], state.Values().Order());
        Assert.True(state.Remove("x"));
        Assert.False(state.Remove("x"));
        backend.SetCurrentKey("b");
        Assert.True(state.IsEmpty);
        backend.SetCurrentKey("a");
        state.Remove("y");
        state.Remove("z");
        Assert.True(state.IsEmpty);
        Assert.Equal(0, backend.CountKeys("map"));
    }

    [Fact]
    public void Reducing_state_reduces_every_added_value()
    {
        using var backend = Backend();
        var state = backend.GetReducingState(new ReducingStateDescriptor<long>("max", new Max()));

        backend.SetCurrentKey("a");
        Assert.Equal(0, state.Get());
        state.Add(3);
        state.Add(10);
        state.Add(4);
        Assert.Equal(10, state.Get());
        backend.SetCurrentKey("b");
        state.Add(-5);
        Assert.Equal(-5, state.Get());
        state.Clear();
        Assert.Equal(0, state.Get());
    }

    [Fact]
    public void Aggregating_state_accumulates_and_returns_the_result()
    {
        using var backend = Backend();
        var state = backend.GetAggregatingState(new AggregatingStateDescriptor<int, (long Sum, long Count), double>("average", new Average()));

        backend.SetCurrentKey("a");
        Assert.Equal(0, state.Get());
        state.Add(1);
        state.Add(2);
        state.Add(6);
        Assert.Equal(3.0, state.Get());
        backend.SetCurrentKey("b");
        Assert.Equal(0, state.Get());
        state.Add(10);
        Assert.Equal(10.0, state.Get());
        state.Clear();
        Assert.Equal(0, state.Get());
    }

    [Fact]
    public void A_state_name_cannot_be_reused_with_another_kind_or_type()
    {
        using var backend = Backend();
        backend.GetValueState(new ValueStateDescriptor<long>("shared"));
        Assert.Same(backend.GetValueState(new ValueStateDescriptor<long>("shared")).GetType(), backend.GetValueState(new ValueStateDescriptor<long>("shared")).GetType());

        var kind = Assert.Throws<InvalidOperationException>(() => backend.GetListState(new ListStateDescriptor<long>("shared")));
        Assert.Contains("'shared'", kind.Message);
        Assert.Throws<InvalidOperationException>(() => backend.GetValueState(new ValueStateDescriptor<int>("shared")));
    }

    [Fact]
    public void State_handles_share_values_across_lookups()
    {
        using var backend = Backend();
        var first = backend.GetValueState(new ValueStateDescriptor<int>("v"));
        var second = backend.GetValueState(new ValueStateDescriptor<int>("v"));

        backend.SetCurrentKey("k");
        first.Update(42);
        Assert.Equal(42, second.Value);
    }

    [Fact]
    public void A_key_outside_the_backends_key_groups_is_refused()
    {
        using var backend = CreateBackend<long>(new KeyGroupRange(0, 0));
        var hasher = KeyHashers.Create<long>(Serializer);
        var foreign = Enumerable.Range(0, 1000).Select(i => (long)i).First(k => KeyGroupAssignment.AssignToKeyGroup(hasher.Hash(k), MaxParallelism) != 0);

        var error = Assert.Throws<InvalidOperationException>(() => backend.SetCurrentKey(foreign));
        Assert.Contains("key group", error.Message);
    }

    [Fact]
    public void Using_state_without_a_current_key_is_an_error()
    {
        using var backend = Backend();
        var state = backend.GetValueState(new ValueStateDescriptor<int>("v"));

        Assert.Throws<InvalidOperationException>(() => state.Value);
    }

    [Fact]
    public void Many_keys_spread_over_key_groups_keep_their_values()
    {
        using var backend = CreateBackend<long>(new KeyGroupRange(0, MaxParallelism - 1));
        var state = backend.GetValueState(new ValueStateDescriptor<long>("v"));
        for (long k = 0; k < 50_000; k++)
        {
            backend.SetCurrentKey(k);
            state.Update(k * 3);
        }

        for (long k = 0; k < 50_000; k++)
        {
            backend.SetCurrentKey(k);
            Assert.Equal(k * 3, state.Value);
        }

        Assert.Equal(50_000, backend.CountKeys("v"));
    }

    private static readonly ValueStateDescriptor<long> CountDescriptor = new("count");
    private static readonly ListStateDescriptor<string> ListDescriptor = new("list");
    private static readonly MapStateDescriptor<string, int> MapDescriptor = new("map");
    private static readonly ReducingStateDescriptor<long> MaxDescriptor = new("max", new Max());
    private static readonly AggregatingStateDescriptor<int, (long Sum, long Count), double> AverageDescriptor = new("average", new Average());

    private static void Fill(IKeyedStateBackend<long> backend, int keys, int version)
    {
        var count = backend.GetValueState(CountDescriptor);
        var list = backend.GetListState(ListDescriptor);
        var map = backend.GetMapState(MapDescriptor);
        var max = backend.GetReducingState(MaxDescriptor);
        var average = backend.GetAggregatingState(AverageDescriptor);
        for (long key = 0; key < keys; key++)
        {
            backend.SetCurrentKey(key);
            count.Update(key * 10 + version);
            list.Add($"{key}-{version}");
            map.Put($"v{version}", (int)key);
            max.Add(key + version);
            average.Add(version);
        }
    }

    private static Dictionary<long, string> Describe(IKeyedStateBackend<long> backend, IEnumerable<long> keys)
    {
        var count = backend.GetValueState(CountDescriptor);
        var list = backend.GetListState(ListDescriptor);
        var map = backend.GetMapState(MapDescriptor);
        var max = backend.GetReducingState(MaxDescriptor);
        var average = backend.GetAggregatingState(AverageDescriptor);
        var result = new Dictionary<long, string>();
        foreach (var key in keys)
        {
            backend.SetCurrentKey(key);
            result[key] = $"{count.Value}|{string.Join(",", list.Get())}|{string.Join(",", map.Entries().OrderBy(e => e.Key).Select(e => $"{e.Key}={e.Value}"))}|{max.Get()}|{average.Get()}";
        }

        return result;
    }

    [Fact]
    public void A_snapshot_restores_every_kind_of_state()
    {
        var all = new KeyGroupRange(0, MaxParallelism - 1);
        using var source = CreateBackend<long>(all);
        Fill(source, 1_000, version: 1);
        Fill(source, 500, version: 2);
        byte[] file;
        using (var snapshot = source.Snapshot())
        {
            file = snapshot.Write();
        }

        using var restored = CreateBackend<long>(all);
        restored.Restore([(file, "snapshot")]);

        var keys = Enumerable.Range(0, 1_000).Select(k => (long)k).ToList();
        Assert.Equal(Describe(source, keys), Describe(restored, keys));
    }

    [Fact]
    public void Writes_after_the_synchronous_part_do_not_change_the_snapshot()
    {
        var all = new KeyGroupRange(0, MaxParallelism - 1);
        using var backend = CreateBackend<long>(all);
        Fill(backend, 300, version: 1);
        var keys = Enumerable.Range(0, 300).Select(k => (long)k).ToList();
        var before = Describe(backend, keys);

        var snapshot = backend.Snapshot();
        Fill(backend, 300, version: 2);
        backend.SetCurrentKey(7);
        backend.GetListState(ListDescriptor).Clear();
        backend.GetMapState(MapDescriptor).Remove("v1");
        var after = Describe(backend, keys);
        var file = snapshot.Write();
        snapshot.Dispose();

        using var restored = CreateBackend<long>(all);
        restored.Restore([(file, "snapshot")]);
        Assert.Equal(before, Describe(restored, keys));
        Assert.Equal(after, Describe(backend, keys));
        Assert.NotEqual(before, after);
    }

    [Fact]
    public void Overlapping_snapshots_each_keep_their_freeze_point_while_released_ones_are_reused()
    {
        // Two snapshots run at a time: each version's writes copy what the snapshot before holds, and the older one is
        // written and released only after that. The heap backend reuses a released snapshot's dictionaries for its
        // next copies; the snapshot still running must never see one of them change.
        var all = new KeyGroupRange(0, MaxParallelism - 1);
        var keys = Enumerable.Range(0, 500).Select(k => (long)k).ToList();
        using var backend = CreateBackend<long>(all);
        var expected = new List<Dictionary<long, string>>();
        var snapshots = new List<IKeyedStateSnapshot>();
        for (var version = 1; version <= 6; version++)
        {
            Fill(backend, keys.Count, version);
            expected.Add(Describe(backend, keys));
            snapshots.Add(backend.Snapshot());
            if (snapshots.Count >= 2)
            {
                AssertRestoresTo(snapshots[^2], expected[^2]);
            }
        }

        Fill(backend, keys.Count, version: 7);
        AssertRestoresTo(snapshots[^1], expected[^1]);
        Assert.Equal(6, expected.Select(e => string.Join(";", e.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value}"))).Distinct().Count());

        void AssertRestoresTo(IKeyedStateSnapshot snapshot, Dictionary<long, string> state)
        {
            var file = snapshot.Write();
            snapshot.Dispose();
            using var restored = CreateBackend<long>(all);
            restored.Restore([(file, "snapshot")]);
            Assert.Equal(state, Describe(restored, keys));
        }
    }

    [Fact]
    public void Mutating_an_object_read_after_the_synchronous_part_does_not_change_the_snapshot()
    {
        var all = new KeyGroupRange(0, MaxParallelism - 1);
        using var backend = CreateBackend<long>(all);
        var state = backend.GetValueState(new ValueStateDescriptor<List<int>?>("mutable"));
        backend.SetCurrentKey(1);
        state.Update([1]);

        var snapshot = backend.Snapshot();
        var list = state.Value!;
        list.Add(2); // mutated in place, as user code may do before Update
        state.Update(list);
        var file = snapshot.Write();
        snapshot.Dispose();

        using var restored = CreateBackend<long>(all);
        restored.Restore([(file, "snapshot")]);
        restored.SetCurrentKey(1);
        Assert.Equal([1], restored.GetValueState(new ValueStateDescriptor<List<int>?>("mutable")).Value);
        Assert.Equal([1, 2], state.Value);
    }

    [Fact]
    public async Task A_snapshot_serialized_on_another_thread_while_the_owner_keeps_writing_holds_the_state_of_its_freeze_point()
    {
        const int keyCount = 4_000;
        var all = new KeyGroupRange(0, MaxParallelism - 1);
        var keys = Enumerable.Range(0, keyCount).Select(k => (long)k).ToList();
        using var backend = CreateBackend<long>(all);
        Fill(backend, keyCount, version: 1);
        int size;
        using (var sizing = backend.Snapshot())
        {
            size = sizing.Write().Length;
        }

        var frozen = Describe(backend, keys);
        var snapshot = backend.Snapshot();

        // The serializer runs on its own thread, as a checkpoint's asynchronous part does, and stops half-way through
        // the file: part of the frozen key groups are written, the rest not yet read.
        using var destination = new PausingStream(pauseAtLength: size / 2);
        var serializer = Task.Factory.StartNew(() => snapshot.WriteTo(destination), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.True(destination.Paused.Wait(TimeSpan.FromMinutes(1)), $"the snapshot never wrote {size / 2} of its {size} bytes, or not as it went");

        // Meanwhile the owner changes every key of every kind of state, in place too, then goes on writing while the
        // serializer finishes.
        var version = 2;
        Fill(backend, keyCount, version++);
        backend.SetCurrentKey(7);
        backend.GetListState(ListDescriptor).Clear();
        backend.GetMapState(MapDescriptor).Remove("v1");
        destination.Resume();
        while (!serializer.IsCompleted)
        {
            Fill(backend, keyCount, version++);
        }

        await serializer;
        snapshot.Dispose();

        using var restored = CreateBackend<long>(all);
        restored.Restore([(destination.ToArray(), "snapshot")]);
        Assert.Equal(frozen, Describe(restored, keys));

        // The owner lost none of its own writes either.
        using var expected = CreateBackend<long>(all);
        Fill(expected, keyCount, version: 1);
        Fill(expected, keyCount, version: 2);
        expected.SetCurrentKey(7);
        expected.GetListState(ListDescriptor).Clear();
        expected.GetMapState(MapDescriptor).Remove("v1");
        for (var v = 3; v < version; v++)
        {
            Fill(expected, keyCount, v);
        }

        Assert.Equal(Describe(expected, keys), Describe(backend, keys));
        Assert.NotEqual(frozen, Describe(backend, keys));
    }

    /// <summary>A memory stream whose writer blocks once, when it reaches a length, until <see cref="Resume"/>.</summary>
    private sealed class PausingStream(int pauseAtLength) : MemoryStream
    {
        private readonly ManualResetEventSlim _resume = new(false);

        /// <summary>Set once the writer is blocked.</summary>
        public ManualResetEventSlim Paused { get; } = new(false);

        public void Resume() => _resume.Set();

        public override void Write(byte[] buffer, int offset, int count)
        {
            PauseIfDue();
            base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            PauseIfDue();
            base.Write(buffer);
        }

        public override void WriteByte(byte value)
        {
            PauseIfDue();
            base.WriteByte(value);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _resume.Dispose();
                Paused.Dispose();
            }

            base.Dispose(disposing);
        }

        private void PauseIfDue()
        {
            if (Length >= pauseAtLength && !Paused.IsSet)
            {
                Paused.Set();
                if (!_resume.Wait(TimeSpan.FromMinutes(1)))
                {
                    throw new TimeoutException("The test never resumed the paused snapshot writer.");
                }
            }
        }
    }

    [Fact]
    public void Restoring_at_another_parallelism_keeps_only_the_owned_key_groups()
    {
        var all = new KeyGroupRange(0, MaxParallelism - 1);
        var keys = Enumerable.Range(0, 2_000).Select(k => (long)k).ToList();
        var files = new List<(byte[], string)>();
        var expected = new Dictionary<long, string>();
        // Two subtasks before rescaling...
        foreach (var range in new[] { new KeyGroupRange(0, 63), new KeyGroupRange(64, 127) })
        {
            using var backend = CreateBackend<long>(range);
            var hasher = KeyHashers.Create<long>(Serializer);
            var owned = keys.Where(k => range.Contains(KeyGroupAssignment.AssignToKeyGroup(hasher.Hash(k), MaxParallelism))).ToList();
            foreach (var key in owned)
            {
                backend.SetCurrentKey(key);
                backend.GetValueState(CountDescriptor).Update(key * 3);
            }

            using var snapshot = backend.Snapshot();
            files.Add((snapshot.Write(), $"subtask-{range.Start}"));
            foreach (var key in owned)
            {
                expected[key] = (key * 3).ToString();
            }
        }

        // ...three after.
        var actual = new Dictionary<long, string>();
        long total = 0;
        for (var subtask = 0; subtask < 3; subtask++)
        {
            var range = KeyGroupAssignment.RangeForOperator(MaxParallelism, 3, subtask);
            using var backend = CreateBackend<long>(range);
            backend.Restore(files);
            var state = backend.GetValueState(CountDescriptor);
            total += backend.CountKeys("count");
            var hasher = KeyHashers.Create<long>(Serializer);
            foreach (var key in keys.Where(k => range.Contains(KeyGroupAssignment.AssignToKeyGroup(hasher.Hash(k), MaxParallelism))))
            {
                backend.SetCurrentKey(key);
                actual[key] = state.Value.ToString();
            }
        }

        Assert.Equal(keys.Count, total);
        Assert.Equal(expected.OrderBy(e => e.Key), actual.OrderBy(e => e.Key));
    }

    [Fact]
    public void Restored_state_that_is_not_used_yet_survives_the_next_snapshot()
    {
        var all = new KeyGroupRange(0, MaxParallelism - 1);
        using var first = CreateBackend<long>(all);
        Fill(first, 100, version: 1);
        using var firstSnapshot = first.Snapshot();

        using var second = CreateBackend<long>(all);
        second.Restore([(firstSnapshot.Write(), "first")]);
        using var secondSnapshot = second.Snapshot();

        using var third = CreateBackend<long>(all);
        third.Restore([(secondSnapshot.Write(), "second")]);
        var keys = Enumerable.Range(0, 100).Select(k => (long)k).ToList();
        Assert.Equal(Describe(first, keys), Describe(third, keys));
    }

    [Fact]
    public void A_damaged_snapshot_file_is_refused_and_restores_nothing()
    {
        var all = new KeyGroupRange(0, MaxParallelism - 1);
        using var source = CreateBackend<long>(all);
        Fill(source, 100, version: 1);
        using var snapshot = source.Snapshot();
        var file = snapshot.Write();

        using var target = CreateBackend<long>(all);
        var error = Assert.Throws<Platform.Checkpointing.CorruptCheckpointException>(
            () => target.Restore([(file, "good"), (file[..(file.Length / 2)], "chk-3/truncated.state")]));
        Assert.Contains("chk-3/truncated.state", error.Message);
        Assert.Equal(0, target.CountKeys("count"));
        target.SetCurrentKey(1);
        Assert.Equal(0, target.GetValueState(CountDescriptor).Value);
    }

    [Fact]
    public void A_snapshot_file_verifies_itself_and_refuses_an_unknown_version_naming_the_file()
    {
        var all = new KeyGroupRange(0, MaxParallelism - 1);
        using var source = CreateBackend<long>(all);
        Fill(source, 50, version: 1);
        using var snapshot = source.Snapshot();
        var file = snapshot.Write();

        var altered = file.ToArray();
        altered[altered.Length / 2] ^= 0x40;
        using var target = CreateBackend<long>(all);
        var error = Assert.Throws<Platform.Checkpointing.CorruptCheckpointException>(() => target.Restore([(altered, "savepoints/sp-1/altered.state")]));
        Assert.Contains("savepoints/sp-1/altered.state", error.Message);
        Assert.Contains("checksum", error.Message);

        var future = file.ToArray();
        future[4] = 9; // the format version follows the four magic bytes
        error = Assert.Throws<Platform.Checkpointing.CorruptCheckpointException>(() => target.Restore([(future, "savepoints/sp-1/future.state")]));
        Assert.Contains("savepoints/sp-1/future.state", error.Message);
        Assert.Contains("version 9", error.Message);
        Assert.Equal(0, target.CountKeys("count"));
    }

    [Fact]
    public void Values_whose_fields_hold_subclasses_read_back_for_every_key()
    {
        // A field whose runtime type differs from its declared one makes Orleans name the type in the bytes; every
        // value must name it for itself, or values after the first could not be read back.
        using var backend = CreateBackend<long>(new KeyGroupRange(0, MaxParallelism - 1));
        var state = backend.GetValueState(new ValueStateDescriptor<ShapeHolder?>("shapes"));
        for (long key = 0; key < 50; key++)
        {
            backend.SetCurrentKey(key);
            state.Update(new ShapeHolder { Shape = key % 2 == 0 ? new Circle { Radius = key } : new Square { Side = key } });
        }

        using var snapshot = backend.Snapshot();
        var file = snapshot.Write();
        using var restored = CreateBackend<long>(new KeyGroupRange(0, MaxParallelism - 1));
        restored.Restore([(file, "shapes")]);
        foreach (var target in new[] { backend, restored })
        {
            var shapes = target.GetValueState(new ValueStateDescriptor<ShapeHolder?>("shapes"));
            for (long key = 49; key >= 0; key--) // not in the order they were written
            {
                target.SetCurrentKey(key);
                var shape = shapes.Value!.Shape;
                Assert.Equal(key, key % 2 == 0 ? ((Circle)shape!).Radius : ((Square)shape!).Side);
            }
        }
    }

    protected sealed class Max : IReduceFunction<long>
    {
        public long Reduce(long accumulated, long value) => Math.Max(accumulated, value);
    }

    protected sealed class Average : IAggregateFunction<int, (long Sum, long Count), double>
    {
        public (long Sum, long Count) CreateAccumulator() => (0, 0);

        public (long Sum, long Count) Add(int value, (long Sum, long Count) accumulator) => (accumulator.Sum + value, accumulator.Count + 1);

        public double GetResult((long Sum, long Count) accumulator) => (double)accumulator.Sum / accumulator.Count;

        public (long Sum, long Count) Merge((long Sum, long Count) a, (long Sum, long Count) b) => (a.Sum + b.Sum, a.Count + b.Count);
    }
}

public sealed class HeapKeyedStateTests : KeyedStateConformanceTests
{
    internal override IKeyedStateBackend<TKey> CreateBackend<TKey>(KeyGroupRange range) =>
        new HeapKeyedStateBackend<TKey>(range, MaxParallelism, KeyHashers.Create<TKey>(Serializer), Serializer, Services.GetRequiredService<SerializerSessionPool>(), Services.GetRequiredService<DeepCopier>(), "test-operator");
}

[GenerateSerializer]
public abstract class Shape;

[GenerateSerializer]
public sealed class Circle : Shape
{
    [Id(0)] public long Radius { get; set; }
}

[GenerateSerializer]
public sealed class Square : Shape
{
    [Id(0)] public long Side { get; set; }
}

[GenerateSerializer]
public sealed class ShapeHolder
{
    [Id(0)] public Shape? Shape { get; set; }
}
