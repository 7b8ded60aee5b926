using Orleans.Serialization;
using Platform.Checkpointing;
using Platform.Storage;
using RocksDbSharp;
using RocksDatabase = RocksDbSharp.RocksDb;

namespace Platform.State.RocksDb;

/// <summary>
/// Keyed state in an embedded RocksDB instance on local disk (Flink's EmbeddedRocksDBStateBackend): state larger than
/// memory, at the cost of serializing on every access. One RocksDB instance per backend (operator subtask), one
/// column family per state; keys are laid out by <see cref="RocksDbKeys"/> so that a key group is a contiguous range.
/// </summary>
/// <remarks>
/// <para>
/// The write-ahead log is off: checkpoints give durability, and the working directory is thrown away with the backend.
/// <see cref="Snapshot"/> takes a RocksDB snapshot (no copy); <see cref="IKeyedStateSnapshot.Write"/> iterates it on any
/// thread while processing goes on, and writes the backend-independent <see cref="KeyedStateFile"/> format with the
/// same entries the heap backend writes, so a snapshot of either backend restores on the other.
/// </para>
/// <para>
/// Incremental checkpoints (<see cref="SnapshotForCheckpoint"/>) take a RocksDB checkpoint instead: memtables are
/// flushed and the live SST files hard-linked into a directory, in the synchronous part. The asynchronous part
/// uploads only the SST files the base checkpoint did not already hold (to the storage's shared directory; the
/// coordinator reference-counts them), plus the small manifest files. A restore with the same key groups opens the
/// downloaded files as they are; a rescaled restore copies the key groups it owns out of each snapshot.
/// </para>
/// <para>
/// State handles must be used on one thread at a time (the task's), like the heap backend's. Disposing the backend
/// while a snapshot is still being written defers closing the database until that snapshot is disposed.
/// </para>
/// </remarks>
internal sealed class RocksDbKeyedStateBackend<TKey> : IKeyedStateBackend<TKey>
    where TKey : notnull
{
    private const int RestoreBatchSize = 4096;
    private const int MaxRememberedCheckpoints = 4;
    private const string ColumnFamilyPrefix = "state/";

    private readonly Dictionary<string, RocksDbStateInfo> _states = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RawMapState> _restoredMaps = new(StringComparer.Ordinal);
    private readonly IKeyHasher<TKey> _hasher;
    private readonly Serializer _serializer;
    private readonly Serializer<TKey> _keySerializer;
    private readonly int _maxParallelism;
    private readonly string _operatorName;

    // Native objects: kept referenced for as long as the database is open.
    private readonly Cache _blockCache;
    private readonly BlockBasedTableOptions _tableOptions;
    private readonly ColumnFamilyOptions _columnFamilyOptions;
    private readonly DbOptions _dbOptions;
    private readonly WriteOptions _writeOptions;
    private readonly ReadOptions _readOptions;
    private readonly ReadOptions _prefixReadOptions;
    private readonly Lock _uploadsLock = new();

    // The shared files each recent checkpoint referenced, by local SST name: a later checkpoint whose base is one
    // of them references the same files instead of uploading them again (SST files never change once written).
    private readonly SortedDictionary<long, Dictionary<string, NativeStateFile>> _uploads = [];
    private RocksDatabase _db;
    private readonly RocksDbStateCache _cache;
    private readonly Action<WriteBatch> _writeBatch;

    private readonly Lock _lifetimeLock = new();
    private volatile bool _disposed;
    private int _leases;

    private TKey _currentKey = default!;
    private int _currentKeyGroup = -1;
    private KeyBytes? _current;

    // The serialized forms of recently used keys, so hot keys are not serialized again on every record; bounded with
    // the state cache (and off with it).
    private readonly Dictionary<TKey, KeyBytes> _keyBytes = [];
    private readonly int _maxCachedKeys;

    public RocksDbKeyedStateBackend(
        KeyGroupRange keyGroupRange,
        int maxParallelism,
        IKeyHasher<TKey> hasher,
        Serializer serializer,
        Orleans.Serialization.Session.SerializerSessionPool sessions,
        RocksDbStateOptions options,
        string operatorName)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (maxParallelism is < 1 or > 32768)
        {
            throw new ArgumentOutOfRangeException(nameof(maxParallelism), maxParallelism, "The RocksDB backend supports a max parallelism of 1 to 32,768 (key groups are stored in two bytes).");
        }

        KeyGroupRange = keyGroupRange;
        _maxParallelism = maxParallelism;
        _hasher = hasher;
        _serializer = serializer;
        _keySerializer = serializer.GetSerializer<TKey>();
        _operatorName = operatorName;
        Sessions = sessions;
        _cache = new RocksDbStateCache(options.StateCacheSize);
        _maxCachedKeys = (int)Math.Min(options.StateCacheSize / 256, 1 << 20);
        _writeBatch = batch => Db.Write(batch, _writeOptions);
        WorkingDirectory = Path.Combine(
            Path.GetFullPath(options.LocalDirectory),
            $"rocksdb-{DirectoryNamePart(operatorName)}-{keyGroupRange.Start}-{keyGroupRange.End}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(WorkingDirectory);

        try
        {
            _blockCache = Cache.CreateLru((ulong)options.BlockCacheSize);
            // A Bloom filter per SST file lets lookups of keys a file does not hold (first writes of new keys) skip it.
            _tableOptions = new BlockBasedTableOptions().SetBlockCache(_blockCache).SetFilterPolicy(BloomFilterPolicy.Create(10, false));
            _columnFamilyOptions = new ColumnFamilyOptions()
                .SetWriteBufferSize((ulong)options.WriteBufferSize)
                .SetMaxWriteBufferNumber(options.MaxWriteBufferNumber)
                .SetBlockBasedTableFactory(_tableOptions);
            _dbOptions = new DbOptions()
                .SetCreateIfMissing(true)
                .SetCreateMissingColumnFamilies(true)
                .SetKeepLogFileNum(2);
            _writeOptions = new WriteOptions().DisableWal(1);
            _readOptions = new ReadOptions();
            _prefixReadOptions = new ReadOptions();

            // Opening with column families (even only the default one) is what lets CreateColumnFamily work later.
            _db = RocksDatabase.Open(_dbOptions, WorkingDirectory, new ColumnFamilies(_columnFamilyOptions));
        }
        catch
        {
            TryDeleteWorkingDirectory();
            throw;
        }
    }

    public KeyGroupRange KeyGroupRange { get; }

    /// <summary>Where state handles take the serializer sessions they keep.</summary>
    internal Orleans.Serialization.Session.SerializerSessionPool Sessions { get; }

    /// <summary>This backend's own directory (under <see cref="RocksDbStateOptions.LocalDirectory"/>), deleted on dispose.</summary>
    public string WorkingDirectory { get; }

    public TKey CurrentKey => _currentKeyGroup >= 0 ? _currentKey : throw NoCurrentKey();

    /// <summary>The current key's RocksDB key in value, list, reducing and aggregating states.</summary>
    internal byte[] CurrentStateKey => Current.StateKey ??= RocksDbKeys.StateKey(CurrentKeyGroup, Current.Serialized);

    /// <summary>The prefix of the current key's entries in map states.</summary>
    internal byte[] CurrentMapPrefix => Current.MapPrefix ??= RocksDbKeys.MapPrefix(CurrentKeyGroup, Current.Serialized);

    private int CurrentKeyGroup => _currentKeyGroup >= 0 ? _currentKeyGroup : throw NoCurrentKey();

    private KeyBytes Current => _current ?? throw NoCurrentKey();

    private RocksDatabase Db => _disposed
        ? throw new ObjectDisposedException(GetType().Name, $"The keyed state of operator '{_operatorName}' was disposed.")
        : _db;

    public void SetCurrentKey(TKey key)
    {
        var keyGroup = KeyGroupAssignment.AssignOwned(key, _hasher.Hash(key), _maxParallelism, KeyGroupRange, _operatorName);

        _currentKey = key;
        _currentKeyGroup = keyGroup;
        if (_maxCachedKeys == 0)
        {
            _current = new KeyBytes(_keySerializer.SerializeToArray(key));
            return;
        }

        if (!_keyBytes.TryGetValue(key, out var bytes))
        {
            if (_keyBytes.Count >= _maxCachedKeys)
            {
                _keyBytes.Clear();
            }

            _keyBytes[key] = bytes = new KeyBytes(_keySerializer.SerializeToArray(key));
        }

        _current = bytes;
    }

    /// <summary>A key's serialized form and the RocksDB keys derived from it (built when first needed).</summary>
    private sealed class KeyBytes(byte[] serialized)
    {
        public byte[] Serialized { get; } = serialized;

        public byte[]? StateKey { get; set; }

        public byte[]? MapPrefix { get; set; }

        public RocksDbStateCache.Slot Slot { get; } = new();
    }

    public IValueState<T> GetValueState<T>(ValueStateDescriptor<T> descriptor) =>
        new RocksDbValueState<TKey, T>(this, Register(descriptor, StateKind.Value, typeof(T), null).ColumnFamily, _serializer.GetSerializer<T>(), descriptor.DefaultValue);

    public IListState<T> GetListState<T>(ListStateDescriptor<T> descriptor) =>
        new RocksDbListState<TKey, T>(this, Register(descriptor, StateKind.List, typeof(List<T>), null).ColumnFamily, _serializer.GetSerializer<List<T>>());

    public IMapState<TUserKey, TValue> GetMapState<TUserKey, TValue>(MapStateDescriptor<TUserKey, TValue> descriptor)
        where TUserKey : notnull
    {
        var state = Register(descriptor, StateKind.Map, typeof(Dictionary<TUserKey, TValue>), () => new MapStateCodec<TUserKey, TValue>(_serializer));
        return new RocksDbMapState<TKey, TUserKey, TValue>(this, state.ColumnFamily, _serializer.GetSerializer<TUserKey>(), _serializer.GetSerializer<TValue>());
    }

    public IReducingState<T> GetReducingState<T>(ReducingStateDescriptor<T> descriptor) =>
        new RocksDbReducingState<TKey, T>(this, Register(descriptor, StateKind.Reducing, typeof(T), null).ColumnFamily, _serializer.GetSerializer<T>(), descriptor.ReduceFunction);

    public IAggregatingState<TIn, TOut> GetAggregatingState<TIn, TAcc, TOut>(AggregatingStateDescriptor<TIn, TAcc, TOut> descriptor) =>
        new RocksDbAggregatingState<TKey, TIn, TAcc, TOut>(
            this, Register(descriptor, StateKind.Aggregating, typeof(TAcc), null).ColumnFamily, _serializer.GetSerializer<TAcc>(), descriptor.AggregateFunction);

    public long CountKeys(string stateName)
    {
        FlushCache();
        if (_restoredMaps.TryGetValue(stateName, out var raw))
        {
            return raw.Groups.Values.Sum(entries => (long)entries.Count);
        }

        if (!_states.TryGetValue(stateName, out var state))
        {
            return 0;
        }

        long count = 0;
        byte[]? previousPrefix = null;
        using var iterator = Db.NewIterator(state.ColumnFamily, _readOptions);
        for (iterator.SeekToFirst(); iterator.Valid(); iterator.Next())
        {
            if (state.Kind != StateKind.Map)
            {
                count++;
                continue;
            }

            // Map entries of one key are adjacent: count the distinct key prefixes.
            var key = iterator.GetKeySpan();
            var prefix = key[..RocksDbKeys.MapPrefixLength(key)];
            if (previousPrefix is null || !prefix.SequenceEqual(previousPrefix))
            {
                count++;
                previousPrefix = prefix.ToArray();
            }
        }

        return count;
    }

    public bool HasState(string stateName) => _states.ContainsKey(stateName) || _restoredMaps.ContainsKey(stateName);

    public IReadOnlyList<TKey> GetKeys(string stateName)
    {
        FlushCache();
        if (!_states.TryGetValue(stateName, out var state))
        {
            return [];
        }

        var keys = new List<TKey>();
        byte[]? previousPrefix = null;
        using var iterator = Db.NewIterator(state.ColumnFamily, _readOptions);
        for (iterator.SeekToFirst(); iterator.Valid(); iterator.Next())
        {
            var key = iterator.GetKeySpan();
            if (!KeyGroupRange.Contains(RocksDbKeys.KeyGroupOf(key)))
            {
                continue;
            }

            ReadOnlySpan<byte> serialized;
            if (state.Kind == StateKind.Map)
            {
                // Map entries of one key are adjacent: one key per distinct prefix.
                var prefix = key[..RocksDbKeys.MapPrefixLength(key)];
                if (previousPrefix is not null && prefix.SequenceEqual(previousPrefix))
                {
                    continue;
                }

                previousPrefix = prefix.ToArray();
                serialized = prefix[RocksDbKeys.MapPrefixHeaderLength..];
            }
            else
            {
                serialized = key[RocksDbKeys.KeyGroupPrefixLength..];
            }

            keys.Add(_keySerializer.Deserialize(serialized.ToArray())!);
        }

        return keys;
    }

    public IKeyedStateSnapshot Snapshot()
    {
        var db = Db;
        FlushCache();
        if (_states.Values.FirstOrDefault(s => s.Kind == StateKind.Map && s.MapCodec is null) is { } unregistered)
        {
            // The portable format holds one serialized dictionary per key, which needs the map's types.
            throw new InvalidOperationException(
                $"Map state '{unregistered.Name}' of operator '{_operatorName}' was restored from an incremental checkpoint and not used since, " +
                "so its types are unknown and it cannot be written in the portable format yet; take incremental checkpoints, or use the state first.");
        }

        var sources = _states.Values.Select(s => new SnapshotSource(s.Name, s.Kind, s.ColumnFamily, s.MapCodec, null))
            .Concat(_restoredMaps.Select(r => new SnapshotSource(r.Key, StateKind.Map, null, null, r.Value.Groups)))
            .ToList();
        lock (_lifetimeLock)
        {
            _leases++;
        }

        try
        {
            return new Frozen(this, db.CreateSnapshot(), sources);
        }
        catch
        {
            ReleaseLease();
            throw;
        }
    }

    public IKeyedStateSnapshot SnapshotForCheckpoint(CheckpointSnapshotRequest request)
    {
        // Restored map entries not yet registered live outside RocksDB: until they are loaded, snapshots are full.
        if (!request.Incremental || _restoredMaps.Count > 0)
        {
            return Snapshot();
        }

        var db = Db;
        FlushCache();
        var directory = $"{WorkingDirectory}.chk-{request.CheckpointId}-{Guid.NewGuid():N}";
        try
        {
            // Flushes the memtables (the write-ahead log is off, so they would be missed otherwise) and hard-links the SSTs.
            using var checkpoint = db.Checkpoint();
            checkpoint.Save(directory, 0);
        }
        catch
        {
            RocksDbIncrementalSnapshot.TryDeleteDirectory(directory);
            throw;
        }

        Dictionary<string, NativeStateFile>? baseFiles = null;
        lock (_uploadsLock)
        {
            if (request.BaseCheckpointId is { } baseId)
            {
                _uploads.TryGetValue(baseId, out baseFiles);
                foreach (var older in _uploads.Keys.Where(id => id < baseId).ToList())
                {
                    _uploads.Remove(older);
                }
            }
        }

        var states = _states.Values.Select(s => new NativeStateInfo { Name = s.Name, Kind = s.Kind.ToString() }).ToList();
        return new RocksDbIncrementalSnapshot(KeyGroupRange, directory, states, baseFiles, RememberUploads);
    }

    public async Task RestoreAsync(IReadOnlyList<KeyedStateSnapshot> snapshots, long checkpointId, ICheckpointStorage storage, string jobId, CancellationToken cancellationToken)
    {
        _ = Db;
        if (_states.Count > 0 || _restoredMaps.Count > 0)
        {
            throw new InvalidOperationException($"The keyed state of operator '{_operatorName}' must be restored once, before it is used.");
        }

        var native = snapshots.Where(s => s.Native is not null).ToList();
        foreach (var snapshot in native.Where(s => s.Native!.Backend != RocksDbIncrementalSnapshot.BackendName))
        {
            throw new IncompatibleStateException(
                $"Checkpoint {checkpointId} holds the keyed state of key groups {snapshot.KeyGroupStart}-{snapshot.KeyGroupEnd} in the native format of backend '{snapshot.Native!.Backend}', which RocksDB cannot read.");
        }

        // Fetch and verify every file before touching the database, so that a damaged one restores nothing.
        var portable = new List<(byte[], string)>();
        foreach (var handle in snapshots.Select(s => s.Handle).OfType<StateHandle>())
        {
            portable.Add((await storage.ReadStateAsync(jobId, handle, cancellationToken), handle.Path));
        }

        var downloaded = new List<(KeyedStateSnapshot Snapshot, string Directory, List<(string Name, StateKind Kind)> States)>();
        try
        {
            foreach (var snapshot in native)
            {
                var directory = $"{WorkingDirectory}.restore-{downloaded.Count}";
                downloaded.Add((snapshot, directory, RocksDbIncrementalSnapshot.ParseStates(snapshot.Native!, checkpointId)));
                await RocksDbIncrementalSnapshot.DownloadAsync(snapshot.Native!, directory, storage, jobId, cancellationToken);
            }

            if (portable.Count == 0 && downloaded is [var only] && only.Snapshot.KeyGroupStart == KeyGroupRange.Start && only.Snapshot.KeyGroupEnd == KeyGroupRange.End)
            {
                // The same key groups: the downloaded files become this backend's database as they are.
                ReplaceDatabase(only.Directory, only.States);
                if (checkpointId >= 0)
                {
                    RememberUploads(checkpointId, only.Snapshot.SharedFiles.ToDictionary(f => f.LocalName, StringComparer.Ordinal));
                }

                return;
            }

            // Rescaling: copy the key groups this backend owns out of each snapshot.
            foreach (var (snapshot, directory, states) in downloaded)
            {
                CopyOwnedKeyGroups(snapshot, directory, states);
            }
        }
        finally
        {
            foreach (var (_, directory, _) in downloaded)
            {
                RocksDbIncrementalSnapshot.TryDeleteDirectory(directory);
            }
        }

        if (portable.Count > 0)
        {
            Restore(portable);
        }
    }

    public void Restore(IEnumerable<(byte[] Content, string Path)> files)
    {
        var db = Db;
        if (_states.Values.Any(s => s.ValueType is not null))
        {
            throw new InvalidOperationException($"The keyed state of operator '{_operatorName}' must be restored before it is used.");
        }

        // Parse and check everything before touching the database, so that a damaged file restores nothing.
        var parsed = files.SelectMany(f => KeyedStateFile.Read(f.Content, f.Path, KeyGroupRange, _maxParallelism)).ToList();
        var kinds = _states.ToDictionary(s => s.Key, s => s.Value.Kind, StringComparer.Ordinal);
        foreach (var name in _restoredMaps.Keys)
        {
            kinds[name] = StateKind.Map;
        }

        foreach (var (_, state) in parsed)
        {
            if (kinds.TryGetValue(state.StateName, out var kind) && kind != state.Kind)
            {
                throw new Checkpointing.CorruptCheckpointException(
                    "(keyed state)", $"state '{state.StateName}' is {kind} in one snapshot file and {state.Kind} in another.");
            }

            kinds[state.StateName] = state.Kind;
        }

        // Value, list, reducing and aggregating entries have the same bytes in RocksDB as in the file: write them now.
        // Map entries need the user key and value types to be split per user key: keep them until the state is registered.
        using var batch = new WriteBatch();
        foreach (var (keyGroup, state) in parsed)
        {
            if (state.Kind == StateKind.Map)
            {
                if (!_restoredMaps.TryGetValue(state.StateName, out var raw))
                {
                    _restoredMaps[state.StateName] = raw = new RawMapState([]);
                }

                if (!raw.Groups.TryGetValue(keyGroup, out var entries))
                {
                    raw.Groups[keyGroup] = entries = [];
                }

                entries.AddRange(state.Entries);
                continue;
            }

            if (!_states.TryGetValue(state.StateName, out var info))
            {
                info = CreateState(state.StateName, state.Kind);
            }

            foreach (var (key, value) in state.Entries)
            {
                batch.Put(RocksDbKeys.StateKey(keyGroup, key), value, info.ColumnFamily);
                if (batch.Count() >= RestoreBatchSize)
                {
                    db.Write(batch, _writeOptions);
                    batch.Clear();
                }
            }
        }

        db.Write(batch, _writeOptions);
    }

    public void Dispose()
    {
        lock (_lifetimeLock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_leases > 0)
            {
                return;
            }
        }

        Close();
    }

    internal byte[]? Get(ColumnFamilyHandle columnFamily, byte[] key)
    {
        var slot = SlotOf(key);
        if (_cache.TryGet(columnFamily, key, slot, out var cached))
        {
            return cached;
        }

        var value = Db.Get(key, columnFamily, _readOptions);
        _cache.AddClean(columnFamily, key, value, slot, _writeBatch);
        return value;
    }

    internal void Put(ColumnFamilyHandle columnFamily, byte[] key, byte[] value)
    {
        if (_cache.Enabled)
        {
            _cache.Write(columnFamily, key, value, SlotOf(key), _writeBatch);
        }
        else
        {
            Db.Put(key, value, columnFamily, _writeOptions);
        }
    }

    internal void Delete(ColumnFamilyHandle columnFamily, byte[] key)
    {
        if (_cache.Enabled)
        {
            _cache.Write(columnFamily, key, null, SlotOf(key), _writeBatch);
        }
        else
        {
            Db.Remove(key, columnFamily, _writeOptions);
        }
    }

    // The current key's cache slot, for its state key (value, list, reducing and aggregating states).
    private RocksDbStateCache.Slot? SlotOf(byte[] key) => _current is { } current && ReferenceEquals(key, current.StateKey) ? current.Slot : null;

    /// <summary>Writes the cache's pending changes to RocksDB, before anything reads RocksDB directly.</summary>
    private void FlushCache() => _cache.Flush(_writeBatch);

    /// <summary>Visits the entries whose keys start with <paramref name="prefix"/>, in key order, until <paramref name="visit"/> returns false.</summary>
    internal void ScanPrefix(ColumnFamilyHandle columnFamily, byte[] prefix, Func<Iterator, bool> visit)
    {
        var db = Db;
        FlushCache();

        // The upper bound lets RocksDB stop at the end of the prefix instead of skipping tombstones beyond it.
        // The prefix starts with a key group (< 0x8000), so it always has an end.
        _prefixReadOptions.SetIterateUpperBound(RocksDbKeys.PrefixEnd(prefix)!);
        using var iterator = db.NewIterator(columnFamily, _prefixReadOptions);
        for (iterator.Seek(prefix); iterator.Valid(); iterator.Next())
        {
            if (!visit(iterator))
            {
                return;
            }
        }
    }

    private static InvalidOperationException NoCurrentKey() =>
        new("No current key: keyed state can only be used while a keyed record is processed.");

    private static string DirectoryNamePart(string operatorName)
    {
        var invalid = Path.GetInvalidFileNameChars();
        var chars = operatorName.Take(40).Select(c => invalid.Contains(c) || char.IsWhiteSpace(c) ? '_' : c).ToArray();
        return chars.Length == 0 ? "operator" : new string(chars);
    }

    private RocksDbStateInfo Register(StateDescriptor descriptor, StateKind kind, Type valueType, Func<IMapStateCodec>? mapCodec)
    {
        var name = descriptor.Name;
        _ = Db;
        if (_states.TryGetValue(name, out var existing))
        {
            if (existing.ValueType is null)
            {
                // Restored, used for the first time.
                if (existing.Kind != kind)
                {
                    throw KindChangedAcrossRestore(name, existing.Kind, kind);
                }

                existing.ValueType = valueType;
                existing.MapCodec ??= mapCodec?.Invoke();
                return existing;
            }

            if (existing.Kind == kind && existing.ValueType == valueType)
            {
                return existing;
            }

            throw new InvalidOperationException(
                $"State '{name}' of operator '{_operatorName}' was already registered as {existing.Kind} state of {existing.ValueType.Name}; " +
                $"it cannot also be {kind} state of {valueType.Name}. Give each state its own name.");
        }

        _restoredMaps.TryGetValue(name, out var restored);
        if (restored is not null && kind != StateKind.Map)
        {
            throw KindChangedAcrossRestore(name, StateKind.Map, kind);
        }

        var created = CreateState(name, kind);
        created.ValueType = valueType;
        created.MapCodec = mapCodec?.Invoke();
        if (restored is not null)
        {
            _restoredMaps.Remove(name);
            LoadMap(created, restored);
        }

        return created;
    }

    private InvalidOperationException KindChangedAcrossRestore(string name, StateKind restored, StateKind requested) =>
        new($"State '{name}' of operator '{_operatorName}' was restored as {restored} state but is now requested as {requested} state; " +
            "a state cannot change kind across a restore. Use a new state name.");

    private RocksDbStateInfo CreateState(string name, StateKind kind)
    {
        var columnFamily = _db.CreateColumnFamily(_columnFamilyOptions, ColumnFamilyPrefix + name);
        var state = new RocksDbStateInfo(name, kind, columnFamily);
        _states.Add(name, state);
        return state;
    }

    // A restored map is one serialized Dictionary per key; RocksDB holds one entry per user key.
    private void LoadMap(RocksDbStateInfo state, RawMapState restored)
    {
        var codec = state.MapCodec!;
        using var batch = new WriteBatch();
        foreach (var (keyGroup, entries) in restored.Groups)
        {
            foreach (var (key, map) in entries)
            {
                var prefix = RocksDbKeys.MapPrefix(keyGroup, key);
                foreach (var (userKey, value) in codec.Split(map))
                {
                    batch.Put(RocksDbKeys.MapKey(prefix, userKey), value, state.ColumnFamily);
                }

                if (batch.Count() >= RestoreBatchSize)
                {
                    _db.Write(batch, _writeOptions);
                    batch.Clear();
                }
            }
        }

        _db.Write(batch, _writeOptions);
    }

    private void RememberUploads(long checkpointId, Dictionary<string, NativeStateFile> files)
    {
        lock (_uploadsLock)
        {
            _uploads[checkpointId] = files;
            while (_uploads.Count > MaxRememberedCheckpoints)
            {
                _uploads.Remove(_uploads.Keys.First());
            }
        }
    }

    private void ReplaceDatabase(string directory, List<(string Name, StateKind Kind)> states)
    {
        _cache.Clear();
        _db.Dispose();
        TryDeleteWorkingDirectory();
        Directory.Move(directory, WorkingDirectory);
        var families = new ColumnFamilies(_columnFamilyOptions);
        foreach (var (name, _) in states)
        {
            families.Add(ColumnFamilyPrefix + name, _columnFamilyOptions);
        }

        _db = RocksDatabase.Open(_dbOptions, WorkingDirectory, families);
        foreach (var (name, kind) in states)
        {
            _states.Add(name, new RocksDbStateInfo(name, kind, _db.GetColumnFamily(ColumnFamilyPrefix + name)));
        }
    }

    private void CopyOwnedKeyGroups(KeyedStateSnapshot snapshot, string directory, List<(string Name, StateKind Kind)> states)
    {
        var first = Math.Max(snapshot.KeyGroupStart, KeyGroupRange.Start);
        var last = Math.Min(snapshot.KeyGroupEnd, KeyGroupRange.End);
        if (first > last)
        {
            return;
        }

        var families = new ColumnFamilies(_columnFamilyOptions);
        foreach (var (name, _) in states)
        {
            families.Add(ColumnFamilyPrefix + name, _columnFamilyOptions);
        }

        using var source = RocksDatabase.OpenReadOnly(_dbOptions, directory, families, false);
        var readOptions = new ReadOptions()
            .SetFillCache(false)
            .SetIterateLowerBound(RocksDbKeys.KeyGroupPrefix(first))
            .SetIterateUpperBound(RocksDbKeys.KeyGroupPrefix(last + 1));
        using var batch = new WriteBatch();
        foreach (var (name, kind) in states)
        {
            if (!_states.TryGetValue(name, out var target))
            {
                target = CreateState(name, kind);
            }
            else if (target.Kind != kind)
            {
                throw new CorruptCheckpointException("(keyed state)", $"state '{name}' is {target.Kind} in one snapshot and {kind} in another.");
            }

            using var iterator = source.NewIterator(source.GetColumnFamily(ColumnFamilyPrefix + name), readOptions);
            for (iterator.SeekToFirst(); iterator.Valid(); iterator.Next())
            {
                batch.Put(iterator.Key(), iterator.Value(), target.ColumnFamily);
                if (batch.Count() >= RestoreBatchSize)
                {
                    _db.Write(batch, _writeOptions);
                    batch.Clear();
                }
            }
        }

        _db.Write(batch, _writeOptions);
        GC.KeepAlive(readOptions);
    }

    private void ReleaseLease()
    {
        lock (_lifetimeLock)
        {
            _leases--;
            if (!_disposed || _leases > 0)
            {
                return;
            }
        }

        Close();
    }

    private void Close()
    {
        _db.Dispose();
        TryDeleteWorkingDirectory();
    }

    private void TryDeleteWorkingDirectory()
    {
        try
        {
            Directory.Delete(WorkingDirectory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: the directory holds nothing durable, and the next start uses a new one.
        }
    }

    /// <summary>Restored map entries (key bytes, serialized dictionary) per key group, kept until the state is registered.</summary>
    private sealed record RawMapState(Dictionary<int, List<(byte[] Key, byte[] Value)>> Groups);

    /// <summary>One state as a snapshot sees it: a column family (read at the snapshot) or restored entries not yet loaded.</summary>
    private sealed record SnapshotSource(
        string Name,
        StateKind Kind,
        ColumnFamilyHandle? ColumnFamily,
        IMapStateCodec? MapCodec,
        Dictionary<int, List<(byte[] Key, byte[] Value)>>? Raw);

    private sealed class Frozen(RocksDbKeyedStateBackend<TKey> backend, RocksDbSharp.Snapshot snapshot, List<SnapshotSource> sources) : IKeyedStateSnapshot
    {
        private readonly Lock _gate = new();
        private int _writers;
        private bool _disposed;

        public KeyGroupRange KeyGroupRange => backend.KeyGroupRange;

        public void WriteTo(Stream destination)
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                _writers++;
            }

            try
            {
                WriteFrozen(destination);
            }
            finally
            {
                bool release;
                lock (_gate)
                {
                    _writers--;
                    release = _disposed && _writers == 0;
                }

                if (release)
                {
                    Release();
                }
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }

                _disposed = true;
                if (_writers > 0)
                {
                    return;
                }
            }

            Release();
        }

        private void Release()
        {
            snapshot.Dispose();
            backend.ReleaseLease();
        }

        private void WriteFrozen(Stream destination)
        {
            var range = backend.KeyGroupRange;
            var readOptions = new ReadOptions()
                .SetSnapshot(snapshot)
                .SetFillCache(false)
                .SetIterateLowerBound(RocksDbKeys.KeyGroupPrefix(range.Start))
                .SetIterateUpperBound(RocksDbKeys.KeyGroupPrefix(range.End + 1));
            var iterators = new Iterator?[sources.Count];
            try
            {
                // The database stays open while this snapshot holds its lease, even if the backend was disposed.
                KeyedStateFile.Write(destination, backend._maxParallelism, range, [.. sources.Select(s => (s.Name, s.Kind))], (index, keyGroup) =>
                {
                    var source = sources[index];
                    if (source.Raw is { } raw)
                    {
                        return raw.GetValueOrDefault(keyGroup) ?? [];
                    }

                    var iterator = iterators[index] ??= backend._db.NewIterator(source.ColumnFamily!, readOptions);
                    return source.Kind == StateKind.Map
                        ? ReadMapEntries(iterator, keyGroup, source.MapCodec!)
                        : ReadEntries(iterator, keyGroup);
                });
            }
            finally
            {
                foreach (var iterator in iterators)
                {
                    iterator?.Dispose();
                }

                GC.KeepAlive(readOptions);
            }
        }

        // Value, list, reducing and aggregating states: the file entry is the RocksDB entry without the key group.
        private static List<(byte[] Key, byte[] Value)> ReadEntries(Iterator iterator, int keyGroup)
        {
            var entries = new List<(byte[] Key, byte[] Value)>();
            for (iterator.Seek(RocksDbKeys.KeyGroupPrefix(keyGroup)); iterator.Valid(); iterator.Next())
            {
                var key = iterator.GetKeySpan();
                if (RocksDbKeys.KeyGroupOf(key) != keyGroup)
                {
                    break;
                }

                entries.Add((key[RocksDbKeys.KeyGroupPrefixLength..].ToArray(), iterator.Value()));
            }

            return entries;
        }

        // Map state: the adjacent entries of one key become one serialized dictionary, as the heap backend writes it.
        private static List<(byte[] Key, byte[] Value)> ReadMapEntries(Iterator iterator, int keyGroup, IMapStateCodec codec)
        {
            var entries = new List<(byte[] Key, byte[] Value)>();
            var map = new List<(byte[] UserKey, byte[] Value)>();
            byte[]? prefix = null;
            for (iterator.Seek(RocksDbKeys.KeyGroupPrefix(keyGroup)); iterator.Valid(); iterator.Next())
            {
                var key = iterator.GetKeySpan();
                if (RocksDbKeys.KeyGroupOf(key) != keyGroup)
                {
                    break;
                }

                var prefixLength = RocksDbKeys.MapPrefixLength(key);
                if (prefix is null || !key[..prefixLength].SequenceEqual(prefix))
                {
                    Flush();
                    prefix = key[..prefixLength].ToArray();
                }

                map.Add((key[prefixLength..].ToArray(), iterator.Value()));
            }

            Flush();
            return entries;

            void Flush()
            {
                if (prefix is not null && map.Count > 0)
                {
                    entries.Add((prefix[RocksDbKeys.MapPrefixHeaderLength..], codec.Join(map)));
                    map.Clear();
                }
            }
        }
    }
}

/// <summary>A state registered in (or restored into) a backend: its kind, column family and value type.</summary>
internal sealed class RocksDbStateInfo(string name, StateKind kind, ColumnFamilyHandle columnFamily)
{
    public string Name { get; } = name;

    public StateKind Kind { get; } = kind;

    public ColumnFamilyHandle ColumnFamily { get; } = columnFamily;

    /// <summary>
    /// The type the heap backend would store per key (<c>T</c>, <c>List&lt;T&gt;</c>, <c>Dictionary&lt;UK, UV&gt;</c>,
    /// the accumulator); <c>null</c> for a restored state that was not registered yet.
    /// </summary>
    public Type? ValueType { get; set; }

    /// <summary>Converts between one key's map entries and its serialized dictionary; set for registered map states.</summary>
    public IMapStateCodec? MapCodec { get; set; }
}

/// <summary>Converts between the per-user-key entries of one key's map in RocksDB and its serialized dictionary in snapshots.</summary>
internal interface IMapStateCodec
{
    /// <summary>The (serialized user key, serialized value) entries of a serialized <c>Dictionary&lt;UK, UV&gt;</c>.</summary>
    IEnumerable<(byte[] UserKey, byte[] Value)> Split(byte[] serializedMap);

    /// <summary>The serialized <c>Dictionary&lt;UK, UV&gt;</c> of (serialized user key, serialized value) entries.</summary>
    byte[] Join(IReadOnlyList<(byte[] UserKey, byte[] Value)> entries);
}

internal sealed class MapStateCodec<TUserKey, TValue>(Serializer serializer) : IMapStateCodec
    where TUserKey : notnull
{
    private readonly Serializer<TUserKey> _userKeys = serializer.GetSerializer<TUserKey>();
    private readonly Serializer<TValue> _values = serializer.GetSerializer<TValue>();
    private readonly Serializer<Dictionary<TUserKey, TValue>> _maps = serializer.GetSerializer<Dictionary<TUserKey, TValue>>();

    public IEnumerable<(byte[] UserKey, byte[] Value)> Split(byte[] serializedMap)
    {
        foreach (var (key, value) in _maps.Deserialize(serializedMap)!)
        {
            yield return (_userKeys.SerializeToArray(key), _values.SerializeToArray(value));
        }
    }

    public byte[] Join(IReadOnlyList<(byte[] UserKey, byte[] Value)> entries)
    {
        var map = new Dictionary<TUserKey, TValue>(entries.Count);
        foreach (var (key, value) in entries)
        {
            map[_userKeys.Deserialize(key)!] = _values.Deserialize(value)!;
        }

        return _maps.SerializeToArray(map);
    }
}
