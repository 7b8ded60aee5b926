using Orleans.Serialization;
using Orleans.Serialization.Session;
using Platform.Functions;

namespace Platform.State.Heap;

/// <summary>
/// Keyed state on the heap (Flink's HashMapStateBackend): every state is a table of one dictionary per key group,
/// so that snapshots, restores and rescaling work key group by key group.
/// </summary>
/// <remarks>
/// Snapshots are copy-on-write at key-group granularity. <see cref="Snapshot"/> only keeps references to the current
/// dictionaries (and counts itself as a holder of each); the first write to a key group that a snapshot still holds
/// clones its dictionary (deep copying mutable values), so the frozen version never changes while it is serialized on
/// another thread. A dictionary that no snapshot holds any more is reused by the next clone, so that checkpoints every
/// second do not allocate the whole state again each time (large-object allocations, which cost a full collection
/// about every checkpoint in the checkpointing benchmark). A snapshot serializes keys and values straight into the
/// state file's buffer.
/// </remarks>
internal sealed class HeapKeyedStateBackend<TKey> : IKeyedStateBackend<TKey>
    where TKey : notnull
{
    private readonly Dictionary<string, IStateTable> _tables = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (StateKind Kind, Dictionary<int, List<(byte[] Key, byte[] Value)>> Groups)> _restored = new(StringComparer.Ordinal);
    private readonly IKeyHasher<TKey> _hasher;
    private readonly Serializer _serializer;
    private readonly SerializerSessionPool _sessions;
    private readonly DeepCopier _copier;
    private readonly int _maxParallelism;
    private readonly string _operatorName;
    private TKey _currentKey = default!;
    private int _currentKeyGroupIndex = -1;

    public HeapKeyedStateBackend(
        KeyGroupRange keyGroupRange,
        int maxParallelism,
        IKeyHasher<TKey> hasher,
        Serializer serializer,
        SerializerSessionPool sessions,
        DeepCopier copier,
        string operatorName)
    {
        KeyGroupRange = keyGroupRange;
        _maxParallelism = maxParallelism;
        _hasher = hasher;
        _serializer = serializer;
        _sessions = sessions;
        _copier = copier;
        _operatorName = operatorName;
    }

    public KeyGroupRange KeyGroupRange { get; }

    internal DeepCopier Copier => _copier;

    public TKey CurrentKey => _currentKeyGroupIndex >= 0
        ? _currentKey
        : throw new InvalidOperationException("No current key: keyed state can only be used while a keyed record is processed.");

    /// <summary>The index of the current key's group within <see cref="KeyGroupRange"/>.</summary>
    internal int CurrentKeyGroupIndex => _currentKeyGroupIndex >= 0
        ? _currentKeyGroupIndex
        : throw new InvalidOperationException("No current key: keyed state can only be used while a keyed record is processed.");

    public void SetCurrentKey(TKey key)
    {
        var keyGroup = KeyGroupAssignment.AssignOwned(key, _hasher.Hash(key), _maxParallelism, KeyGroupRange, _operatorName);

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

    public bool HasState(string stateName) => _tables.ContainsKey(stateName) || _restored.ContainsKey(stateName);

    public IReadOnlyList<TKey> GetKeys(string stateName) =>
        _tables.TryGetValue(stateName, out var table) && table is IKeyedStateTable<TKey> keyed ? keyed.Keys() : [];

    public IKeyedStateSnapshot Snapshot()
    {
        // O(states × key groups): references only, no entry is copied here.
        var tables = _tables.Values.Select(t => t.Capture()).ToList();
        var restored = _restored.Select(r => (r.Key, r.Value.Kind, r.Value.Groups)).ToList();
        return new Frozen(this, tables, restored);
    }

    public void Restore(IEnumerable<(byte[] Content, string Path)> files)
    {
        if (_tables.Count > 0)
        {
            throw new InvalidOperationException($"The keyed state of operator '{_operatorName}' must be restored before it is used.");
        }

        // Parse everything before touching the backend, so that a damaged file restores nothing.
        var parsed = files.SelectMany(f => KeyedStateFile.Read(f.Content, f.Path, KeyGroupRange, _maxParallelism)).ToList();
        foreach (var (keyGroup, state) in parsed)
        {
            if (!_restored.TryGetValue(state.StateName, out var entry))
            {
                entry = (state.Kind, []);
                _restored.Add(state.StateName, entry);
            }
            else if (entry.Kind != state.Kind)
            {
                throw new Checkpointing.CorruptCheckpointException(
                    "(keyed state)", $"state '{state.StateName}' is {entry.Kind} in one snapshot file and {state.Kind} in another.");
            }

            var index = keyGroup - KeyGroupRange.Start;
            if (!entry.Groups.TryGetValue(index, out var list))
            {
                entry.Groups[index] = list = [];
            }

            list.AddRange(state.Entries);
        }
    }

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

        var created = new StateTable<TKey, TValue>(this, descriptor.Name, kind, KeyGroupRange.Count, _serializer);
        if (_restored.Remove(descriptor.Name, out var restored))
        {
            if (restored.Kind != kind)
            {
                throw new InvalidOperationException(
                    $"State '{descriptor.Name}' of operator '{_operatorName}' was restored as {restored.Kind} state but is now requested as {kind} state; " +
                    "a state cannot change kind across a restore. Use a new state name.");
            }

            created.Load(restored.Groups);
        }

        _tables.Add(descriptor.Name, created);
        return created;
    }

    private sealed class Frozen(
        HeapKeyedStateBackend<TKey> backend,
        List<ICapturedTable> tables,
        List<(string Name, StateKind Kind, Dictionary<int, List<(byte[] Key, byte[] Value)>> Groups)> restored) : IKeyedStateSnapshot
    {
        private int _disposed;

        public KeyGroupRange KeyGroupRange => backend.KeyGroupRange;

        public void WriteTo(Stream destination)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            var states = tables.Select(t => (t.Name, t.Kind)).Concat(restored.Select(r => (r.Name, r.Kind))).ToList();
            var range = backend.KeyGroupRange;
            using var session = backend._sessions.GetSession();
            KeyedStateFile.Write(destination, backend._maxParallelism, range, states, session, (state, keyGroup, writer) =>
            {
                var index = keyGroup - range.Start;
                if (state < tables.Count)
                {
                    tables[state].Write(index, writer);
                    return;
                }

                var entries = restored[state - tables.Count].Groups.GetValueOrDefault(index) ?? [];
                writer.BeginEntries(entries.Count);
                foreach (var (key, value) in entries)
                {
                    writer.WriteEntry(key, value);
                }
            });
        }

        // Only once nothing writes it any more (the task disposes it after its upload): its dictionaries may then be reused.
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                foreach (var table in tables)
                {
                    table.Release();
                }
            }
        }
    }
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
        if (Current() is null)
        {
            return false;
        }

        // Mutations go through the writable slot so that a snapshot in progress keeps its own copy.
        var map = Slot();
        if (!map.Remove(key))
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
