using Platform.Checkpointing;
using Platform.Storage;

namespace Platform.State.RocksDb;

/// <summary>
/// An incremental snapshot of a RocksDB backend: a RocksDB checkpoint directory (hard links to the live SST files and
/// copies of the small manifest files), taken in the synchronous part. <see cref="WriteToAsync"/> uploads the SST
/// files the base checkpoint did not hold to the storage's shared directory, references the others, and writes the
/// remaining files as files private to this checkpoint (Flink's RocksIncrementalSnapshotStrategy).
/// </summary>
internal sealed class RocksDbIncrementalSnapshot(
    KeyGroupRange keyGroupRange,
    string directory,
    List<NativeStateInfo> states,
    Dictionary<string, NativeStateFile>? baseFiles,
    Action<long, Dictionary<string, NativeStateFile>> rememberUploads) : IKeyedStateSnapshot
{
    /// <summary>The name recorded in <see cref="NativeKeyedState.Backend"/>.</summary>
    public const string BackendName = "rocksdb";

    private const string SstExtension = ".sst";
    private int _disposed;

    public KeyGroupRange KeyGroupRange { get; } = keyGroupRange;

    public void WriteTo(Stream destination) => throw new InvalidOperationException(
        "An incremental RocksDB snapshot has no portable form; take a full snapshot (a savepoint) for the portable format.");

    public async Task<KeyedStateSnapshot> WriteToAsync(SnapshotTarget target, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var files = new List<NativeStateFile>();
        var shared = new Dictionary<string, NativeStateFile>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(path);
            if (name.EndsWith(SstExtension, StringComparison.Ordinal) && baseFiles?.GetValueOrDefault(name) is { } existing)
            {
                files.Add(existing);
                shared[name] = existing;
                continue;
            }

            await using var content = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1024 * 1024, FileOptions.Asynchronous | FileOptions.SequentialScan);
            if (name.EndsWith(SstExtension, StringComparison.Ordinal))
            {
                // SST files never change: a unique name in the shared directory lets later checkpoints reference it.
                var handle = await target.Storage.WriteSharedStateAsync(target.JobId, $"{target.FilePrefix}-{Guid.NewGuid():N}-{name}", content, cancellationToken);
                var file = new NativeStateFile { LocalName = name, Handle = handle, WrittenBy = target.CheckpointId };
                files.Add(file);
                shared[name] = file;
            }
            else
            {
                var handle = await target.Storage.WriteStateAsync(target.JobId, target.CheckpointId, $"{target.FilePrefix}-{name}", content, cancellationToken);
                files.Add(new NativeStateFile { LocalName = name, Handle = handle, WrittenBy = target.CheckpointId });
            }
        }

        rememberUploads(target.CheckpointId, shared);
        return new KeyedStateSnapshot
        {
            KeyGroupStart = KeyGroupRange.Start,
            KeyGroupEnd = KeyGroupRange.End,
            Native = new NativeKeyedState { Backend = BackendName, States = states, Files = files },
        };
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            TryDeleteDirectory(directory);
        }
    }

    /// <summary>The states of a native snapshot with their kinds.</summary>
    /// <exception cref="CorruptCheckpointException">A kind is unknown or a name repeats.</exception>
    public static List<(string Name, StateKind Kind)> ParseStates(NativeKeyedState native, long checkpointId)
    {
        var states = new List<(string, StateKind)>();
        foreach (var state in native.States)
        {
            if (!Enum.TryParse<StateKind>(state.Kind, out var kind) || !Enum.IsDefined(kind))
            {
                throw new CorruptCheckpointException($"checkpoint {checkpointId} (keyed state)", $"state '{state.Name}' has the unknown kind '{state.Kind}'.");
            }

            states.Add((state.Name, kind));
        }

        if (states.Select(s => s.Item1).Distinct(StringComparer.Ordinal).Count() != states.Count)
        {
            throw new CorruptCheckpointException($"checkpoint {checkpointId} (keyed state)", "a state name appears twice.");
        }

        return states;
    }

    /// <summary>Downloads a native snapshot's files into a new <paramref name="target"/> directory, verifying each.</summary>
    /// <exception cref="CorruptCheckpointException">A file is missing or damaged, or a name is not a plain file name.</exception>
    public static async Task DownloadAsync(NativeKeyedState native, string target, ICheckpointStorage storage, string jobId, CancellationToken cancellationToken)
    {
        TryDeleteDirectory(target);
        Directory.CreateDirectory(target);
        foreach (var file in native.Files)
        {
            if (file.LocalName.Length == 0 || file.LocalName != Path.GetFileName(file.LocalName) || file.LocalName is "." or "..")
            {
                throw new CorruptCheckpointException(file.Handle.Path, $"its local name '{file.LocalName}' is not a plain file name.");
            }

            await using var destination = new FileStream(Path.Combine(target, file.LocalName), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1024 * 1024, FileOptions.Asynchronous);
            await storage.ReadStateAsync(jobId, file.Handle, destination, cancellationToken);
        }
    }

    /// <summary>Deletes a directory and its files, if it is there; failures are ignored (it holds nothing durable).</summary>
    public static void TryDeleteDirectory(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }
}
