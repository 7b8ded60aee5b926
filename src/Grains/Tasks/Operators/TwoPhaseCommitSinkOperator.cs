using Microsoft.Extensions.Logging;
using Orleans.Serialization;
using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Functions;

namespace Platform.Tasks.Operators;

/// <summary>
/// Runs an <see cref="ITwoPhaseCommittingSink{TIn, TCommittable}"/> (Flink's <c>SinkWriterOperator</c> and
/// <c>CommitterOperator</c> in one): records go to the writer's open transaction; at a barrier the writer pre-commits
/// and every committable not committed yet goes into the checkpoint; when a checkpoint completes, its committables and
/// all older ones are committed in id order by one commit loop on the subtask's scheduler, outside the record loop, so
/// neither records nor grain calls wait for the external system. A restore commits the restored committables again
/// and aborts the transactions begun after them before the first record.
/// </summary>
internal sealed partial class TwoPhaseCommitSinkOperator<TIn, TCommittable>(
    ITwoPhaseCommittingSink<TIn, TCommittable> sink,
    Serializer<TCommittable[]> serializer,
    ILogger logger) : SinkWriterOperator<TIn, IPrecommittingSinkWriter<TIn, TCommittable>>
{
    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(200);

    // Pre-committed and not committed yet, by the checkpoint they were pre-committed at.
    private readonly SortedDictionary<long, TCommittable[]> _uncommitted = [];
    private ISinkCommitter<TCommittable>? _committer;
    private long _completedUpTo = -1;
    private Task? _committing;

    public required SinkWriterContext WriterContext { get; init; }

    /// <summary>The committables of the checkpoint the subtask restores from, oldest first.</summary>
    public IReadOnlyList<SinkCommittables> Restored { get; init; } = [];

    public override bool HasUncommittedOutput => _uncommitted.Count > 0;

    private CancellationToken Cancellation => Host?.Cancellation ?? CancellationToken.None;

    public override async ValueTask OpenAsync(OperatorContext context)
    {
        try
        {
            Writer = sink.CreatePrecommittingWriter(WriterContext);
            _committer = sink.CreateCommitter(WriterContext);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }

        // Committed again (idempotently) before anything is written: they belong to a completed checkpoint, and a
        // notification of it may have been lost. What the subtask began after them is aborted.
        var recovered = new List<TCommittable>();
        foreach (var entry in Restored)
        {
            TCommittable[] items;
            try
            {
                items = serializer.Deserialize(entry.Payload) ?? throw new InvalidDataException("the committables are null");
            }
            catch (Exception ex)
            {
                throw new InvalidOperationException(
                    $"Sink '{Name}' (uid '{Uid}') cannot read the committables of checkpoint {entry.CheckpointId} in the state it restores from " +
                    $"(committable type {typeof(TCommittable)}): {ex.Message}. Restore with the sink version that wrote them.", ex);
            }

            await CommitWithRetriesAsync(entry.CheckpointId, items);
            recovered.AddRange(items);
        }

        try
        {
            await _committer.AbortLingeringTransactionsAsync(recovered, Cancellation);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw Fail(ex);
        }

        if (Restored.Count > 0)
        {
            LogRecovered(Name, WriterContext.SubtaskIndex, recovered.Count, WriterContext.RestoredCheckpointId ?? -1);
        }
    }

    public override async ValueTask<List<SinkCommittables>?> SnapshotCommittablesAsync(long checkpointId, bool savepoint, CancellationToken cancellationToken)
    {
        await PrepareCommitAsync(checkpointId, cancellationToken);

        // Everything not committed yet, including what a commit in flight is committing: a restore from this checkpoint
        // commits it again, idempotently.
        return [.. _uncommitted.Select(e => new SinkCommittables { CheckpointId = e.Key, Count = e.Value.Length, Payload = serializer.SerializeToArray(e.Value) })];
    }

    public override async ValueTask EndInputAsync(long checkpointId, bool checkpointing, CancellationToken cancellationToken)
    {
        await PrepareCommitAsync(checkpointId, cancellationToken);
        if (!checkpointing && _uncommitted.Count > 0)
        {
            // No checkpoint will ever cover them: a job without checkpoints is at-least-once, and commits at its end.
            NotifyCheckpointComplete(long.MaxValue);
            await _committing!;
        }
    }

    public override void NotifyCheckpointComplete(long checkpointId)
    {
        if (checkpointId <= _completedUpTo)
        {
            return;
        }

        _completedUpTo = checkpointId;
        if (_committing is null || _committing.IsCompleted)
        {
            _committing = CommitCompletedAsync();
        }
    }

    public override async ValueTask CloseAsync()
    {
        // Never commits: what is left is committed by the next attempt from its checkpoint, or aborted there.
        if (_committing is { IsCompleted: false } committing)
        {
            try
            {
                await committing;
            }
            catch (Exception ex)
            {
                LogCommitAbandoned(ex, Name, WriterContext.SubtaskIndex);
            }
        }

        await DisposeWriterAsync();

        if (_committer is not null)
        {
            await _committer.DisposeAsync();
            _committer = null;
        }
    }

    private async ValueTask PrepareCommitAsync(long checkpointId, CancellationToken cancellationToken)
    {
        IReadOnlyList<TCommittable> prepared;
        try
        {
            prepared = await Writer!.PrepareCommitAsync(checkpointId, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Records of the open transaction could not be made durable: the subtask fails rather than lose them.
            throw Fail(ex);
        }

        if (prepared.Count > 0)
        {
            _uncommitted[checkpointId] = _uncommitted.TryGetValue(checkpointId, out var earlier) ? [.. earlier, .. prepared] : [.. prepared];
        }
    }

    // The commit loop: runs from a notification's grain turn on the subtask's scheduler, interleaving with the record
    // loop at its awaits; a later notification while it runs only raises _completedUpTo.
    private async Task CommitCompletedAsync()
    {
        try
        {
            while (_uncommitted.Count > 0)
            {
                var (checkpointId, items) = _uncommitted.First();
                if (checkpointId > _completedUpTo)
                {
                    break;
                }

                await CommitWithRetriesAsync(checkpointId, items);
                _uncommitted.Remove(checkpointId);
                LogCommitted(Name, WriterContext.SubtaskIndex, items.Length, checkpointId);
            }
        }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex)
        {
            Host?.Fail(ex);
            return;
        }

        Host?.Wake();
    }

    private async Task CommitWithRetriesAsync(long checkpointId, TCommittable[] items)
    {
        var delay = FirstRetryDelay;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await _committer!.CommitAsync(checkpointId, items, Cancellation);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException && attempt < SinkCommitSettings.MaxCommitAttempts)
            {
                LogCommitRetried(ex, Name, WriterContext.SubtaskIndex, checkpointId, attempt, delay);
                await Task.Delay(delay, Cancellation);
                delay *= 2;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new OperatorException(
                    Name,
                    new InvalidOperationException(
                        $"Committing the output of checkpoint {checkpointId} failed {attempt} times; the job restarts from its latest checkpoint and commits it again: {ex.Message}",
                        ex));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Sink '{Sink}' subtask {Subtask} committed {Count} committable(s) of checkpoint {CheckpointId}")]
    private partial void LogCommitted(string sink, int subtask, int count, long checkpointId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sink '{Sink}' subtask {Subtask} committed again the {Count} committable(s) of checkpoint {CheckpointId} it restored from")]
    private partial void LogRecovered(string sink, int subtask, int count, long checkpointId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sink '{Sink}' subtask {Subtask}: committing checkpoint {CheckpointId} failed (try {Attempt}); retrying in {Delay}")]
    private partial void LogCommitRetried(Exception exception, string sink, int subtask, long checkpointId, int attempt, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Sink '{Sink}' subtask {Subtask}: a commit in progress ended with the subtask")]
    private partial void LogCommitAbandoned(Exception exception, string sink, int subtask);
}
