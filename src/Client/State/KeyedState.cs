using Platform.Functions;

namespace Platform.State;

/// <summary>Where keyed state lives while a job runs (Flink's state backends).</summary>
[GenerateSerializer, Alias("platform.StateBackendKind")]
public enum StateBackendKind
{
    /// <summary>On the heap, in dictionaries per key group (Flink's HashMapStateBackend): fastest, bounded by memory.</summary>
    Heap,

    /// <summary>In an embedded RocksDB per subtask (Flink's EmbeddedRocksDBStateBackend): state larger than memory.</summary>
    RocksDb,
}

/// <summary>State scoped to the key of the record being processed.</summary>
public interface IKeyedState
{
    /// <summary>Removes the value of the current key.</summary>
    void Clear();
}

/// <summary>A single value per key (Flink's <c>ValueState</c>).</summary>
public interface IValueState<T> : IKeyedState
{
    /// <summary>The current key's value, or the descriptor's default when none was set.</summary>
    T Value { get; }

    /// <summary>Sets the current key's value.</summary>
    void Update(T value);
}

/// <summary>A list of values per key (Flink's <c>ListState</c>).</summary>
public interface IListState<T> : IKeyedState
{
    /// <summary>The current key's values; empty when none.</summary>
    IReadOnlyList<T> Get();

    /// <summary>Appends a value.</summary>
    void Add(T value);

    /// <summary>Appends values.</summary>
    void AddAll(IEnumerable<T> values);

    /// <summary>Replaces the current key's values.</summary>
    void Update(IEnumerable<T> values);
}

/// <summary>A map per key (Flink's <c>MapState</c>).</summary>
public interface IMapState<TUserKey, TValue> : IKeyedState
    where TUserKey : notnull
{
    /// <summary>Gets the value of <paramref name="key"/> in the current key's map.</summary>
    bool TryGetValue(TUserKey key, out TValue value);

    /// <summary>Gets the value of <paramref name="key"/>, or <c>default</c>.</summary>
    TValue? Get(TUserKey key);

    /// <summary>Sets the value of <paramref name="key"/>.</summary>
    void Put(TUserKey key, TValue value);

    /// <summary>Sets several entries.</summary>
    void PutAll(IEnumerable<KeyValuePair<TUserKey, TValue>> entries);

    /// <summary>Removes <paramref name="key"/>; returns whether it was present.</summary>
    bool Remove(TUserKey key);

    /// <summary>Whether <paramref name="key"/> is present.</summary>
    bool Contains(TUserKey key);

    /// <summary>The current key's entries (a snapshot; safe to modify the state while enumerating).</summary>
    IReadOnlyList<KeyValuePair<TUserKey, TValue>> Entries();

    /// <summary>The current key's map keys.</summary>
    IReadOnlyList<TUserKey> Keys();

    /// <summary>The current key's map values.</summary>
    IReadOnlyList<TValue> Values();

    /// <summary>Whether the current key's map is empty.</summary>
    bool IsEmpty { get; }
}

/// <summary>A value per key that every added value is reduced into (Flink's <c>ReducingState</c>).</summary>
public interface IReducingState<T> : IKeyedState
{
    /// <summary>The reduced value; <c>default</c> when nothing was added.</summary>
    T? Get();

    /// <summary>Reduces <paramref name="value"/> into the state.</summary>
    void Add(T value);
}

/// <summary>An accumulator per key that every added value is aggregated into (Flink's <c>AggregatingState</c>).</summary>
public interface IAggregatingState<in TIn, out TOut> : IKeyedState
{
    /// <summary>The aggregate's result; <c>default</c> when nothing was added.</summary>
    TOut? Get();

    /// <summary>Adds <paramref name="value"/> to the accumulator.</summary>
    void Add(TIn value);
}

/// <summary>Names a keyed state and its type; the name is the state's identity in snapshots.</summary>
public abstract class StateDescriptor
{
    /// <summary>Creates a descriptor.</summary>
    protected StateDescriptor(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
    }

    /// <summary>The state's name, unique within an operator.</summary>
    public string Name { get; }
}

/// <summary>Describes a <see cref="IValueState{T}"/>.</summary>
public sealed class ValueStateDescriptor<T>(string name, T defaultValue = default!) : StateDescriptor(name)
{
    /// <summary>The value returned for a key that has none.</summary>
    public T DefaultValue { get; } = defaultValue;
}

/// <summary>Describes a <see cref="IListState{T}"/>.</summary>
public sealed class ListStateDescriptor<T>(string name) : StateDescriptor(name);

/// <summary>Describes a <see cref="IMapState{TUserKey, TValue}"/>.</summary>
public sealed class MapStateDescriptor<TUserKey, TValue>(string name) : StateDescriptor(name)
    where TUserKey : notnull;

/// <summary>Describes a <see cref="IReducingState{T}"/>.</summary>
public sealed class ReducingStateDescriptor<T>(string name, IReduceFunction<T> reduceFunction) : StateDescriptor(name)
{
    /// <summary>The function that combines values.</summary>
    public IReduceFunction<T> ReduceFunction { get; } = reduceFunction ?? throw new ArgumentNullException(nameof(reduceFunction));
}

/// <summary>Describes a <see cref="IAggregatingState{TIn, TOut}"/>.</summary>
public sealed class AggregatingStateDescriptor<TIn, TAcc, TOut>(string name, IAggregateFunction<TIn, TAcc, TOut> aggregateFunction)
    : StateDescriptor(name)
{
    /// <summary>The aggregation.</summary>
    public IAggregateFunction<TIn, TAcc, TOut> AggregateFunction { get; } = aggregateFunction ?? throw new ArgumentNullException(nameof(aggregateFunction));
}
