namespace Platform.State.RocksDb;

/// <summary>Settings of the RocksDB keyed state backend (Flink's <c>EmbeddedRocksDBStateBackend</c> options).</summary>
public sealed class RocksDbStateOptions
{
    /// <summary>The default block cache size: 64 MiB.</summary>
    public const long DefaultBlockCacheSize = 64L * 1024 * 1024;

    /// <summary>The default write buffer (memtable) size: 16 MiB.</summary>
    public const long DefaultWriteBufferSize = 16L * 1024 * 1024;

    /// <summary>
    /// The local directory under which each backend (one per operator subtask) creates its own working directory
    /// for its RocksDB instance. Required.
    /// </summary>
    /// <remarks>
    /// The working directory is deleted when the backend is disposed. It holds no durable data: checkpoints do (the
    /// write-ahead log is off), so a fast local disk is the right place, not a shared mount.
    /// </remarks>
    public string LocalDirectory { get; set; } = "";

    /// <summary>The size of the LRU block cache shared by the backend's column families (default 64 MiB).</summary>
    /// <remarks>Reads of state not in a memtable or the cache go to the SST files on disk.</remarks>
    public long BlockCacheSize { get; set; } = DefaultBlockCacheSize;

    /// <summary>The size of one memtable per column family (state) before it is flushed to disk (default 16 MiB).</summary>
    public long WriteBufferSize { get; set; } = DefaultWriteBufferSize;

    /// <summary>The default budget of the write-back state cache: 32 MiB.</summary>
    public const long DefaultStateCacheSize = 32L * 1024 * 1024;

    /// <summary>
    /// The budget of the backend's write-back cache of serialized entries in front of RocksDB (default 32 MiB; 0 turns
    /// it off). Hot keys are read and written in memory and reach RocksDB at the next flush: before each checkpoint,
    /// prefix scan, or when the budget is exceeded. The cache lives on the managed heap (count it against a
    /// <c>DOTNET_GCHeapHardLimit</c>), once per keyed operator subtask.
    /// </summary>
    public long StateCacheSize { get; set; } = DefaultStateCacheSize;

    /// <summary>How many memtables a column family may hold, including those being flushed (default 2).</summary>
    public int MaxWriteBufferNumber { get; set; } = 2;

    /// <summary>
    /// Whether checkpoints are incremental by default (default on): a checkpoint uploads only the SST files the
    /// storage does not hold yet, and shares the others with earlier checkpoints. Off, every checkpoint is a full
    /// snapshot in the portable format. A job can choose with <c>CheckpointingSettings.Incremental</c>.
    /// </summary>
    public bool IncrementalCheckpoints { get; set; } = true;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad setting.</summary>
    /// <param name="settingPrefix">How settings are named in the message: <c>RocksDbStateOptions.</c>, or a configuration path such as <c>Platform:RocksDb:</c>.</param>
    internal void Validate(string settingPrefix = nameof(RocksDbStateOptions) + ".")
    {
        if (string.IsNullOrWhiteSpace(LocalDirectory))
        {
            throw new ArgumentException($"{settingPrefix}{nameof(LocalDirectory)} is empty; set it to a local directory the backend can write.");
        }

        if (BlockCacheSize < 0)
        {
            throw new ArgumentException($"{settingPrefix}{nameof(BlockCacheSize)} is {BlockCacheSize}; it must be zero or a positive number of bytes.");
        }

        if (StateCacheSize < 0)
        {
            throw new ArgumentException($"{settingPrefix}{nameof(StateCacheSize)} is {StateCacheSize}; it must be zero (off) or a positive number of bytes.");
        }

        if (WriteBufferSize < 64 * 1024)
        {
            throw new ArgumentException($"{settingPrefix}{nameof(WriteBufferSize)} is {WriteBufferSize}; it must be at least 64 KiB.");
        }

        if (MaxWriteBufferNumber < 2)
        {
            throw new ArgumentException($"{settingPrefix}{nameof(MaxWriteBufferNumber)} is {MaxWriteBufferNumber}; it must be at least 2 (one memtable is written while another is flushed).");
        }
    }
}
