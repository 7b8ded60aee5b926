using System.Runtime.InteropServices;
using Platform.Functions;

namespace Platform.State.Heap;

/// <summary>
/// Keyed state on the heap (Flink's HashMapStateBackend): every state is a table of one dictionary per key group,
/// so that snapshots, restores and rescaling can work key group by key group.
/// </summary>
internal sealed class HeapKeyedStateBackend<TKey> : IKeyedStateBackend<TKey>
    where TKey : notnull
{
    private readonly Dictionary<string, IStateTable> _tables = new(StringComparer.Ordinal);
    private readonly IKeyHasher<TKey> _hasher;
    private readonly int _maxParallelism;
    private readonly string _operatorName;
    private TKey _currentKey = default!;
    private int _currentKeyGroupIndex = -1;

    public HeapKeyedStateBackend(KeyGroupRange keyGroupRange, int maxParallelism, IKeyHasher<TKey> hasher, string operatorName)
    {
        KeyGroupRange = keyGroupRange;
        _maxParallelism = maxParallelism;
        _hasher = hasher;
        _operatorName = operatorName;
    }

    public KeyGroupRange KeyGroupRange { get; }

    public TKey CurrentKey => _currentKeyGroupIndex >= 0
        ? _currentKey
        : throw new InvalidOperationException("No current key: keyed state can only be used while a keyed record is processed.");

    /// <summary>The index of the current key's group within <see cref="KeyGroupRange"/>.</summary>
    internal int CurrentKeyGroupIndex => _currentKeyGroupIndex >= 0
        ? _currentKeyGroupIndex
        : throw new InvalidOperationException("No current key: keyed state can only be used while a keyed record is processed.");

    public void SetCurrentKey(TKey key)
    {
        var keyGroup = KeyGroupAssignment.AssignToKeyGroup(_hasher.Hash(key), _maxParallelism);
        if (!KeyGroupRange.Contains(keyGroup))
        {
            throw new InvalidOperationException(
                $"Key '{key}' belongs to key group {keyGroup}, which operator '{_operatorName}' does not own {KeyGroupRange}. " +
                "The key selector must return equal keys for a record every time it is called (it is called both to route the record and to scope its state).");
        }

        _currentKey = key;
        _currentKeyGroupIndex = keyGroup - KeyGroupRange.Start;
    }

    public IValueState<T> GetValueState<T>(ValueStateDescriptor<T> descriptor) =>
        new HeapValueState<TKey, T>(this, Table<T>(descriptor, StateKind.Value), descriptor.DefaultValue);

    public IListState<T> GetListState<T>(ListStateDescriptor<T> descriptor) =>
        new HeapListState<TKey, T>(this, Table<List<T>>(descriptor, StateKind.List));

    public IMapState<TUserKey, TValue> GetMapState<TUserKey, TValue>(MapStateDescriptor<TUserKey, TValue> descriptor)
        where TUserKey : notnull =>
        new HeapMapState<TKey, TUserKey, TValue>(this, Table<Dictionary<TUserKey, TValue>>(descriptor, StateKind.Map));

    public IReducingState<T> GetReducingState<T>(ReducingStateDescriptor<T> descriptor) =>
        new HeapReducingState<TKey, T>(this, Table<T>(descriptor, StateKind.Reducing), descriptor.ReduceFunction);

    public IAggregatingState<TIn, TOut> GetAggregatingState<TIn, TAcc, TOut>(AggregatingStateDescriptor<TIn, TAcc, TOut> descriptor) =>
        new HeapAggregatingState<TKey, TIn, TAcc, TOut>(this, Table<TAcc>(descriptor, StateKind.Aggregating), descriptor.AggregateFunction);

    public long CountKeys(string stateName) => _tables.TryGetValue(stateName, out var table) ? table.CountKeys() : 0;

    public void Dispose() => _tables.Clear();

    private StateTable<TKey, TValue> Table<TValue>(StateDescriptor descriptor, StateKind kind)
    {
        if (_tables.TryGetValue(descriptor.Name, out var existing))
        {
            if (existing is StateTable<TKey, TValue> table && existing.Kind == kind)
            {
                return table;
            }

            throw new InvalidOperationException(
                $"State '{descriptor.Name}' of operator '{_operatorName}' was already registered as {existing.Kind} state of {existing.ValueType.Name}; " +
                $"it cannot also be {kind} state of {typeof(TValue).Name}. Give each state its own name.");
        }

        var created = new StateTable<TKey, TValue>(descriptor.Name, kind, KeyGroupRange.Count);
        _tables.Add(descriptor.Name, created);
        return created;
    }
}

internal interface IStateTable
{
    StateKind Kind { get; }

    Type ValueType { get; }

    long CountKeys();
}

/// <summary>One state's values: a dictionary per key group, created when the group gets its first key.</summary>
internal sealed class StateTable<TKey, TValue>(string name, StateKind kind, int keyGroupCount) : IStateTable
    where TKey : notnull
{
    private readonly Dictionary<TKey, TValue>?[] _maps = new Dictionary<TKey, TValue>?[keyGroupCount];

    public string Name { get; } = name;

    public StateKind Kind { get; } = kind;

    public Type ValueType => typeof(TValue);

    public bool TryGet(int keyGroupIndex, TKey key, out TValue value)
    {
        var map = _maps[keyGroupIndex];
        if (map is null)
        {
            value = default!;
            return false;
        }

        return map.TryGetValue(key, out value!);
    }

    public void Set(int keyGroupIndex, TKey key, TValue value) => Map(keyGroupIndex)[key] = value;

    /// <summary>A reference to the key's slot, added with a default value when missing.</summary>
    public ref TValue? GetOrAddRef(int keyGroupIndex, TKey key, out bool exists) =>
        ref CollectionsMarshal.GetValueRefOrAddDefault(Map(keyGroupIndex), key, out exists);

    public bool Remove(int keyGroupIndex, TKey key) => _maps[keyGroupIndex]?.Remove(key) ?? false;

    public long CountKeys() => _maps.Sum(m => (long)(m?.Count ?? 0));

    private Dictionary<TKey, TValue> Map(int keyGroupIndex) => _maps[keyGroupIndex] ??= [];
}

internal sealed class HeapValueState<TKey, T>(HeapKeyedStateBackend<TKey> backend, StateTable<TKey, T> table, T defaultValue) : IValueState<T>
    where TKey : notnull
{
    public T Value => table.TryGet(backend.CurrentKeyGroupIndex, backend.CurrentKey, out var value) ? value : defaultValue;

    public void Update(T value) => table.Set(backend.CurrentKeyGroupIndex, backend.CurrentKey, value);

    public void Clear() => table.Remove(backend.CurrentKeyGroupIndex, backend.CurrentKey);
}

internal sealed class HeapListState<TKey, T>(HeapKeyedStateBackend<TKey> backend, StateTable<TKey, List<T>> table) : IListState<T>
    where TKey : notnull
{
    public IReadOnlyList<T> Get() =>
        table.TryGet(backend.CurrentKeyGroupIndex, backend.CurrentKey, out var list) ? list.AsReadOnly() : [];

    public void Add(T value) => Slot().Add(value);

    public void AddAll(IEnumerable<T> values) => Slot().AddRange(values);

    public void Update(IEnumerable<T> values)
    {
        var list = new List<T>(values);
        if (list.Count == 0)
        {
            Clear();
        }
        else
        {
            table.Set(backend.CurrentKeyGroupIndex, backend.CurrentKey, list);
        }
    }

    public void Clear() => table.Remove(backend.CurrentKeyGroupIndex, backend.CurrentKey);

    private List<T> Slot()
    {
        ref var slot = ref table.GetOrAddRef(backend.CurrentKeyGroupIndex, backend.CurrentKey, out _);
        return slot ??= [];
    }
}

internal sealed class HeapMapState<TKey, TUserKey, TValue>(HeapKeyedStateBackend<TKey> backend, StateTable<TKey, Dictionary<TUserKey, TValue>> table)
    : IMapState<TUserKey, TValue>
    where TKey : notnull
    where TUserKey : notnull
{
    public bool IsEmpty => Current() is not { Count: > 0 };

    public bool TryGetValue(TUserKey key, out TValue value)
    {
        if (Current() is { } map)
        {
            return map.TryGetValue(key, out value!);
        }

        value = default!;
        return false;
    }

    public TValue? Get(TUserKey key) => TryGetValue(key, out var value) ? value : default;

    public void Put(TUserKey key, TValue value) => Slot()[key] = value;

    public void PutAll(IEnumerable<KeyValuePair<TUserKey, TValue>> entries)
    {
        var map = Slot();
        foreach (var (key, value) in entries)
        {
            map[key] = value;
        }
    }

    public bool Remove(TUserKey key)
    {
        if (Current() is not { } map || !map.Remove(key))
        {
            return false;
        }

        if (map.Count == 0)
        {
            Clear();
        }

        return true;
    }

    public bool Contains(TUserKey key) => Current()?.ContainsKey(key) ?? false;

    public IReadOnlyList<KeyValuePair<TUserKey, TValue>> Entries() => Current() is { } map ? [.. map] : [];

    public IReadOnlyList<TUserKey> Keys() => Current() is { } map ? [.. map.Keys] : [];

    public IReadOnlyList<TValue> Values() => Current() is { } map ? [.. map.Values] : [];

    public void Clear() => table.Remove(backend.CurrentKeyGroupIndex, backend.CurrentKey);

    private Dictionary<TUserKey, TValue>? Current() =>
        table.TryGet(backend.CurrentKeyGroupIndex, backend.CurrentKey, out var map) ? map : null;

    private Dictionary<TUserKey, TValue> Slot()
    {
        ref var slot = ref table.GetOrAddRef(backend.CurrentKeyGroupIndex, backend.CurrentKey, out _);
        return slot ??= [];
    }
}

internal sealed class HeapReducingState<TKey, T>(HeapKeyedStateBackend<TKey> backend, StateTable<TKey, T> table, IReduceFunction<T> reduce)
    : IReducingState<T>
    where TKey : notnull
{
    public T? Get() => table.TryGet(backend.CurrentKeyGroupIndex, backend.CurrentKey, out var value) ? value : default;

    public void Add(T value)
    {
        ref var slot = ref table.GetOrAddRef(backend.CurrentKeyGroupIndex, backend.CurrentKey, out var exists);
        slot = exists ? reduce.Reduce(slot!, value) : value;
    }

    public void Clear() => table.Remove(backend.CurrentKeyGroupIndex, backend.CurrentKey);
}

internal sealed class HeapAggregatingState<TKey, TIn, TAcc, TOut>(
    HeapKeyedStateBackend<TKey> backend,
    StateTable<TKey, TAcc> table,
    IAggregateFunction<TIn, TAcc, TOut> aggregate) : IAggregatingState<TIn, TOut>
    where TKey : notnull
{
    public TOut? Get() =>
        table.TryGet(backend.CurrentKeyGroupIndex, backend.CurrentKey, out var acc) ? aggregate.GetResult(acc) : default;

    public void Add(TIn value)
    {
        ref var slot = ref table.GetOrAddRef(backend.CurrentKeyGroupIndex, backend.CurrentKey, out var exists);
        slot = aggregate.Add(value, exists ? slot! : aggregate.CreateAccumulator());
    }

    public void Clear() => table.Remove(backend.CurrentKeyGroupIndex, backend.CurrentKey);
}
