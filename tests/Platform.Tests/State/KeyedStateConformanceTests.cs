using Orleans.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Platform.Functions;
using Platform.State;
using Platform.State.Heap;

namespace Platform.Tests.State;

/// <summary>
/// The keyed-state contract every backend must honour. Each backend gets a subclass that creates it; the RocksDB
/// backend will join the heap backend here.
/// </summary>
public abstract class KeyedStateConformanceTests
{
    protected const int MaxParallelism = 128;

    protected static readonly Serializer Serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();

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

    private sealed class Max : IReduceFunction<long>
    {
        public long Reduce(long accumulated, long value) => Math.Max(accumulated, value);
    }

    private sealed class Average : IAggregateFunction<int, (long Sum, long Count), double>
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
        new HeapKeyedStateBackend<TKey>(range, MaxParallelism, KeyHashers.Create<TKey>(Serializer), "test-operator");
}
