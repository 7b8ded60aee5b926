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

/// <summary>The keyed state of one operator subtask: the key groups it held and the file holding them.</summary>
[GenerateSerializer, Immutable, Alias("platform.KeyedStateSnapshot")]
public sealed record KeyedStateSnapshot
{
    /// <summary>The first key group in the file.</summary>
    [Id(0)] public required int KeyGroupStart { get; init; }

    /// <summary>The last key group in the file (inclusive).</summary>
    [Id(1)] public required int KeyGroupEnd { get; init; }

    /// <summary>The file.</summary>
    [Id(2)] public required StateHandle Handle { get; init; }
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
    public long StateSize() => Subtasks.SelectMany(s => s.Operators).Sum(o => o.KeyedState?.Handle.Size ?? 0);
}

/// <summary>A checkpoint or state file is damaged: the message names the file and what is wrong.</summary>
[GenerateSerializer, Alias("platform.CorruptCheckpointException")]
public sealed class CorruptCheckpointException(string path, string problem)
    : Exception($"Checkpoint file '{path}' is corrupt: {problem}")
{
    /// <summary>The damaged file.</summary>
    [Id(0)] public string FilePath { get; } = path;
}
