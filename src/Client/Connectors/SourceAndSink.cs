namespace Platform.Connectors;

/// <summary>What <see cref="ISourceReader{T}.TryRead"/> found.</summary>
public enum ReadStatus
{
    /// <summary>A record was read.</summary>
    Record,

    /// <summary>No record is available right now; ask again later.</summary>
    NothingAvailable,

    /// <summary>The input is exhausted (bounded sources only).</summary>
    EndOfInput,
}

/// <summary>
/// A replayable source: each parallel subtask reads its own split and can start again from an offset it reported,
/// which is what lets a job rewind its sources to a checkpoint.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public interface ISourceFunction<T>
{
    /// <summary>Whether the source ends; a job whose sources are all bounded reaches FINISHED.</summary>
    bool IsBounded { get; }

    /// <summary>Opens the reader of one subtask's split, positioned at <see cref="SourceReaderContext.StartOffset"/>.</summary>
    ISourceReader<T> CreateReader(SourceReaderContext context);
}

/// <summary>Reads one subtask's split of a source.</summary>
public interface ISourceReader<T> : IDisposable
{
    /// <summary>Reads the next record, if one is available.</summary>
    ReadStatus TryRead(out T record);

    /// <summary>The offset of the next record to be read: starting a reader at it resumes exactly after the last record read.</summary>
    long Offset { get; }
}

/// <summary>
/// Implemented by readers of several splits, each with its own position (Flink's split state): an entry id per Redis
/// stream, an offset per Event Hubs partition or Kafka topic partition. The positions are stored in every checkpoint
/// beside <see cref="ISourceReader{T}.Offset"/>; a restored reader finds them in
/// <see cref="SourceReaderContext.RestoredSplitPositions"/>.
/// </summary>
public interface ISplitPositionsReader
{
    /// <summary>
    /// The position of each split this reader owns, keyed by split id: where a restored reader resumes, exactly after
    /// the last record it read. Text, so that a checkpoint's <c>_metadata</c> shows it.
    /// </summary>
    IReadOnlyDictionary<string, string> SplitPositions { get; }
}

/// <summary>Where a source reader runs and where it starts.</summary>
public sealed class SourceReaderContext
{
    /// <summary>The job's id.</summary>
    public required string JobId { get; init; }

    /// <summary>The source operator's name, for error messages.</summary>
    public required string OperatorName { get; init; }

    /// <summary>This subtask's index.</summary>
    public required int SubtaskIndex { get; init; }

    /// <summary>The source's parallelism.</summary>
    public required int Parallelism { get; init; }

    /// <summary>The offset to resume from; <c>null</c> to start from the beginning of the split.</summary>
    public long? StartOffset { get; init; }

    /// <summary>
    /// The split positions (<see cref="ISplitPositionsReader"/>) of every subtask of the source in the checkpoint the
    /// job restores from, so that a reader owning other splits after a change of parallelism still finds where each
    /// one stopped; <c>null</c> for a fresh start. A split missing here starts from its beginning.
    /// </summary>
    public IReadOnlyDictionary<string, string>? RestoredSplitPositions { get; init; }

    /// <summary>The silo's services.</summary>
    public required IServiceProvider Services { get; init; }
}

/// <summary>A destination for a stream's records.</summary>
public interface ISinkFunction<T>
{
    /// <summary>Opens the writer of one subtask.</summary>
    ISinkWriter<T> CreateWriter(SinkWriterContext context);
}

/// <summary>Writes one subtask's records.</summary>
public interface ISinkWriter<in T> : IAsyncDisposable
{
    /// <summary>Writes a record (it may be buffered until <see cref="FlushAsync"/>).</summary>
    void Write(T record);

    /// <summary>Makes buffered records visible; called after every input batch.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken);

    /// <summary>Called once when the input has ended, before the task reports FINISHED.</summary>
    ValueTask FinishAsync(CancellationToken cancellationToken);
}

/// <summary>Where a sink writer runs.</summary>
public sealed class SinkWriterContext
{
    /// <summary>The job's id.</summary>
    public required string JobId { get; init; }

    /// <summary>The sink's uid (stable across restarts).</summary>
    public required string OperatorUid { get; init; }

    /// <summary>The sink's name, for error messages.</summary>
    public required string OperatorName { get; init; }

    /// <summary>This subtask's index.</summary>
    public required int SubtaskIndex { get; init; }

    /// <summary>The sink's parallelism.</summary>
    public required int Parallelism { get; init; }

    /// <summary>The deployment attempt.</summary>
    public required int Attempt { get; init; }

    /// <summary>The checkpoint the subtask starts from; <c>null</c> for a fresh start.</summary>
    public long? RestoredCheckpointId { get; init; }

    /// <summary>The silo's services.</summary>
    public required IServiceProvider Services { get; init; }
}

/// <summary>
/// Implemented by functions that can check their settings on the silo at submission time (a path that must exist,
/// a directory that must be writable), so that a bad setting is a submission error rather than a task failure.
/// </summary>
public interface IValidatingFunction
{
    /// <summary>Returns one message per problem found; empty when the function can run.</summary>
    IEnumerable<string> Validate();
}

/// <summary>
/// Implemented by functions that read or write files on the silos: the paths they use, so that the silos can refuse a
/// job whose files lie outside their data roots (<c>Platform:DataRoots</c>).
/// </summary>
public interface IFileSystemFunction
{
    /// <summary>Each file or directory the function reads or writes.</summary>
    IEnumerable<string> FileSystemPaths { get; }
}

/// <summary>
/// Implemented by sink writers that want to hear when a checkpoint completed. Best effort: a notification can be
/// missed when a subtask restarts. Output that must be exactly-once comes from an
/// <see cref="ITwoPhaseCommittingSink{TIn, TCommittable}"/>, whose commits the runtime makes durable and retries.
/// </summary>
public interface ICheckpointListener
{
    /// <summary>Checkpoint <paramref name="checkpointId"/> completed on every subtask and is durable.</summary>
    void NotifyCheckpointComplete(long checkpointId);
}
