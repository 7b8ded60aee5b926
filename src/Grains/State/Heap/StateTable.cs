using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Orleans.Serialization;

namespace Platform.State.Heap;

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

    /// <summary>Gives up the snapshot's hold on the dictionaries (once, when nothing reads them any more).</summary>
    void Release();
}

/// <summary>The keys of a state table, whatever its value type.</summary>
internal interface IKeyedStateTable<TKey>
{
    /// <summary>Every key with a value, over all key groups.</summary>
    List<TKey> Keys();
}

/// <summary>One state's values: a dictionary per key group, created when the group gets its first key.</summary>
internal sealed class StateTable<TKey, TValue>(HeapKeyedStateBackend<TKey> backend, string name, StateKind kind, int keyGroupCount, Serializer serializer) : IStateTable, IKeyedStateTable<TKey>
    where TKey : notnull
{
    // A value without references (or a string) is its own deep copy: a frozen dictionary can then be copied whole,
    // and read in place (a caller cannot mutate what it reads).
    private static readonly bool ShallowCopyable = !RuntimeHelpers.IsReferenceOrContainsReferences<TValue>() || typeof(TValue) == typeof(string);

    private readonly HeldMap?[] _maps = new HeldMap?[keyGroupCount];

    // Dictionaries no snapshot holds any more, for the next copies; at most one per key group. Snapshots release them
    // on whichever thread disposes them.
    private readonly Stack<Dictionary<TKey, TValue>> _spares = new();

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
        var entries = !ShallowCopyable && map.IsShared ? Writable(keyGroupIndex) : map.Entries;
        return entries.TryGetValue(key, out value!);
    }

    public void Set(int keyGroupIndex, TKey key, TValue value) => Writable(keyGroupIndex)[key] = value;

    /// <summary>A reference to the key's slot, added with a default value when missing.</summary>
    public ref TValue? GetOrAddRef(int keyGroupIndex, TKey key, out bool exists) =>
        ref CollectionsMarshal.GetValueRefOrAddDefault(Writable(keyGroupIndex), key, out exists);

    public bool Remove(int keyGroupIndex, TKey key) => _maps[keyGroupIndex] is not null && Writable(keyGroupIndex).Remove(key);

    public long CountKeys() => _maps.Sum(m => (long)(m?.Entries.Count ?? 0));

    public List<TKey> Keys() => [.. _maps.Where(m => m is not null).SelectMany(m => m!.Entries.Keys)];

    public ICapturedTable Capture()
    {
        var maps = new HeldMap?[_maps.Length];
        for (var i = 0; i < maps.Length; i++)
        {
            if (_maps[i] is { } map)
            {
                map.Hold();
                maps[i] = map;
            }
        }

        return new Captured(this, maps, serializer);
    }

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

    // The dictionary of a key group that no snapshot holds: a snapshot may still be reading the current one.
    private Dictionary<TKey, TValue> Writable(int keyGroupIndex)
    {
        var map = _maps[keyGroupIndex];
        if (map is null)
        {
            map = new HeldMap(new Dictionary<TKey, TValue>());
            _maps[keyGroupIndex] = map;
        }
        else if (map.IsShared)
        {
            var frozen = map;
            map = new HeldMap(Copy(frozen.Entries));
            _maps[keyGroupIndex] = map;
            Release(frozen);
        }

        return map.Entries;
    }

    private Dictionary<TKey, TValue> Copy(Dictionary<TKey, TValue> frozen)
    {
        Dictionary<TKey, TValue>? copy = null;
        lock (_spares)
        {
            _spares.TryPop(out copy);
        }

        if (copy is null)
        {
            if (ShallowCopyable)
            {
                // Copies the entries array without hashing a key again (same comparer).
                return new Dictionary<TKey, TValue>(frozen);
            }

            copy = new Dictionary<TKey, TValue>(frozen.Count);
        }
        else
        {
            copy.Clear();
            copy.EnsureCapacity(frozen.Count);
        }

        foreach (var (key, value) in frozen)
        {
            copy.Add(key, ShallowCopyable ? value : backend.Copier.Copy(value)!);
        }

        return copy;
    }

    private void Release(HeldMap map)
    {
        if (map.Drop())
        {
            lock (_spares)
            {
                if (_spares.Count < _maps.Length)
                {
                    _spares.Push(map.Entries);
                }
            }
        }
    }

    /// <summary>A key group's dictionary and how many hold it: the table while it is current, and each snapshot that captured it.</summary>
    private sealed class HeldMap(Dictionary<TKey, TValue> entries)
    {
        private int _holders = 1;

        public Dictionary<TKey, TValue> Entries { get; } = entries;

        /// <summary>Whether a snapshot holds it; read on the table's thread, where no snapshot is taken meanwhile.</summary>
        public bool IsShared => Volatile.Read(ref _holders) > 1;

        public void Hold() => Interlocked.Increment(ref _holders);

        /// <summary>Gives up one hold; true when that was the last.</summary>
        public bool Drop() => Interlocked.Decrement(ref _holders) == 0;
    }

    private sealed class Captured(StateTable<TKey, TValue> table, HeldMap?[] maps, Serializer serializer) : ICapturedTable
    {
        private readonly Serializer<TKey> _keys = serializer.GetSerializer<TKey>();
        private readonly Serializer<TValue> _values = serializer.GetSerializer<TValue>();

        public string Name => table.Name;

        public StateKind Kind => table.Kind;

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

        public void Release()
        {
            foreach (var map in maps)
            {
                if (map is not null)
                {
                    table.Release(map);
                }
            }
        }
    }
}
