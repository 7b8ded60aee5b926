namespace Platform.Connectors;

/// <summary>
/// A sink whose output is exactly-once (Flink's <c>TwoPhaseCommittingSink</c>). Each parallel subtask writes into an
/// open transaction. At checkpoint n's barrier, in the synchronous part of the subtask's snapshot, the writer
/// pre-commits: it closes the transaction for writing and hands back committables, which go into checkpoint n. Once
/// checkpoint n is complete and durable, the committer commits the committables of n and of every earlier checkpoint
/// not committed yet. After a restore from checkpoint n, the committer commits n's committables again (so a commit must
/// be idempotent) and aborts every transaction of the subtask begun after n.
/// </summary>
/// <typeparam name="TIn">The record type.</typeparam>
/// <typeparam name="TCommittable">
/// What commits one pre-committed transaction (a file name, a prepared transaction's id). It is stored in checkpoints
/// with the Orleans serializer, so it needs <c>[GenerateSerializer]</c>, and it must stay readable by later versions.
/// </typeparam>
public interface ITwoPhaseCommittingSink<TIn, TCommittable> : ISinkFunction<TIn>
{
    /// <summary>Opens the writer of one subtask; its first transaction begins with the first record.</summary>
    IPrecommittingSinkWriter<TIn, TCommittable> CreatePrecommittingWriter(SinkWriterContext context);

    /// <summary>Opens the committer of one subtask, which runs beside its writer.</summary>
    ISinkCommitter<TCommittable> CreateCommitter(SinkWriterContext context);

    /// <inheritdoc />
    ISinkWriter<TIn> ISinkFunction<TIn>.CreateWriter(SinkWriterContext context) => CreatePrecommittingWriter(context);
}

/// <summary>The writer of a <see cref="ITwoPhaseCommittingSink{TIn, TCommittable}"/>.</summary>
/// <remarks>
/// <see cref="ISinkWriter{T}.FlushAsync"/> runs after every input batch and may make records durable inside the open
/// transaction, but must not make them visible to readers. <see cref="ISinkWriter{T}.FinishAsync"/> runs at the end of
/// input, before the last <see cref="PrepareCommitAsync"/>.
/// </remarks>
public interface IPrecommittingSinkWriter<in TIn, TCommittable> : ISinkWriter<TIn>
{
    /// <summary>
    /// Pre-commits the open transaction: makes its records durable but not visible, and returns what commits it; the
    /// next record begins a new transaction. Returns nothing when no record was written since the last call.
    /// </summary>
    /// <param name="checkpointId">The checkpoint the committables belong to; at the end of input, the last checkpoint the subtask took part in plus one.</param>
    /// <param name="cancellationToken">Cancelled when the subtask stops.</param>
    ValueTask<IReadOnlyList<TCommittable>> PrepareCommitAsync(long checkpointId, CancellationToken cancellationToken);
}

/// <summary>Commits what a <see cref="IPrecommittingSinkWriter{TIn, TCommittable}"/> pre-committed.</summary>
/// <remarks>
/// Commits run on the subtask's scheduler but outside its record loop, one call at a time, in checkpoint order.
/// A commit that throws is retried with a backoff; after <see cref="SinkCommitSettings.MaxCommitAttempts"/> the
/// subtask fails and the job restarts from its latest checkpoint, whose committables are committed again.
/// </remarks>
public interface ISinkCommitter<TCommittable> : IAsyncDisposable
{
    /// <summary>
    /// Commits <paramref name="committables"/> (those of one completed checkpoint). Must be idempotent: a committable
    /// that was already committed (a file already renamed, a prepared transaction already committed) is a success.
    /// </summary>
    Task CommitAsync(long checkpointId, IReadOnlyList<TCommittable> committables, CancellationToken cancellationToken);

    /// <summary>
    /// Called once when the subtask starts from a checkpoint, before its first record and after the committables of
    /// that checkpoint were committed again: aborts every transaction this subtask (this job, sink uid and subtask
    /// index) began that is not among <paramref name="recovered"/>, i.e. those begun after the checkpoint.
    /// Also called, with nothing recovered, when a subtask starts fresh, so that leftovers of an earlier run go.
    /// </summary>
    Task AbortLingeringTransactionsAsync(IReadOnlyCollection<TCommittable> recovered, CancellationToken cancellationToken);
}

/// <summary>How the runtime retries a sink's commits.</summary>
public static class SinkCommitSettings
{
    /// <summary>How often a commit is tried before the subtask fails.</summary>
    public const int MaxCommitAttempts = 5;
}
