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
/// scoped to. Implementations: <see cref="Heap.HeapKeyedStateBackend{TKey}"/> and <see cref="RocksDb.RocksDbKeyedStateBackend{TKey}"/>.
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

    /// <summary>
    /// The synchronous part of a snapshot: freezes a version of the state without copying it. Processing may go on
    /// at once; the returned snapshot is written (on any thread) by <see cref="IKeyedStateSnapshot.Write"/>.
    /// </summary>
    IKeyedStateSnapshot Snapshot();

    /// <summary>Loads the key groups this backend owns from snapshot files (several when rescaling); call before any state access.</summary>
    /// <exception cref="Checkpointing.CorruptCheckpointException">A file is damaged; nothing is restored.</exception>
    void Restore(IEnumerable<(byte[] Content, string Path)> files);
}

/// <summary>A frozen version of a backend's keyed state, written in the <see cref="KeyedStateFile"/> format.</summary>
internal interface IKeyedStateSnapshot : IDisposable
{
    /// <summary>Serializes the frozen state. Safe to call off the task's thread while processing continues.</summary>
    byte[] Write();
}
