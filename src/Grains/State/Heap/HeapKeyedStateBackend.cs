using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Orleans.Serialization;
using Orleans.Serialization.Session;
using Platform.Functions;

namespace Platform.State.Heap;

/// <summary>
/// Keyed state on the heap (Flink's HashMapStateBackend): every state is a table of one dictionary per key group,
/// so that snapshots, restores and rescaling work key group by key group.
/// </summary>
/// <remarks>
/// Snapshots are copy-on-write at key-group granularity. <see cref="Snapshot"/> only bumps a version and keeps
/// references to the current dictionaries; the first write to a key group after that clones its dictionary (deep
/// copying mutable values), so the frozen version never changes while it is serialized on another thread. A snapshot
/// serializes keys and values straight into the state file's buffer.
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

    /// <summary>The version writes stamp on the dictionaries they own; a snapshot increments it.</summary>
    internal long Version { get; private set; }

    /// <summary>Snapshots still being written; while any is, writes to older dictionaries copy them first.</summary>
    internal int RunningSnapshots { get; private set; }

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

    public IKeyedStateSnapshot Snapshot()
    {
        // O(states × key groups): references only, no entry is copied here.
        var tables = _tables.Values.Select(t => t.Capture()).ToList();
        var restored = _restored.Select(r => (r.Key, r.Value.Kind, r.Value.Groups)).ToList();
        Version++;
        RunningSnapshots++;
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

    private void SnapshotWritten() => RunningSnapshots--;

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

        // The backend's counters belong to the task's thread: dispose the snapshot there.
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                backend.SnapshotWritten();
            }
        }
    }
}

internal interface IStateTable
{
    StateKind Kind { get; }

    Type ValueType { get; }

    long CountKeys();

    ICapturedTable Capture();
}

/// <summary>A state table's dictionaries as they were when a snapshot was taken.</summary>
internal interface ICapturedTable
{
    string Name { get; }

    StateKind Kind { get; }

    /// <summary>Writes the entries of one key group (<see cref="KeyedStateWriter.BeginEntries"/> included).</summary>
    void Write(int keyGroupIndex, KeyedStateWriter writer);
}

/// <summary>One state's values: a dictionary per key group, created when the group gets its first key.</summary>
internal sealed class StateTable<TKey, TValue>(HeapKeyedStateBackend<TKey> backend, string name, StateKind kind, int keyGroupCount, Serializer serializer) : IStateTable
    where TKey : notnull
{
    // A value without references (or a string) is its own deep copy: a frozen dictionary can then be copied whole,
    // and read in place (a caller cannot mutate what it reads).
    private static readonly bool ShallowCopyable = !RuntimeHelpers.IsReferenceOrContainsReferences<TValue>() || typeof(TValue) == typeof(string);

    private readonly VersionedMap?[] _maps = new VersionedMap?[keyGroupCount];

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

        // Copy on read while a snapshot holds this group: the caller may mutate the object it gets (a list, a
        // user class) without calling Update, and that must not reach the frozen version.
        var entries = !ShallowCopyable && map.Version != backend.Version && backend.RunningSnapshots > 0 ? Writable(keyGroupIndex) : map.Entries;
        return entries.TryGetValue(key, out value!);
    }

    public void Set(int keyGroupIndex, TKey key, TValue value) => Writable(keyGroupIndex)[key] = value;

    /// <summary>A reference to the key's slot, added with a default value when missing.</summary>
    public ref TValue? GetOrAddRef(int keyGroupIndex, TKey key, out bool exists) =>
        ref CollectionsMarshal.GetValueRefOrAddDefault(Writable(keyGroupIndex), key, out exists);

    public bool Remove(int keyGroupIndex, TKey key) => _maps[keyGroupIndex] is not null && Writable(keyGroupIndex).Remove(key);

    public long CountKeys() => _maps.Sum(m => (long)(m?.Entries.Count ?? 0));

    public ICapturedTable Capture() => new Captured(Name, Kind, [.. _maps], serializer);

    /// <summary>Deserializes restored entries (raw bytes per key group index).</summary>
    public void Load(Dictionary<int, List<(byte[] Key, byte[] Value)>> groups)
    {
        var keys = serializer.GetSerializer<TKey>();
        var values = serializer.GetSerializer<TValue>();
        foreach (var (index, entries) in groups)
        {
            var map = Writable(index);
            foreach (var (key, value) in entries)
            {
                map[keys.Deserialize(key)!] = values.Deserialize(value)!;
            }
        }
    }

    // The dictionary of a key group that this version owns: a snapshot may still be reading an older one.
    private Dictionary<TKey, TValue> Writable(int keyGroupIndex)
    {
        var map = _maps[keyGroupIndex];
        if (map is null)
        {
            map = new VersionedMap(new Dictionary<TKey, TValue>(), backend.Version);
            _maps[keyGroupIndex] = map;
        }
        else if (map.Version != backend.Version)
        {
            if (backend.RunningSnapshots > 0)
            {
                map = new VersionedMap(Copy(map.Entries), backend.Version);
                _maps[keyGroupIndex] = map;
            }
            else
            {
                map.Version = backend.Version;
            }
        }

        return map.Entries;
    }

    private Dictionary<TKey, TValue> Copy(Dictionary<TKey, TValue> frozen)
    {
        if (ShallowCopyable)
        {
            // Copies the entries array without hashing a key again (same comparer).
            return new Dictionary<TKey, TValue>(frozen);
        }

        var copy = new Dictionary<TKey, TValue>(frozen.Count);
        foreach (var (key, value) in frozen)
        {
            copy.Add(key, backend.Copier.Copy(value)!);
        }

        return copy;
    }

    private sealed class VersionedMap(Dictionary<TKey, TValue> entries, long version)
    {
        public Dictionary<TKey, TValue> Entries { get; } = entries;

        public long Version { get; set; } = version;
    }

    private sealed class Captured(string name, StateKind kind, VersionedMap?[] maps, Serializer serializer) : ICapturedTable
    {
        public string Name { get; } = name;

        public StateKind Kind { get; } = kind;

        private readonly Serializer<TKey> _keys = serializer.GetSerializer<TKey>();
        private readonly Serializer<TValue> _values = serializer.GetSerializer<TValue>();

        public void Write(int keyGroupIndex, KeyedStateWriter writer)
        {
            var entries = maps[keyGroupIndex]?.Entries;
            writer.BeginEntries(entries?.Count ?? 0);
            if (entries is null)
            {
                return;
            }

            foreach (var (key, value) in entries)
            {
                writer.WriteEntry(key, value, _keys, _values);
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
