namespace Platform.State;

/// <summary>The kinds of keyed state, recorded with each state so that a name is not reused with another kind.</summary>
internal enum StateKind
{
    Value,
    List,
    Map,
    Reducing,
    Aggregating,
}

/// <summary>
/// Holds an operator subtask's keyed state for the key groups it owns, and the current key that state handles are
/// scoped to. Implementations: <see cref="Heap.HeapKeyedStateBackend{TKey}"/> (RocksDB later).
/// </summary>
internal interface IKeyedStateBackend<TKey> : IKeyedStateBackend
    where TKey : notnull
{
    /// <summary>The key that state handles currently read and write.</summary>
    TKey CurrentKey { get; }

    /// <summary>Sets the current key (computing its key group).</summary>
    void SetCurrentKey(TKey key);
}

/// <summary>The part of a keyed state backend that does not depend on the key type: creating state handles.</summary>
internal interface IKeyedStateBackend : IDisposable
{
    /// <summary>The key groups this backend holds.</summary>
    KeyGroupRange KeyGroupRange { get; }

    IValueState<T> GetValueState<T>(ValueStateDescriptor<T> descriptor);

    IListState<T> GetListState<T>(ListStateDescriptor<T> descriptor);

    IMapState<TUserKey, TValue> GetMapState<TUserKey, TValue>(MapStateDescriptor<TUserKey, TValue> descriptor)
        where TUserKey : notnull;

    IReducingState<T> GetReducingState<T>(ReducingStateDescriptor<T> descriptor);

    IAggregatingState<TIn, TOut> GetAggregatingState<TIn, TAcc, TOut>(AggregatingStateDescriptor<TIn, TAcc, TOut> descriptor);

    /// <summary>The number of keys that have a value in the named state (all key groups).</summary>
    long CountKeys(string stateName);
}
