using Platform.State;

namespace Platform.Functions;

/// <summary>Receives the records an operator emits.</summary>
/// <typeparam name="T">The record type.</typeparam>
public interface ICollector<in T>
{
    /// <summary>Emits one record downstream.</summary>
    void Collect(T record);
}

/// <summary>
/// A function with a lifecycle: <see cref="Open"/> runs once per subtask before the first record (create state
/// handles there), <see cref="Close"/> after the last.
/// </summary>
public interface IRichFunction
{
    /// <summary>Called once per subtask before any record is processed.</summary>
    void Open(IRuntimeContext context);

    /// <summary>Called once per subtask after the last record, or when the task is cancelled.</summary>
    void Close();
}

/// <summary>Transforms each record into exactly one record (Flink's <c>MapFunction</c>).</summary>
public interface IMapFunction<in TIn, out TOut>
{
    /// <summary>Maps one record.</summary>
    TOut Map(TIn value);
}

/// <summary>Transforms each record into zero or more records (Flink's <c>FlatMapFunction</c>).</summary>
public interface IFlatMapFunction<in TIn, out TOut>
{
    /// <summary>Emits the records derived from <paramref name="value"/> into <paramref name="output"/>.</summary>
    void FlatMap(TIn value, ICollector<TOut> output);
}

/// <summary>Keeps the records for which <see cref="Filter"/> returns true (Flink's <c>FilterFunction</c>).</summary>
public interface IFilterFunction<in T>
{
    /// <summary>Returns true to keep the record.</summary>
    bool Filter(T value);
}

/// <summary>Extracts the key a record is partitioned and its state scoped by (Flink's <c>KeySelector</c>).</summary>
/// <remarks>Must be deterministic: the same record always yields an equal key.</remarks>
public interface IKeySelector<in T, out TKey>
    where TKey : notnull
{
    /// <summary>Returns the key of <paramref name="value"/>.</summary>
    TKey GetKey(T value);
}

/// <summary>
/// Implemented by key types that supply their own hash for key-group assignment. The hash must be equal for equal
/// keys in every process and on every machine (never <see cref="object.GetHashCode"/> of a string), because key
/// groups are stored in checkpoints. Primitive, string, GUID and tuple keys need nothing.
/// </summary>
public interface IStableKeyHash
{
    /// <summary>A hash that is equal for equal keys in every process.</summary>
    int StableHash();
}

/// <summary>Combines two values into one of the same type (Flink's <c>ReduceFunction</c>).</summary>
public interface IReduceFunction<T>
{
    /// <summary>Combines <paramref name="accumulated"/> with <paramref name="value"/>.</summary>
    T Reduce(T accumulated, T value);
}

/// <summary>An incremental aggregation with an accumulator (Flink's <c>AggregateFunction</c>).</summary>
public interface IAggregateFunction<in TIn, TAcc, out TOut>
{
    /// <summary>Creates an empty accumulator.</summary>
    TAcc CreateAccumulator();

    /// <summary>Adds a value to an accumulator and returns the updated accumulator.</summary>
    TAcc Add(TIn value, TAcc accumulator);

    /// <summary>Computes the result from an accumulator.</summary>
    TOut GetResult(TAcc accumulator);

    /// <summary>Merges two accumulators.</summary>
    TAcc Merge(TAcc a, TAcc b);
}

/// <summary>Context of the record being processed by a keyed function.</summary>
public interface IKeyedContext<out TKey>
{
    /// <summary>The key of the record being processed; keyed state is scoped to it.</summary>
    TKey CurrentKey { get; }

    /// <summary>
    /// The event time of the record being processed (Flink's <c>Context.timestamp()</c>), as its timestamp assigner
    /// set it; <c>null</c> when it has none (a job without <c>AssignTimestampsAndWatermarks</c>).
    /// </summary>
    long? Timestamp => null;

    /// <summary>The timers of the current key, and the subtask's clocks.</summary>
    /// <exception cref="NotSupportedException">The context is not a keyed process function's.</exception>
    ITimerService TimerService => throw new NotSupportedException("Timers are available to keyed process functions only (KeyedProcessFunction, KeyedCoProcessFunction).");
}

/// <summary>
/// Processes the records of a keyed stream one at a time, with keyed state scoped to the current key
/// (Flink's <c>KeyedProcessFunction</c>).
/// </summary>
/// <remarks>Function objects are shipped to the silos with Orleans' serializer: mark subclasses
/// <c>[GenerateSerializer]</c>, their parameters <c>[Id(n)]</c> and their runtime fields (state handles) <c>[NonSerialized]</c>.</remarks>
[GenerateSerializer, Alias("platform.KeyedProcessFunction`3")]
public abstract class KeyedProcessFunction<TKey, TIn, TOut> : IRichFunction
    where TKey : notnull
{
    /// <inheritdoc />
    public virtual void Open(IRuntimeContext context)
    {
    }

    /// <inheritdoc />
    public virtual void Close()
    {
    }

    /// <summary>Processes one record; state handles created in <see cref="Open"/> see the state of <c>context.CurrentKey</c>.</summary>
    public abstract void ProcessElement(TIn value, IKeyedContext<TKey> context, ICollector<TOut> output);

    /// <summary>
    /// A timer registered through <c>context.TimerService</c> fired (Flink's <c>onTimer</c>); keyed state is scoped to
    /// its key. What it emits carries the timer's time as its timestamp when the timer is an event-time one.
    /// </summary>
    public virtual void OnTimer(long timestamp, IOnTimerContext<TKey> context, ICollector<TOut> output)
    {
    }
}

/// <summary>
/// Processes two keyed streams connected on the same key type, with state shared by both inputs and scoped to the
/// current key (Flink's <c>KeyedCoProcessFunction</c>).
/// </summary>
/// <remarks>Mark subclasses <c>[GenerateSerializer]</c>, like every function.</remarks>
[GenerateSerializer, Alias("platform.KeyedCoProcessFunction`4")]
public abstract class KeyedCoProcessFunction<TKey, TIn1, TIn2, TOut> : IRichFunction
    where TKey : notnull
{
    /// <inheritdoc />
    public virtual void Open(IRuntimeContext context)
    {
    }

    /// <inheritdoc />
    public virtual void Close()
    {
    }

    /// <summary>Processes one record of the first input.</summary>
    public abstract void ProcessElement1(TIn1 value, IKeyedContext<TKey> context, ICollector<TOut> output);

    /// <summary>Processes one record of the second input.</summary>
    public abstract void ProcessElement2(TIn2 value, IKeyedContext<TKey> context, ICollector<TOut> output);

    /// <summary>A timer registered through <c>context.TimerService</c> fired; keyed state is scoped to its key.</summary>
    public virtual void OnTimer(long timestamp, IOnTimerContext<TKey> context, ICollector<TOut> output)
    {
    }
}

/// <summary>What a function can learn about the subtask it runs in, and where it gets keyed state.</summary>
public interface IRuntimeContext
{
    /// <summary>The job's id.</summary>
    string JobId { get; }

    /// <summary>The operator's name.</summary>
    string OperatorName { get; }

    /// <summary>This subtask's index, from 0 to <see cref="Parallelism"/> - 1.</summary>
    int SubtaskIndex { get; }

    /// <summary>The operator's parallelism.</summary>
    int Parallelism { get; }

    /// <summary>The job's max parallelism (the number of key groups).</summary>
    int MaxParallelism { get; }

    /// <summary>The deployment attempt; it increases each time the job restarts.</summary>
    int Attempt { get; }

    /// <summary>
    /// The subtask's event time (Flink's current watermark), in milliseconds: no record with a timestamp at or below
    /// it is expected any more. <see cref="long.MinValue"/> before the first watermark, or in a job without event time.
    /// </summary>
    long CurrentWatermark => long.MinValue;

    /// <summary>Gets or creates a value state scoped to the current key.</summary>
    IValueState<T> GetState<T>(ValueStateDescriptor<T> descriptor);

    /// <summary>Gets or creates a list state scoped to the current key.</summary>
    IListState<T> GetListState<T>(ListStateDescriptor<T> descriptor);

    /// <summary>Gets or creates a map state scoped to the current key.</summary>
    IMapState<TUserKey, TValue> GetMapState<TUserKey, TValue>(MapStateDescriptor<TUserKey, TValue> descriptor)
        where TUserKey : notnull;

    /// <summary>Gets or creates a reducing state scoped to the current key.</summary>
    IReducingState<T> GetReducingState<T>(ReducingStateDescriptor<T> descriptor);

    /// <summary>Gets or creates an aggregating state scoped to the current key.</summary>
    IAggregatingState<TIn, TOut> GetAggregatingState<TIn, TAcc, TOut>(AggregatingStateDescriptor<TIn, TAcc, TOut> descriptor);
}
