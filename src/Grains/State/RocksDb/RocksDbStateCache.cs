using RocksDbSharp;

namespace Platform.State.RocksDb;

/// <summary>
/// A bounded write-back cache of serialized entries in front of RocksDB (what Kafka Streams puts in front of its
/// RocksDB stores): reads of hot keys skip RocksDB's memtable and SST lookups, and repeated writes to a key reach
/// RocksDB once per flush instead of once per record. Entries are flushed in one write batch before anything reads
/// RocksDB directly (prefix scans, counts, snapshots and checkpoints), and when the cache outgrows its budget, after
/// which it starts empty again, so the state still never has to fit in memory.
/// </summary>
/// <remarks>Used on the task's thread only, like the state handles.</remarks>
internal sealed class RocksDbStateCache(long capacityBytes)
{
    // Per entry: the dictionary slot, the Entry object and the arrays' headers.
    private const int EntryOverhead = 96;

    private readonly Dictionary<ColumnFamilyHandle, Dictionary<byte[], Entry>> _families = new(ReferenceEqualityComparer.Instance);
    private long _bytes;

    // The entries written since the last flush, so that a flush costs what changed, not what is cached: timers and
    // prefix scans flush often (before each scan), and a cache of 32 MiB holds hundreds of thousands of clean entries.
    private readonly List<(ColumnFamilyHandle Family, Entry Entry)> _dirty = [];

    // The entry last looked up: a read followed by a write of the same key (the usual read-modify-write of a state)
    // finds it without hashing the key again. Keys are compared by reference, which holds for the current key's bytes.
    private ColumnFamilyHandle? _lastFamily;
    private byte[]? _lastKey;
    private Entry? _lastEntry;

    /// <summary>Whether the cache holds anything at all (a zero budget turns it off).</summary>
    public bool Enabled => capacityBytes > 0;

    // Incremented whenever the cache empties, which invalidates every slot.
    private int _generation;

    /// <summary>
    /// Looks a key up: <c>true</c> with the value (or <c>null</c> for a key known to be absent) when cached. A
    /// <paramref name="slot"/> kept with the key finds its entry again without hashing the key.
    /// </summary>
    public bool TryGet(ColumnFamilyHandle family, byte[] key, Slot? slot, out byte[]? value)
    {
        if (slot is not null && slot.Generation == _generation && ReferenceEquals(slot.Family, family))
        {
            value = slot.Entry!.Value;
            return true;
        }

        if (_families.TryGetValue(family, out var entries) && entries.TryGetValue(key, out var entry))
        {
            (_lastFamily, _lastKey, _lastEntry) = (family, key, entry);
            slot?.Remember(_generation, family, entry);
            value = entry.Value;
            return true;
        }

        value = null;
        return false;
    }

    /// <summary>Caches what RocksDB returned for a key (<c>null</c>: absent).</summary>
    public void AddClean(ColumnFamilyHandle family, byte[] key, byte[]? value, Slot? slot, Action<WriteBatch> write) =>
        Set(family, key, value, dirty: false, slot, write);

    /// <summary>Records a write (<c>null</c>: a delete) to reach RocksDB at the next flush.</summary>
    public void Write(ColumnFamilyHandle family, byte[] key, byte[]? value, Slot? slot, Action<WriteBatch> write) =>
        Set(family, key, value, dirty: true, slot, write);

    /// <summary>Writes every pending change to RocksDB in one batch; cached values stay.</summary>
    public void Flush(Action<WriteBatch> write)
    {
        if (_dirty.Count == 0)
        {
            return;
        }

        using var batch = new WriteBatch();
        foreach (var (family, entry) in _dirty)
        {
            if (entry.Value is null)
            {
                batch.Delete(entry.Key, family);
            }
            else
            {
                batch.Put(entry.Key, entry.Value, family);
            }

            entry.Dirty = false;
        }

        write(batch);
        _dirty.Clear();
    }

    /// <summary>Forgets everything without writing it (the database was replaced).</summary>
    public void Clear()
    {
        _families.Clear();
        _generation++;
        _bytes = 0;
        _dirty.Clear();
        (_lastFamily, _lastKey, _lastEntry) = (null, null, null);
    }

    private void Set(ColumnFamilyHandle family, byte[] key, byte[]? value, bool dirty, Slot? slot, Action<WriteBatch> write)
    {
        if (!Enabled)
        {
            return;
        }

        Entry? entry = null;
        Dictionary<byte[], Entry>? entries = null;
        if (slot is not null && slot.Generation == _generation && ReferenceEquals(slot.Family, family))
        {
            entry = slot.Entry;
        }
        else if (!(ReferenceEquals(key, _lastKey) && ReferenceEquals(family, _lastFamily) && (entry = _lastEntry) is not null))
        {
            if (!_families.TryGetValue(family, out entries))
            {
                _families[family] = entries = new Dictionary<byte[], Entry>(ByteArrayComparer.Instance);
            }

            entries.TryGetValue(key, out entry);
        }

        if (entry is not null)
        {
            _bytes += (value?.Length ?? 0) - (entry.Value?.Length ?? 0);
            entry.Value = value;
            if (dirty && !entry.Dirty)
            {
                entry.Dirty = true;
                _dirty.Add((family, entry));
            }
        }
        else
        {
            entry = new Entry { Key = key, Value = value, Dirty = dirty };
            entries![key] = entry;
            _bytes += key.Length + (value?.Length ?? 0) + EntryOverhead;
            if (dirty)
            {
                _dirty.Add((family, entry));
            }
        }

        (_lastFamily, _lastKey, _lastEntry) = (family, key, entry);
        slot?.Remember(_generation, family, entry);
        if (_bytes > capacityBytes)
        {
            // Over budget: write back and start empty (simpler than LRU, and a flush is one sequential batch).
            Flush(write);
            Clear();
        }
    }

    /// <summary>A cached entry.</summary>
    internal sealed class Entry
    {
        /// <summary>The key as the cache's dictionary holds it.</summary>
        public required byte[] Key;
        public byte[]? Value;
        public bool Dirty;
    }

    /// <summary>Where a key's entry was last found (kept with the key's bytes), valid until the cache empties.</summary>
    internal sealed class Slot
    {
        public int Generation = -1;
        public ColumnFamilyHandle? Family;
        public Entry? Entry;

        public void Remember(int generation, ColumnFamilyHandle family, Entry entry) => (Generation, Family, Entry) = (generation, family, entry);
    }

    private sealed class ByteArrayComparer : IEqualityComparer<byte[]>
    {
        public static readonly ByteArrayComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj)
        {
            var hash = new HashCode();
            hash.AddBytes(obj);
            return hash.ToHashCode();
        }
    }
}
