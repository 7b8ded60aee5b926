using Platform.Functions;
using Platform.State;

namespace Platform.Tasks.Operators;

/// <summary>The <see cref="IRuntimeContext"/> handed to a function's <c>Open</c>.</summary>
internal sealed class StreamingRuntimeContext(OperatorContext context, string operatorName, IKeyedStateBackend? keyedState) : IRuntimeContext
{
    public string JobId => context.JobId;

    public string OperatorName => operatorName;

    public int SubtaskIndex => context.SubtaskIndex;

    public int Parallelism => context.Parallelism;

    public int MaxParallelism => context.MaxParallelism;

    public int Attempt => context.Attempt;

    public long CurrentWatermark => context.CurrentWatermark;

    public IValueState<T> GetState<T>(ValueStateDescriptor<T> descriptor) => Keyed(descriptor).GetValueState(descriptor);

    public IListState<T> GetListState<T>(ListStateDescriptor<T> descriptor) => Keyed(descriptor).GetListState(descriptor);

    public IMapState<TUserKey, TValue> GetMapState<TUserKey, TValue>(MapStateDescriptor<TUserKey, TValue> descriptor)
        where TUserKey : notnull => Keyed(descriptor).GetMapState(descriptor);

    public IReducingState<T> GetReducingState<T>(ReducingStateDescriptor<T> descriptor) => Keyed(descriptor).GetReducingState(descriptor);

    public IAggregatingState<TIn, TOut> GetAggregatingState<TIn, TAcc, TOut>(AggregatingStateDescriptor<TIn, TAcc, TOut> descriptor) =>
        Keyed(descriptor).GetAggregatingState(descriptor);

    private IKeyedStateBackend Keyed(StateDescriptor descriptor) =>
        descriptor.Name.StartsWith(EventTime.TimerStateNames.ReservedPrefix, StringComparison.Ordinal)
            ? throw new ArgumentException(
                $"State name '{descriptor.Name}' of operator '{operatorName}' starts with '{EventTime.TimerStateNames.ReservedPrefix}', which is reserved for timers; choose another name.",
                nameof(descriptor))
            : Keyed();

    private IKeyedStateBackend Keyed() => keyedState ?? throw new InvalidOperationException(
        $"Operator '{operatorName}' is not keyed: keyed state is only available to functions applied after KeyBy (KeyedProcessFunction, KeyedCoProcessFunction).");
}
