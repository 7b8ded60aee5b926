namespace Platform.Connectors;

/// <summary>
/// A pending part file of a <see cref="FileSink{T}"/>: written, flushed to disk and closed at a checkpoint's barrier,
/// still hidden under its in-progress name until the checkpoint completes and the committer renames it.
/// </summary>
/// <remarks>Stored in checkpoints: keep the ids and the alias.</remarks>
[GenerateSerializer, Alias("platform.FileCommittable")]
public sealed record FileCommittable
{
    /// <summary>The full path of the hidden in-progress file (<c>.part-{sinkUid}-{subtask}-{attempt}-{seq}.inprogress</c>).</summary>
    [Id(0)] public required string InProgressPath { get; init; }

    /// <summary>The full path the file is committed to (<c>part-{subtask}-{seq}</c>), visible to readers.</summary>
    [Id(1)] public required string FinalPath { get; init; }

    /// <summary>The file's length in bytes when it was pre-committed; a committed file of another length is not this one.</summary>
    [Id(2)] public required long Length { get; init; }
}
