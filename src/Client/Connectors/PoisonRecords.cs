namespace Platform.Connectors;

/// <summary>What a job does with a record that a source cannot read or an operator throws on.</summary>
public enum PoisonRecordAction
{
    /// <summary>The subtask fails, naming the operator and, at a source, the split and offset (the job restarts per its restart strategy).</summary>
    Fail,

    /// <summary>The record goes to the dead-letter output with the error, is counted, and processing goes on.</summary>
    Skip,
}

/// <summary>
/// A job's policy for poison records: records a source cannot deserialize (it throws
/// <see cref="PoisonRecordException"/>) and records on which a user function throws.
/// </summary>
/// <remarks>
/// A skipped record may have had part of its effect: a flat-map may have emitted some outputs, a keyed function may
/// have updated state before it threw. Dead letters are written as JSON lines, one file per operator and subtask, under
/// <c>{DeadLetterDirectory}/{jobId}/</c>; they are at-least-once (a restart may write a record again).
/// </remarks>
[GenerateSerializer, Immutable, Alias("platform.PoisonRecordPolicy")]
public sealed record PoisonRecordPolicy
{
    /// <summary>Fail (the default) or skip to the dead-letter output.</summary>
    [Id(0)] public PoisonRecordAction Action { get; init; } = PoisonRecordAction.Fail;

    /// <summary>Where skipped records go, as the silos see it; required with <see cref="PoisonRecordAction.Skip"/>.</summary>
    [Id(1)] public string? DeadLetterDirectory { get; init; }

    /// <summary>How many records one subtask may skip before it fails after all; <c>null</c> for no limit.</summary>
    [Id(2)] public long? MaxSkippedPerSubtask { get; init; }

    /// <summary>Skips poison records into <paramref name="deadLetterDirectory"/>.</summary>
    public static PoisonRecordPolicy SkipTo(string deadLetterDirectory, long? maxSkippedPerSubtask = null) =>
        new() { Action = PoisonRecordAction.Skip, DeadLetterDirectory = deadLetterDirectory, MaxSkippedPerSubtask = maxSkippedPerSubtask };
}

/// <summary>
/// Thrown by a source reader that cannot read a record (its bytes do not deserialize). The reader must have moved
/// past the record before it throws, so that skipping it is possible; it names where the record is.
/// </summary>
public sealed class PoisonRecordException : Exception
{
    /// <summary>Creates the exception for the record at <paramref name="offset"/> of <paramref name="split"/>.</summary>
    public PoisonRecordException(string split, string offset, string? rawRecord, string message, Exception? inner = null)
        : base(message, inner)
    {
        Split = split;
        Offset = offset;
        RawRecord = rawRecord;
    }

    /// <summary>The split the record is in (a stream, a partition, a file).</summary>
    public string Split { get; }

    /// <summary>Where the record is in its split (an entry id, an offset).</summary>
    public string Offset { get; }

    /// <summary>The record as read, as text (for the dead-letter output), when it can be shown.</summary>
    public string? RawRecord { get; }
}
