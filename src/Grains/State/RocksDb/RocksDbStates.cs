using Orleans.Serialization;
using Platform.Functions;
using RocksDbSharp;

namespace Platform.State.RocksDb;

internal sealed class RocksDbValueState<TKey, T>(RocksDbKeyedStateBackend<TKey> backend, ColumnFamilyHandle columnFamily, Serializer<T> serializer, T defaultValue)
    : IValueState<T>
    where TKey : notnull
{
    private readonly StateValueCodec<T> _values = new(serializer, backend.Sessions);

    public T Value => backend.Get(columnFamily, backend.CurrentStateKey) is { } bytes ? _values.Deserialize(bytes) : defaultValue;

    public void Update(T value) => backend.Put(columnFamily, backend.CurrentStateKey, _values.Serialize(value));

    public void Clear() => backend.Delete(columnFamily, backend.CurrentStateKey);
}

/// <summary>A key's list is one serialized <c>List&lt;T&gt;</c> (the heap backend's snapshot value); adding reads, appends and writes it.</summary>
internal sealed class RocksDbListState<TKey, T>(RocksDbKeyedStateBackend<TKey> backend, ColumnFamilyHandle columnFamily, Serializer<List<T>> serializer)
    : IListState<T>
    where TKey : notnull
{
    private readonly StateValueCodec<List<T>> _lists = new(serializer, backend.Sessions);

    public IReadOnlyList<T> Get() => Read() is { } list ? list.AsReadOnly() : [];

    public void Add(T value)
    {
        var list = Read() ?? [];
        list.Add(value);
        Write(list);
    }

    public void AddAll(IEnumerable<T> values)
    {
        var list = Read() ?? [];
        var count = list.Count;
        list.AddRange(values);
        if (list.Count > count)
        {
            Write(list);
        }
    }

    public void Update(IEnumerable<T> values)
    {
        var list = new List<T>(values);
        if (list.Count == 0)
        {
            Clear();
        }
        else
        {
            Write(list);
        }
    }

    public void Clear() => backend.Delete(columnFamily, backend.CurrentStateKey);

    private List<T>? Read() => backend.Get(columnFamily, backend.CurrentStateKey) is { } bytes ? _lists.Deserialize(bytes) : null;

    private void Write(List<T> list) => backend.Put(columnFamily, backend.CurrentStateKey, _lists.Serialize(list));
}

/// <summary>One RocksDB entry per (key, user key), under the key's map prefix, so a key's map is a contiguous range.</summary>
internal sealed class RocksDbMapState<TKey, TUserKey, TValue>(
    RocksDbKeyedStateBackend<TKey> backend,
    ColumnFamilyHandle columnFamily,
    Serializer<TUserKey> userKeys,
    Serializer<TValue> serializer) : IMapState<TUserKey, TValue>
    where TKey : notnull
    where TUserKey : notnull
{
    private readonly StateValueCodec<TValue> _values = new(serializer, backend.Sessions);
    private readonly StateValueCodec<TUserKey> _userKeys = new(userKeys, backend.Sessions);

    public bool IsEmpty
    {
        get
        {
            var empty = true;
            backend.ScanPrefix(columnFamily, backend.CurrentMapPrefix, _ =>
            {
                empty = false;
                return false;
            });
            return empty;
        }
    }

    public bool TryGetValue(TUserKey key, out TValue value)
    {
        if (backend.Get(columnFamily, EntryKey(key)) is { } bytes)
        {
            value = _values.Deserialize(bytes);
            return true;
        }

        value = default!;
        return false;
    }

    public TValue? Get(TUserKey key) => TryGetValue(key, out var value) ? value : default;

    public void Put(TUserKey key, TValue value) => backend.Put(columnFamily, EntryKey(key), _values.Serialize(value));

    public void PutAll(IEnumerable<KeyValuePair<TUserKey, TValue>> entries)
    {
        foreach (var (key, value) in entries)
        {
            Put(key, value);
        }
    }

    public bool Remove(TUserKey key)
    {
        var entryKey = EntryKey(key);
        if (backend.Get(columnFamily, entryKey) is null)
        {
            return false;
        }

        backend.Delete(columnFamily, entryKey);
        return true;
    }

    public bool Contains(TUserKey key) => backend.Get(columnFamily, EntryKey(key)) is not null;

    public IReadOnlyList<KeyValuePair<TUserKey, TValue>> Entries()
    {
        var entries = new List<KeyValuePair<TUserKey, TValue>>();
        var prefixLength = backend.CurrentMapPrefix.Length;
        backend.ScanPrefix(columnFamily, backend.CurrentMapPrefix, iterator =>
        {
            entries.Add(new(userKeys.Deserialize(iterator.GetKeySpan()[prefixLength..].ToArray())!, _values.Deserialize(iterator.Value())));
            return true;
        });
        return entries;
    }

    public IReadOnlyList<TUserKey> Keys()
    {
        var keys = new List<TUserKey>();
        var prefixLength = backend.CurrentMapPrefix.Length;
        backend.ScanPrefix(columnFamily, backend.CurrentMapPrefix, iterator =>
        {
            keys.Add(userKeys.Deserialize(iterator.GetKeySpan()[prefixLength..].ToArray())!);
            return true;
        });
        return keys;
    }

    public IReadOnlyList<TValue> Values()
    {
        var result = new List<TValue>();
        backend.ScanPrefix(columnFamily, backend.CurrentMapPrefix, iterator =>
        {
            result.Add(_values.Deserialize(iterator.Value()));
            return true;
        });
        return result;
    }

    public void Clear()
    {
        // Point deletes of the key's entries (as Flink does) rather than a range tombstone per cleared key.
        var keys = new List<byte[]>();
        backend.ScanPrefix(columnFamily, backend.CurrentMapPrefix, iterator =>
        {
            keys.Add(iterator.Key());
            return true;
        });
        foreach (var key in keys)
        {
            backend.Delete(columnFamily, key);
        }
    }

    private byte[] EntryKey(TUserKey key) => RocksDbKeys.MapKey(backend.CurrentMapPrefix, _userKeys.Serialize(key));
}

internal sealed class RocksDbReducingState<TKey, T>(RocksDbKeyedStateBackend<TKey> backend, ColumnFamilyHandle columnFamily, Serializer<T> serializer, IReduceFunction<T> reduce)
    : IReducingState<T>
    where TKey : notnull
{
    private readonly StateValueCodec<T> _values = new(serializer, backend.Sessions);

    public T? Get() => backend.Get(columnFamily, backend.CurrentStateKey) is { } bytes ? _values.Deserialize(bytes) : default;

    public void Add(T value)
    {
        var key = backend.CurrentStateKey;
        var reduced = backend.Get(columnFamily, key) is { } bytes ? reduce.Reduce(_values.Deserialize(bytes), value) : value;
        backend.Put(columnFamily, key, _values.Serialize(reduced));
    }

    public void Clear() => backend.Delete(columnFamily, backend.CurrentStateKey);
}

internal sealed class RocksDbAggregatingState<TKey, TIn, TAcc, TOut>(
    RocksDbKeyedStateBackend<TKey> backend,
    ColumnFamilyHandle columnFamily,
    Serializer<TAcc> serializer,
    IAggregateFunction<TIn, TAcc, TOut> aggregate) : IAggregatingState<TIn, TOut>
    where TKey : notnull
{
    private readonly StateValueCodec<TAcc> _accumulators = new(serializer, backend.Sessions);

    public TOut? Get() =>
        backend.Get(columnFamily, backend.CurrentStateKey) is { } bytes ? aggregate.GetResult(_accumulators.Deserialize(bytes)) : default;

    public void Add(TIn value)
    {
        var key = backend.CurrentStateKey;
        var accumulator = backend.Get(columnFamily, key) is { } bytes ? _accumulators.Deserialize(bytes) : aggregate.CreateAccumulator();
        backend.Put(columnFamily, key, _accumulators.Serialize(aggregate.Add(value, accumulator)));
    }

    public void Clear() => backend.Delete(columnFamily, backend.CurrentStateKey);
}
