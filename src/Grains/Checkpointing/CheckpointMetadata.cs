using System.Text.Json.Serialization;

namespace Platform.Checkpointing;

/// <summary>
/// A reference to a file written for a checkpoint: where it is, how long it is, and the checksum of its bytes.
/// Storage held in memory carries the bytes inline instead of a location.
/// </summary>
[GenerateSerializer, Immutable, Alias("platform.StateHandle")]
public sealed record StateHandle
{
    /// <summary>The file's path relative to the job's checkpoint directory (e.g. <c>chk-7/1-0-count.state</c>).</summary>
    [Id(0)] public required string Path { get; init; }

    /// <summary>The file's length in bytes.</summary>
    [Id(1)] public required long Size { get; init; }

    /// <summary>The XxHash64 of the file's bytes.</summary>
    [Id(2)] public required ulong Checksum { get; init; }

    /// <summary>The bytes themselves, for in-memory storage.</summary>
    [Id(3)] [JsonIgnore] public byte[]? Inline { get; init; }
}

/// <summary>
/// The keyed state of one operator subtask: the key groups it held and either one file in the portable format
/// (<see cref="Handle"/>: full checkpoints, any backend) or a backend's native files (<see cref="Native"/>:
/// RocksDB's incremental checkpoints).
/// </summary>
[GenerateSerializer, Immutable, Alias("platform.KeyedStateSnapshot")]
public sealed record KeyedStateSnapshot
{
    /// <summary>The first key group in the snapshot.</summary>
    [Id(0)] public required int KeyGroupStart { get; init; }

    /// <summary>The last key group in the snapshot (inclusive).</summary>
    [Id(1)] public required int KeyGroupEnd { get; init; }

    /// <summary>The file in the portable keyed-state format, for a full snapshot.</summary>
    [Id(2)] public StateHandle? Handle { get; init; }

    /// <summary>The backend's native files, for an incremental snapshot.</summary>
    [Id(3)] public NativeKeyedState? Native { get; init; }

    /// <summary>The full size of the snapshot: every file it references.</summary>
    [JsonIgnore] public long Size => Handle?.Size ?? Native?.Files.Sum(f => f.Handle.Size) ?? 0;

    /// <summary>The bytes checkpoint <paramref name="checkpointId"/> wrote for this snapshot (files shared with earlier checkpoints excluded).</summary>
    public long SizeWrittenBy(long checkpointId) =>
        Handle?.Size ?? Native?.Files.Where(f => f.WrittenBy == checkpointId).Sum(f => f.Handle.Size) ?? 0;

    /// <summary>The shared files (those under <c>shared/</c>) the snapshot references.</summary>
    [JsonIgnore] public IEnumerable<NativeStateFile> SharedFiles => Native?.Files.Where(f => f.IsShared) ?? [];
}

/// <summary>
/// A backend's own files of an incremental snapshot (Flink's IncrementalRemoteKeyedStateHandle): immutable data files
/// shared between checkpoints, plus the files private to this one, and the states they hold.
/// </summary>
[GenerateSerializer, Immutable, Alias("platform.NativeKeyedState")]
public sealed record NativeKeyedState
{
    /// <summary>The backend that wrote the files and alone can read them (<c>rocksdb</c>).</summary>
    [Id(0)] public required string Backend { get; init; }

    /// <summary>The states in the files: name and kind.</summary>
    [Id(1)] public required List<NativeStateInfo> States { get; init; }

    /// <summary>Every file of the snapshot.</summary>
    [Id(2)] public required List<NativeStateFile> Files { get; init; }
}

/// <summary>One state held in a native snapshot.</summary>
[GenerateSerializer, Immutable, Alias("platform.NativeStateInfo")]
public sealed record NativeStateInfo
{
    /// <summary>The state's name.</summary>
    [Id(0)] public required string Name { get; init; }

    /// <summary>Its kind (Value, List, Map, Reducing, Aggregating).</summary>
    [Id(1)] public required string Kind { get; init; }
}

/// <summary>One file of a native snapshot.</summary>
[GenerateSerializer, Immutable, Alias("platform.NativeStateFile")]
public sealed record NativeStateFile
{
    /// <summary>The directory of checkpoint storage that holds files shared between checkpoints.</summary>
    public const string SharedDirectory = "shared";

    /// <summary>The file's name in the backend's working directory (e.g. <c>000012.sst</c>).</summary>
    [Id(0)] public required string LocalName { get; init; }

    /// <summary>Where storage holds it.</summary>
    [Id(1)] public required StateHandle Handle { get; init; }

    /// <summary>The checkpoint that wrote it to storage; a later checkpoint that references it shares it.</summary>
    [Id(2)] public required long WrittenBy { get; init; }

    /// <summary>Whether the file lives in the job's shared directory (reference-counted across checkpoints) rather than in one checkpoint's own.</summary>
    [JsonIgnore] public bool IsShared => Handle.Path.StartsWith(SharedDirectory + "/", StringComparison.Ordinal);
}

/// <summary>What one operator of a subtask contributed to a checkpoint.</summary>
[GenerateSerializer, Immutable, Alias("platform.OperatorSnapshot")]
public sealed record OperatorSnapshot
{
    /// <summary>The operator's uid: state is matched to operators by uid.</summary>
    [Id(0)] public required string OperatorUid { get; init; }

    /// <summary>For a source: the offset its reader resumes from.</summary>
    [Id(1)] public long? SourceOffset { get; init; }

    /// <summary>For a keyed operator: its keyed state.</summary>
    [Id(2)] public KeyedStateSnapshot? KeyedState { get; init; }

    /// <summary>
    /// For a two-phase-commit sink: what it pre-committed and has not committed yet, per checkpoint, oldest first.
    /// A restore commits them again (commits are idempotent) before the sink writes anything.
    /// </summary>
    [Id(3)] public List<SinkCommittables>? Committables { get; init; }

    /// <summary>For a source of several splits: each split's position (see <c>ISplitPositionsReader</c>).</summary>
    [Id(4)] public Dictionary<string, string>? SplitPositions { get; init; }

    /// <summary>Whether the snapshot holds anything to restore.</summary>
    [JsonIgnore] public bool HasState => SourceOffset is not null || KeyedState is not null || Committables is { Count: > 0 } || SplitPositions is not null;
}

/// <summary>
/// The committables a two-phase-commit sink subtask pre-committed at one checkpoint's barrier (or at its end of input),
/// serialized with the Orleans serializer as the sink's committable type.
/// </summary>
[GenerateSerializer, Immutable, Alias("platform.SinkCommittables")]
public sealed record SinkCommittables
{
    /// <summary>The checkpoint at whose barrier they were pre-committed.</summary>
    [Id(0)] public required long CheckpointId { get; init; }

    /// <summary>How many committables <see cref="Payload"/> holds.</summary>
    [Id(1)] public required int Count { get; init; }

    /// <summary>The committables, an array of the sink's committable type.</summary>
    [Id(2)] public required byte[] Payload { get; init; }
}

/// <summary>What one subtask contributed to a checkpoint.</summary>
[GenerateSerializer, Immutable, Alias("platform.SubtaskSnapshot")]
public sealed record SubtaskSnapshot
{
    /// <summary>The index of the task in the execution plan.</summary>
    [Id(0)] public required int TaskIndex { get; init; }

    /// <summary>The subtask's index.</summary>
    [Id(1)] public required int SubtaskIndex { get; init; }

    /// <summary>One entry per operator of the task's chain that has state.</summary>
    [Id(2)] public required List<OperatorSnapshot> Operators { get; init; }

    /// <summary>
    /// The paths of the files under <c>shared/</c> it references: an incremental snapshot's shared files, and the
    /// portable file of a finished subtask's final snapshot, which every later checkpoint includes.
    /// </summary>
    public IEnumerable<string> SharedPaths() =>
        Operators.Select(o => o.KeyedState).OfType<KeyedStateSnapshot>()
            .SelectMany(k => k.SharedFiles.Select(f => f.Handle.Path).Concat(k.Handle is { } h && h.Path.StartsWith(NativeStateFile.SharedDirectory + "/", StringComparison.Ordinal) ? [h.Path] : []));
}

/// <summary>
/// The commit record of a checkpoint, written last as <c>chk-{id}/_metadata</c>: a checkpoint exists only once this
/// file is complete.
/// </summary>
[GenerateSerializer, Immutable, Alias("platform.CheckpointMetadata")]
public sealed record CheckpointMetadata
{
    /// <summary>The format version of this record.</summary>
    public const int CurrentVersion = 1;

    /// <summary>The format version.</summary>
    [Id(0)] public int Version { get; init; } = CurrentVersion;

    /// <summary>The job.</summary>
    [Id(1)] public required string JobId { get; init; }

    /// <summary>The checkpoint's id.</summary>
    [Id(2)] public required long CheckpointId { get; init; }

    /// <summary>When it was triggered.</summary>
    [Id(3)] public required DateTimeOffset TriggeredAt { get; init; }

    /// <summary>When it completed.</summary>
    [Id(4)] public required DateTimeOffset CompletedAt { get; init; }

    /// <summary>The job's max parallelism (the key groups the state is sharded into).</summary>
    [Id(5)] public required int MaxParallelism { get; init; }

    /// <summary>Every subtask's contribution.</summary>
    [Id(6)] public required List<SubtaskSnapshot> Subtasks { get; init; }

    /// <summary>The total size of the checkpoint's state files.</summary>
    public long StateSize() => Subtasks.SelectMany(s => s.Operators).Sum(o => o.KeyedState?.Size ?? 0);

    /// <summary>The paths of the shared files the checkpoint references.</summary>
    public IEnumerable<string> SharedPaths() => Subtasks.SelectMany(s => s.SharedPaths());
}

/// <summary>A checkpoint or state file is damaged: the message names the file and what is wrong.</summary>
[GenerateSerializer, Alias("platform.CorruptCheckpointException")]
public sealed class CorruptCheckpointException(string path, string problem)
    : Exception($"Checkpoint file '{path}' is corrupt: {problem}")
{
    /// <summary>The damaged file.</summary>
    [Id(0)] public string FilePath { get; } = path;
}
