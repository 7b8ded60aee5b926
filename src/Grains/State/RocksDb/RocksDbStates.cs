using Orleans.Serialization;
using Platform.Functions;
using RocksDbSharp;

namespace Platform.State.RocksDb;

internal sealed class RocksDbValueState<TKey, T>(RocksDbKeyedStateBackend<TKey> backend, ColumnFamilyHandle columnFamily, Serializer<T> values, T defaultValue)
    : IValueState<T>
    where TKey : notnull
{
    public T Value => backend.Get(columnFamily, backend.CurrentStateKey) is { } bytes ? values.Deserialize(bytes)! : defaultValue;

    public void Update(T value) => backend.Put(columnFamily, backend.CurrentStateKey, values.SerializeToArray(value));

    public void Clear() => backend.Delete(columnFamily, backend.CurrentStateKey);
}

/// <summary>A key's list is one serialized <c>List&lt;T&gt;</c> (the heap backend's snapshot value); adding reads, appends and writes it.</summary>
internal sealed class RocksDbListState<TKey, T>(RocksDbKeyedStateBackend<TKey> backend, ColumnFamilyHandle columnFamily, Serializer<List<T>> lists)
    : IListState<T>
    where TKey : notnull
{
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

    private List<T>? Read() => backend.Get(columnFamily, backend.CurrentStateKey) is { } bytes ? lists.Deserialize(bytes) : null;

    private void Write(List<T> list) => backend.Put(columnFamily, backend.CurrentStateKey, lists.SerializeToArray(list));
}

/// <summary>One RocksDB entry per (key, user key), under the key's map prefix, so a key's map is a contiguous range.</summary>
internal sealed class RocksDbMapState<TKey, TUserKey, TValue>(
    RocksDbKeyedStateBackend<TKey> backend,
    ColumnFamilyHandle columnFamily,
    Serializer<TUserKey> userKeys,
    Serializer<TValue> values) : IMapState<TUserKey, TValue>
    where TKey : notnull
    where TUserKey : notnull
{
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
            value = values.Deserialize(bytes)!;
            return true;
        }

        value = default!;
        return false;
    }

    public TValue? Get(TUserKey key) => TryGetValue(key, out var value) ? value : default;

    public void Put(TUserKey key, TValue value) => backend.Put(columnFamily, EntryKey(key), values.SerializeToArray(value));

    public void PutAll(IEnumerable<KeyValuePair<TUserKey, TValue>> entries)
    {
        using var batch = new WriteBatch();
        foreach (var (key, value) in entries)
        {
            batch.Put(EntryKey(key), values.SerializeToArray(value), columnFamily);
        }

        backend.Write(batch);
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
            entries.Add(new(userKeys.Deserialize(iterator.GetKeySpan()[prefixLength..].ToArray())!, values.Deserialize(iterator.Value())!));
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
            result.Add(values.Deserialize(iterator.Value())!);
            return true;
        });
        return result;
    }

    public void Clear()
    {
        // Point deletes of the key's entries (as Flink does) rather than a range tombstone per cleared key.
        using var batch = new WriteBatch();
        backend.ScanPrefix(columnFamily, backend.CurrentMapPrefix, iterator =>
        {
            batch.Delete(iterator.Key(), columnFamily);
            return true;
        });
        if (batch.Count() > 0)
        {
            backend.Write(batch);
        }
    }

    private byte[] EntryKey(TUserKey key) => RocksDbKeys.MapKey(backend.CurrentMapPrefix, userKeys.SerializeToArray(key));
}

internal sealed class RocksDbReducingState<TKey, T>(RocksDbKeyedStateBackend<TKey> backend, ColumnFamilyHandle columnFamily, Serializer<T> values, IReduceFunction<T> reduce)
    : IReducingState<T>
    where TKey : notnull
{
    public T? Get() => backend.Get(columnFamily, backend.CurrentStateKey) is { } bytes ? values.Deserialize(bytes) : default;

    public void Add(T value)
    {
        var key = backend.CurrentStateKey;
        var reduced = backend.Get(columnFamily, key) is { } bytes ? reduce.Reduce(values.Deserialize(bytes)!, value) : value;
        backend.Put(columnFamily, key, values.SerializeToArray(reduced));
    }

    public void Clear() => backend.Delete(columnFamily, backend.CurrentStateKey);
}

internal sealed class RocksDbAggregatingState<TKey, TIn, TAcc, TOut>(
    RocksDbKeyedStateBackend<TKey> backend,
    ColumnFamilyHandle columnFamily,
    Serializer<TAcc> accumulators,
    IAggregateFunction<TIn, TAcc, TOut> aggregate) : IAggregatingState<TIn, TOut>
    where TKey : notnull
{
    public TOut? Get() =>
        backend.Get(columnFamily, backend.CurrentStateKey) is { } bytes ? aggregate.GetResult(accumulators.Deserialize(bytes)!) : default;

    public void Add(TIn value)
    {
        var key = backend.CurrentStateKey;
        var accumulator = backend.Get(columnFamily, key) is { } bytes ? accumulators.Deserialize(bytes)! : aggregate.CreateAccumulator();
        backend.Put(columnFamily, key, accumulators.SerializeToArray(aggregate.Add(value, accumulator)));
    }

    public void Clear() => backend.Delete(columnFamily, backend.CurrentStateKey);
}
