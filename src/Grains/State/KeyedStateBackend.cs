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

    /// <summary>
    /// The keys that have a value in the named state, over every key group held (Flink's <c>getKeys</c>); empty when
    /// the state was not created (with a <c>Get…State</c> call) yet. Used to rebuild what is derived from state after
    /// a restore (timer queues); not for the record path.
    /// </summary>
    IReadOnlyList<TKey> GetKeys(string stateName);
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

    /// <summary>Whether the named state exists: created by a <c>Get…State</c> call, or restored from a snapshot.</summary>
    bool HasState(string stateName);

    /// <summary>The number of keys that have a value in the named state (all key groups).</summary>
    long CountKeys(string stateName);

    /// <summary>
    /// The synchronous part of a snapshot in the portable format: freezes a version of the state without copying it.
    /// Processing may go on at once; the returned snapshot is written (on any thread) by <see cref="IKeyedStateSnapshot.Write"/>.
    /// </summary>
    IKeyedStateSnapshot Snapshot();

    /// <summary>
    /// The synchronous part of a checkpoint. A backend that supports it takes an incremental snapshot when
    /// <paramref name="request"/> asks for one; otherwise this is a <see cref="Snapshot()"/> in the portable format.
    /// </summary>
    IKeyedStateSnapshot SnapshotForCheckpoint(CheckpointSnapshotRequest request) => Snapshot();

    /// <summary>Loads the key groups this backend owns from portable snapshot files (several when rescaling); call before any state access.</summary>
    /// <exception cref="Checkpointing.CorruptCheckpointException">A file is damaged; nothing is restored.</exception>
    void Restore(IEnumerable<(byte[] Content, string Path)> files);

    /// <summary>
    /// Loads the key groups this backend owns from the snapshots of checkpoint <paramref name="checkpointId"/> that
    /// overlap them, fetching their files from <paramref name="storage"/>; call before any state access.
    /// </summary>
    /// <exception cref="Checkpointing.CorruptCheckpointException">A file is damaged; nothing is restored.</exception>
    async Task RestoreAsync(IReadOnlyList<Checkpointing.KeyedStateSnapshot> snapshots, long checkpointId, Storage.ICheckpointStorage storage, string jobId, CancellationToken cancellationToken)
    {
        var files = new List<(byte[], string)>();
        foreach (var snapshot in snapshots)
        {
            if (snapshot.Handle is not { } handle)
            {
                throw new IncompatibleStateException(
                    $"Checkpoint {checkpointId} holds the keyed state of key groups {snapshot.KeyGroupStart}-{snapshot.KeyGroupEnd} in {snapshot.Native?.Backend ?? "an unknown"} backend's native format, " +
                    $"which the {GetType().Name.Split('`')[0]} cannot read. Restore it on that backend, or take a savepoint (portable format) to change backends.");
            }

            files.Add((await storage.ReadStateAsync(jobId, handle, cancellationToken), handle.Path));
        }

        Restore(files);
    }
}

/// <summary>What a checkpoint asks of a backend's snapshot.</summary>
/// <param name="CheckpointId">The checkpoint.</param>
/// <param name="Incremental">Whether an incremental snapshot may be taken (the job wants it and the storage keeps shared files).</param>
/// <param name="BaseCheckpointId">The latest completed checkpoint when this one was triggered: the files it references may be shared.</param>
internal sealed record CheckpointSnapshotRequest(long CheckpointId, bool Incremental, long? BaseCheckpointId);

/// <summary>Where a snapshot writes its files.</summary>
/// <param name="Storage">The job's checkpoint storage.</param>
/// <param name="JobId">The job.</param>
/// <param name="CheckpointId">The checkpoint.</param>
/// <param name="FilePrefix">A prefix that makes the subtask's file names unique in the checkpoint (task, subtask, operator uid).</param>
/// <remarks><paramref name="Shared"/> writes the file under the job's <c>shared/</c> directory instead of the checkpoint's own (a finished subtask's final snapshot, which later checkpoints include).</remarks>
internal sealed record SnapshotTarget(Storage.ICheckpointStorage Storage, string JobId, long CheckpointId, string FilePrefix, bool Shared = false);

/// <summary>A frozen version of a backend's keyed state.</summary>
internal interface IKeyedStateSnapshot : IDisposable
{
    /// <summary>The key groups the snapshot holds.</summary>
    KeyGroupRange KeyGroupRange { get; }

    /// <summary>
    /// Serializes the frozen state in the <see cref="KeyedStateFile"/> format into <paramref name="destination"/>, as it
    /// goes. Safe to call off the task's thread while processing continues.
    /// </summary>
    void WriteTo(Stream destination);

    /// <summary>Serializes the frozen state in the <see cref="KeyedStateFile"/> format into memory.</summary>
    byte[] Write()
    {
        using var buffer = new MemoryStream();
        WriteTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>
    /// Writes the snapshot to checkpoint storage as one portable file (off the task's thread) and describes it. The
    /// file streams through a bounded pipe, so the whole snapshot is never in memory at once.
    /// </summary>
    async Task<Checkpointing.KeyedStateSnapshot> WriteToAsync(SnapshotTarget target, CancellationToken cancellationToken)
    {
        var pipe = new System.IO.Pipelines.Pipe(new System.IO.Pipelines.PipeOptions(pauseWriterThreshold: 4 << 20, resumeWriterThreshold: 2 << 20));
        var producer = Task.Run(
            () =>
            {
                try
                {
                    WriteTo(pipe.Writer.AsStream(leaveOpen: true));
                    pipe.Writer.Complete();
                }
                catch (Exception ex)
                {
                    pipe.Writer.Complete(ex); // the storage's read fails with it, and deletes what it wrote
                    throw;
                }
            },
            CancellationToken.None);

        Checkpointing.StateHandle handle;
        try
        {
            await using var content = pipe.Reader.AsStream();
            handle = target.Shared
                ? await target.Storage.WriteSharedStateAsync(target.JobId, $"{target.FilePrefix}.state", content, cancellationToken)
                : await target.Storage.WriteStateAsync(target.JobId, target.CheckpointId, $"{target.FilePrefix}.state", content, cancellationToken);
        }
        catch
        {
            pipe.Reader.Complete(); // stops the producer at its next write
            await producer.ContinueWith(_ => { }, TaskScheduler.Default);
            throw;
        }

        await producer;
        return new Checkpointing.KeyedStateSnapshot { KeyGroupStart = KeyGroupRange.Start, KeyGroupEnd = KeyGroupRange.End, Handle = handle };
    }
}

/// <summary>A snapshot cannot be restored by this backend (it is in another backend's native format).</summary>
[GenerateSerializer, Alias("platform.IncompatibleStateException")]
public sealed class IncompatibleStateException(string message) : Exception(message);
