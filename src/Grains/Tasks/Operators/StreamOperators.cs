using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Functions;
using Platform.State;

namespace Platform.Tasks.Operators;

/// <summary>An exception thrown by a user function, tagged with the operator that ran it.</summary>
internal sealed class OperatorException(string operatorName, Exception inner)
    : Exception($"Operator '{operatorName}' failed: {inner.Message}", inner)
{
    public string OperatorName { get; } = operatorName;
}

/// <summary>Where an operator runs.</summary>
internal sealed class OperatorContext
{
    public required string JobId { get; init; }

    public required int SubtaskIndex { get; init; }

    public required int Parallelism { get; init; }

    public required int MaxParallelism { get; init; }

    public required int Attempt { get; init; }

    public required IServiceProvider Services { get; init; }

    /// <summary>The subtask's event time: the last watermark that passed its chain (<see cref="long.MinValue"/> before any).</summary>
    public long CurrentWatermark { get; set; } = long.MinValue;

    /// <summary>
    /// The event time of the record going through the chain (Flink's <c>StreamRecord</c> timestamp): set when it enters
    /// the chain (from its batch) or by a timestamp assigner, and inherited by what operators emit for it.
    /// <see cref="long.MinValue"/> for a record without one.
    /// </summary>
    public long CurrentTimestamp { get; set; } = long.MinValue;

    /// <summary>Whether batches carry record timestamps (a job with event time); otherwise they carry records only.</summary>
    public bool CarriesTimestamps { get; init; }

    /// <summary>The processing-time clock of timers and processing-time windows (the silo's <see cref="TimeProvider"/>).</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;
}

/// <summary>What an operator may ask of the subtask that runs it, from work it does outside the record loop.</summary>
internal interface IOperatorHost
{
    /// <summary>Cancelled when the subtask stops.</summary>
    CancellationToken Cancellation { get; }

    /// <summary>Fails the subtask (the job restarts from its latest checkpoint).</summary>
    void Fail(Exception exception);

    /// <summary>Wakes the subtask's loop: something it may wait for happened (a commit completed).</summary>
    void Wake();
}

/// <summary>An operator of a task's chain (Flink's <c>StreamOperator</c>): it wraps one user function.</summary>
internal abstract class StreamOperator
{
    public required string Name { get; init; }

    public required string Uid { get; init; }

    /// <summary>The subtask running the operator; set before <see cref="OpenAsync"/>.</summary>
    public IOperatorHost? Host { get; set; }

    /// <summary>
    /// Part of the synchronous part of checkpoint <paramref name="checkpointId"/>, before the barrier goes downstream
    /// (Flink's <c>prepareSnapshotPreBarrier</c>): a two-phase-commit sink pre-commits and returns every committable
    /// it has not committed yet. Null for operators without such state.
    /// </summary>
    public virtual ValueTask<List<SinkCommittables>?> SnapshotCommittablesAsync(long checkpointId, bool savepoint, CancellationToken cancellationToken) =>
        ValueTask.FromResult<List<SinkCommittables>?>(null);

    /// <summary>
    /// The input ended and <see cref="FinishAsync"/> ran: a two-phase-commit sink pre-commits its last transaction
    /// under <paramref name="checkpointId"/>; without checkpointing it commits everything at once.
    /// </summary>
    public virtual ValueTask EndInputAsync(long checkpointId, bool checkpointing, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>Whether the operator holds pre-committed output not committed yet (the subtask must not finish before it is).</summary>
    public virtual bool HasUncommittedOutput => false;

    /// <summary>Opens the function; runs in the task's loop before any record.</summary>
    public virtual ValueTask OpenAsync(OperatorContext context) => ValueTask.CompletedTask;

    /// <summary>Called after every input batch (sinks make their writes visible).</summary>
    public virtual ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>Called once when every input ended, before the end of input travels downstream.</summary>
    public virtual ValueTask FinishAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>Releases the function's resources; runs whether the task finished, failed or was cancelled.</summary>
    public virtual ValueTask CloseAsync() => ValueTask.CompletedTask;

    /// <summary>A checkpoint this operator took part in completed (transactional sinks commit here).</summary>
    public virtual void NotifyCheckpointComplete(long checkpointId)
    {
    }

    /// <summary>Whether <see cref="FlushAsync"/> does anything (so the loop can skip it).</summary>
    public virtual bool NeedsFlush => false;

    protected Exception Fail(Exception ex) => ex as OperatorException ?? new OperatorException(Name, ex);

    protected void OpenRichFunction(object function, IRuntimeContext context)
    {
        if (function is IRichFunction rich)
        {
            try
            {
                rich.Open(context);
            }
            catch (Exception ex)
            {
                throw Fail(ex);
            }
        }
    }

    protected void CloseRichFunction(object function)
    {
        if (function is IRichFunction rich)
        {
            rich.Close();
        }
    }
}

internal sealed class MapOperator<TIn, TOut>(IMapFunction<TIn, TOut> function, ICollector<TOut> output) : StreamOperator, ICollector<TIn>
{
    public IRuntimeContext? RuntimeContext { get; set; }

    public override ValueTask OpenAsync(OperatorContext context)
    {
        OpenRichFunction(function, RuntimeContext!);
        return ValueTask.CompletedTask;
    }

    public void Collect(TIn record)
    {
        TOut result;
        try
        {
            result = function.Map(record);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }

        output.Collect(result);
    }

    public override ValueTask CloseAsync()
    {
        CloseRichFunction(function);
        return ValueTask.CompletedTask;
    }
}

internal sealed class FlatMapOperator<TIn, TOut>(IFlatMapFunction<TIn, TOut> function, ICollector<TOut> output) : StreamOperator, ICollector<TIn>
{
    public IRuntimeContext? RuntimeContext { get; set; }

    public override ValueTask OpenAsync(OperatorContext context)
    {
        OpenRichFunction(function, RuntimeContext!);
        return ValueTask.CompletedTask;
    }

    public void Collect(TIn record)
    {
        try
        {
            function.FlatMap(record, output);
        }
        catch (Exception ex)
        {
            // Exceptions of chained operators downstream arrive here already tagged with their operator.
            throw Fail(ex);
        }
    }

    public override ValueTask CloseAsync()
    {
        CloseRichFunction(function);
        return ValueTask.CompletedTask;
    }
}

internal sealed class FilterOperator<T>(IFilterFunction<T> function, ICollector<T> output) : StreamOperator, ICollector<T>
{
    public IRuntimeContext? RuntimeContext { get; set; }

    public override ValueTask OpenAsync(OperatorContext context)
    {
        OpenRichFunction(function, RuntimeContext!);
        return ValueTask.CompletedTask;
    }

    public void Collect(T record)
    {
        bool keep;
        try
        {
            keep = function.Filter(record);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }

        if (keep)
        {
            output.Collect(record);
        }
    }

    public override ValueTask CloseAsync()
    {
        CloseRichFunction(function);
        return ValueTask.CompletedTask;
    }
}

/// <summary>Runs a <see cref="KeyedProcessFunction{TKey, TIn, TOut}"/>: sets the current key, then calls the function.</summary>
internal sealed class KeyedProcessOperator<TKey, TIn, TOut>(
    KeyedProcessFunction<TKey, TIn, TOut> function,
    IKeySelector<TIn, TKey> keySelector,
    IKeyedStateBackend<TKey> backend,
    ICollector<TOut> output) : KeyedStreamOperator<TKey>(backend), ICollector<TIn>
    where TKey : notnull
{
    public void Collect(TIn record)
    {
        try
        {
            Backend.SetCurrentKey(keySelector.GetKey(record));
            function.ProcessElement(record, this, output);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
    }

    protected override void OpenFunction() => OpenRichFunction(function, RuntimeContext!);

    protected override void CloseFunction() => CloseRichFunction(function);

    protected override void OnTimer(long timestamp) => function.OnTimer(timestamp, this, output);
}

/// <summary>Runs a <see cref="KeyedCoProcessFunction{TKey, TIn1, TIn2, TOut}"/>; both inputs share the keyed state and the timers.</summary>
internal sealed class KeyedCoProcessOperator<TKey, TIn1, TIn2, TOut> : KeyedStreamOperator<TKey>
    where TKey : notnull
{
    private readonly KeyedCoProcessFunction<TKey, TIn1, TIn2, TOut> _function;
    private readonly ICollector<TOut> _output;

    public KeyedCoProcessOperator(
        KeyedCoProcessFunction<TKey, TIn1, TIn2, TOut> function,
        IKeySelector<TIn1, TKey> keySelector1,
        IKeySelector<TIn2, TKey> keySelector2,
        IKeyedStateBackend<TKey> backend,
        ICollector<TOut> output)
        : base(backend)
    {
        _function = function;
        _output = output;
        Input1 = new FirstInput(this, keySelector1);
        Input2 = new SecondInput(this, keySelector2);
    }

    public ICollector<TIn1> Input1 { get; }

    public ICollector<TIn2> Input2 { get; }

    protected override void OpenFunction() => OpenRichFunction(_function, RuntimeContext!);

    protected override void CloseFunction() => CloseRichFunction(_function);

    protected override void OnTimer(long timestamp) => _function.OnTimer(timestamp, this, _output);

    private sealed class FirstInput(KeyedCoProcessOperator<TKey, TIn1, TIn2, TOut> op, IKeySelector<TIn1, TKey> keySelector) : ICollector<TIn1>
    {
        public void Collect(TIn1 record)
        {
            try
            {
                op.Backend.SetCurrentKey(keySelector.GetKey(record));
                op._function.ProcessElement1(record, op, op._output);
            }
            catch (Exception ex)
            {
                throw op.Fail(ex);
            }
        }
    }

    private sealed class SecondInput(KeyedCoProcessOperator<TKey, TIn1, TIn2, TOut> op, IKeySelector<TIn2, TKey> keySelector) : ICollector<TIn2>
    {
        public void Collect(TIn2 record)
        {
            try
            {
                op.Backend.SetCurrentKey(keySelector.GetKey(record));
                op._function.ProcessElement2(record, op, op._output);
            }
            catch (Exception ex)
            {
                throw op.Fail(ex);
            }
        }
    }
}

internal sealed class SinkOperator<T>(ISinkFunction<T> function) : SinkWriterOperator<T, ISinkWriter<T>>
{
    public required SinkWriterContext WriterContext { get; init; }

    public override ValueTask OpenAsync(OperatorContext context)
    {
        try
        {
            Writer = function.CreateWriter(WriterContext);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }

        return ValueTask.CompletedTask;
    }

    public override void NotifyCheckpointComplete(long checkpointId)
    {
        if (Writer is ICheckpointListener listener)
        {
            listener.NotifyCheckpointComplete(checkpointId);
        }
    }

    public override ValueTask CloseAsync() => DisposeWriterAsync();
}

/// <summary>The head of a source task: reads records and pushes them through the chain.</summary>
internal interface ISourceOperator
{
    /// <summary>Reads up to <paramref name="maxRecords"/> records into the chain.</summary>
    ReadStatus Emit(int maxRecords, out int emitted);

    /// <summary>The offset of the next record (what a checkpoint stores).</summary>
    long Offset { get; }

    /// <summary>A copy of each split's position, for a reader of several splits; null otherwise.</summary>
    Dictionary<string, string>? SplitPositions { get; }

    /// <summary>Whether the source ends (a draining stop reads a bounded source to its end).</summary>
    bool IsBounded { get; }
}

internal sealed class SourceOperator<T>(ISourceFunction<T> function, ICollector<T> output) : StreamOperator, ISourceOperator
{
    private ISourceReader<T>? _reader;

    public required SourceReaderContext ReaderContext { get; init; }

    /// <summary>The job's skip policy for poison records; null when they fail the subtask.</summary>
    public PoisonRecordHandler? Poison { get; init; }

    public long Offset => _reader?.Offset ?? ReaderContext.StartOffset ?? 0;

    public Dictionary<string, string>? SplitPositions => _reader switch
    {
        ISplitPositionsReader reader => new Dictionary<string, string>(reader.SplitPositions, StringComparer.Ordinal),
        // Not open yet (or closed): what it was restored with stands.
        null when ReaderContext.RestoredSplitPositions is { } restored => new Dictionary<string, string>(restored, StringComparer.Ordinal),
        _ => null,
    };

    public bool IsBounded => function.IsBounded;

    public override ValueTask OpenAsync(OperatorContext context)
    {
        try
        {
            _reader = function.CreateReader(ReaderContext);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }

        return ValueTask.CompletedTask;
    }

    public ReadStatus Emit(int maxRecords, out int emitted)
    {
        var reader = _reader!;
        emitted = 0;
        while (emitted < maxRecords)
        {
            ReadStatus status;
            T record;
            var offset = Poison is null ? 0 : reader.Offset;
            try
            {
                status = reader.TryRead(out record);
            }
            catch (PoisonRecordException ex)
            {
                if (Poison is null)
                {
                    throw new OperatorException(Name, new InvalidDataException(
                        $"Source '{Name}' cannot read the record at offset {ex.Offset} of split '{ex.Split}': {ex.Message}. " +
                        "Fix the record, or let the job skip such records into a dead-letter directory: PoisonRecords = PoisonRecordPolicy.SkipTo(directory).",
                        ex));
                }

                Poison.Skip(Name, ex.RawRecord, ex, ex.Split, ex.Offset);
                continue;
            }
            catch (Exception ex)
            {
                throw Fail(ex);
            }

            if (status != ReadStatus.Record)
            {
                return status;
            }

            emitted++;
            if (Poison is null)
            {
                output.Collect(record);
                continue;
            }

            try
            {
                output.Collect(record);
            }
            catch (OperatorException ex)
            {
                Poison.Skip(ex.OperatorName, record?.ToString(), ex, $"source '{Name}' subtask {ReaderContext.SubtaskIndex}", offset.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return ReadStatus.Record;
    }

    public override ValueTask CloseAsync()
    {
        _reader?.Dispose();
        _reader = null;
        return ValueTask.CompletedTask;
    }
}
