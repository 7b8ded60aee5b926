using System.Collections.Concurrent;
using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Serialization;
using Platform.Connectors;
using Platform.Functions;
using Platform.Graph;
using Platform.State;
using Platform.State.Heap;
using Platform.Tasks.Network;
using Platform.Tasks.Operators;

namespace Platform.Tasks;

/// <summary>
/// A subtask's operators wired together: gate readers feed the head, operators call each other directly (chaining),
/// and the tail writes into record writers over the output channels.
/// </summary>
internal sealed class OperatorChain
{
    public required List<StreamOperator> Operators { get; init; }

    public required IGateReader[] Gates { get; init; }

    public ISourceOperator? Source { get; init; }

    public required List<IRecordWriter> Writers { get; init; }

    public required OutputChannel[] OutputChannels { get; init; }

    public required Queue<PendingBatch> Pending { get; init; }

    public required TaskCounters Counters { get; init; }

    /// <summary>
    /// Records each operator of <see cref="Operators"/> emitted, in the same order; <c>null</c> for one without an output
    /// (a sink). Operator i took in what operator i − 1 emitted; the head took in <see cref="TaskCounters.RecordsIn"/>.
    /// </summary>
    public required IReadOnlyList<OperatorOutputCounter?> OperatorOutputs { get; init; }

    /// <summary>The chain's watermark generator (<c>AssignTimestampsAndWatermarks</c>), if it has one.</summary>
    /// <remarks>Looked up once: the task loop asks after every batch.</remarks>
    public EventTime.IWatermarkGenerator? WatermarkGenerator { get; init; }

    public required OperatorContext Context { get; init; }

    /// <summary>The chain's head when it has timers to drive (a keyed operator), otherwise null.</summary>
    public Operators.ITimedOperator? TimedHead { get; init; }

    public IKeyedStateBackend? KeyedState { get; init; }

    /// <summary>The uid of the operator that owns <see cref="KeyedState"/>.</summary>
    public string? KeyedOperatorUid { get; init; }

    public bool HasSinks => Operators.Any(o => o.NeedsFlush);

    /// <summary>The dead-letter output of poison records, when the job skips them.</summary>
    public PoisonRecordHandler? Poison { get; init; }

    /// <summary>The chain's window operators, which count the late records they drop.</summary>
    public IReadOnlyList<Windowing.ILateRecordCounter> LateRecordCounters { get; init; } = [];

    /// <summary>Whether an operator holds pre-committed output not committed yet.</summary>
    public bool HasUncommittedOutput => Operators.Any(o => o.HasUncommittedOutput);

    /// <summary>Builds the chain of a deployment; every function is deserialized and every operator created, none opened.</summary>
    public static OperatorChain Build(TaskDeployment deployment, IServiceProvider services)
    {
        var builder = new Builder(deployment, services);
        return builder.Build();
    }

    private sealed class Builder(TaskDeployment deployment, IServiceProvider services)
    {
        private readonly Serializer _serializer = services.GetRequiredService<Serializer>();
        private readonly IGrainFactory _grains = services.GetRequiredService<IGrainFactory>();
        private readonly Queue<PendingBatch> _pending = new();
        private readonly TaskCounters _counters = new();
        private readonly List<IRecordWriter> _writers = [];
        private readonly List<StreamOperator> _operators = [];
        private readonly List<Windowing.ILateRecordCounter> _lateRecordCounters = [];
        private OperatorContext _context = null!;
        private IKeyedStateBackend? _keyedState;
        private readonly PoisonRecordHandler? _poison = deployment.PoisonRecords is { Action: PoisonRecordAction.Skip } policy
            ? new PoisonRecordHandler(policy, deployment, services.GetRequiredService<ILoggerFactory>().CreateLogger<PoisonRecordHandler>())
            : null;

        public OperatorChain Build()
        {
            _context = new OperatorContext
            {
                JobId = deployment.Id.JobId,
                SubtaskIndex = deployment.Id.SubtaskIndex,
                Parallelism = deployment.Parallelism,
                MaxParallelism = deployment.MaxParallelism,
                Attempt = deployment.Attempt,
                Services = services,
                CarriesTimestamps = deployment.EventTime,
                Clock = services.GetService<TimeProvider>() ?? TimeProvider.System,
            };

            var outputChannels = new OutputChannel[deployment.Outputs.Sum(o => o.Channels.Count)];
            foreach (var edge in deployment.Outputs)
            {
                for (var i = 0; i < edge.Channels.Count; i++)
                {
                    var spec = edge.Channels[i];
                    outputChannels[edge.FirstChannelIndex + i] = new OutputChannel(
                        _grains.GetGrain<IStreamTaskGrain>(spec.Target.GrainKey), spec.ReceiverChannel, deployment.ChannelWindow, deployment.Attempt);
                }
            }

            var tail = deployment.Chain[^1];
            object? downstream = null;
            if (tail.OutputType is { } outputType)
            {
                var type = TypeResolver.Resolve(outputType);
                var writers = deployment.Outputs
                    .Select(edge => Invoke(nameof(CreateWriter), [type], edge, outputChannels))
                    .ToArray();
                downstream = writers.Length == 1 ? writers[0] : Invoke(nameof(CreateBroadcast), [type], [writers]);
            }

            object? head = null;
            ISourceOperator? source = null;
            var outputs = new OperatorOutputCounter?[deployment.Chain.Count];
            for (var i = deployment.Chain.Count - 1; i >= 0; i--)
            {
                var vertex = deployment.Chain[i];
                if (downstream is not null && vertex.OutputType is { } emitted)
                {
                    // Each operator's output is counted on its way to the next one (Flink's numRecordsOut per operator).
                    outputs[i] = new OperatorOutputCounter();
                    downstream = Invoke(nameof(CreateCounting), [TypeResolver.Resolve(emitted)], downstream, outputs[i]!);
                }

                var op = CreateOperator(vertex, i == 0, downstream);
                _operators.Insert(0, op);
                downstream = op;
                head = op;
                source ??= op as ISourceOperator;
            }

            var headVertex = deployment.Chain[0];
            var gates = new IGateReader[headVertex.InputTypes.Count];
            for (var gate = 0; gate < gates.Length; gate++)
            {
                var inputType = TypeResolver.Resolve(headVertex.InputTypes[gate]);
                var collector = head switch
                {
                    _ when headVertex.Kind == OperatorKind.KeyedCoProcess => head!.GetType().GetProperty(gate == 0 ? "Input1" : "Input2")!.GetValue(head)!,
                    _ => head!,
                };
                gates[gate] = (IGateReader)Invoke(nameof(CreateGateReader), [inputType], collector);
            }

            return new OperatorChain
            {
                Operators = _operators,
                Gates = gates,
                Source = source,
                Writers = _writers,
                OutputChannels = outputChannels,
                Pending = _pending,
                Counters = _counters,
                OperatorOutputs = outputs,
                Context = _context,
                WatermarkGenerator = _operators.OfType<EventTime.IWatermarkGenerator>().FirstOrDefault(),
                TimedHead = _operators[0] as ITimedOperator,
                KeyedState = _keyedState,
                KeyedOperatorUid = _keyedState is null ? null : headVertex.Uid,
                Poison = _poison,
                LateRecordCounters = _lateRecordCounters,
            };
        }

        private StreamOperator CreateOperator(JobVertex vertex, bool isHead, object? downstream)
        {
            var function = FunctionLoader.Load(_serializer, vertex.Function, vertex.Name);
            if (function is Windowing.ILateRecordCounter late)
            {
                _lateRecordCounters.Add(late);
            }

            var input = vertex.InputTypes.Select(TypeResolver.Resolve).ToArray();
            var output = vertex.OutputType is null ? null : TypeResolver.Resolve(vertex.OutputType);
            StreamOperator op = vertex.Kind switch
            {
                OperatorKind.Source => (StreamOperator)Invoke(nameof(CreateSource), [output!], function, downstream!, vertex),
                OperatorKind.Map => (StreamOperator)Invoke(nameof(CreateMap), [input[0], output!], function, downstream!, vertex),
                OperatorKind.FlatMap => (StreamOperator)Invoke(nameof(CreateFlatMap), [input[0], output!], function, downstream!, vertex),
                OperatorKind.Filter => (StreamOperator)Invoke(nameof(CreateFilter), [input[0]], function, downstream!, vertex),
                OperatorKind.TimestampsAndWatermarks => (StreamOperator)Invoke(nameof(CreateTimestampsAndWatermarks), [input[0]], function, downstream!, vertex),
                OperatorKind.Sink when TwoPhaseCommittableType(function, input[0]) is { } committable =>
                    (StreamOperator)Invoke(nameof(CreateTwoPhaseCommitSink), [input[0], committable], function, vertex),
                OperatorKind.Sink => (StreamOperator)Invoke(nameof(CreateSink), [input[0]], function, vertex),
                OperatorKind.KeyedProcess when isHead => CreateKeyed(vertex, function, input, output!, downstream!),
                OperatorKind.KeyedCoProcess when isHead => CreateKeyed(vertex, function, input, output!, downstream!),
                _ => throw new InvalidOperationException($"Operator {vertex} of kind {vertex.Kind} cannot run inside a chain."),
            };

            var keyed = vertex.Kind is OperatorKind.KeyedProcess or OperatorKind.KeyedCoProcess ? _keyedState : null;
            op.GetType().GetProperty("RuntimeContext")?.SetValue(op, new StreamingRuntimeContext(_context, vertex.Name, keyed));
            return op;
        }

        private StreamOperator CreateKeyed(JobVertex vertex, object function, Type[] input, Type output, object downstream)
        {
            var keyedInputs = deployment.KeyedInputs
                ?? throw new InvalidOperationException($"Keyed operator {vertex} was deployed without key selectors.");
            var keyType = TypeResolver.Resolve(keyedInputs[0].KeyType);
            var selectors = keyedInputs.Select(k => FunctionLoader.Load(_serializer, k.KeySelector, vertex.Name)).ToArray();
            var backend = (IKeyedStateBackend)Invoke(nameof(CreateBackend), [keyType], vertex);
            _keyedState = backend;
            return vertex.Kind == OperatorKind.KeyedProcess
                ? (StreamOperator)Invoke(nameof(CreateKeyedProcess), [keyType, input[0], output], function, selectors[0], backend, downstream, vertex)
                : (StreamOperator)Invoke(nameof(CreateKeyedCoProcess), [keyType, input[0], input[1], output], function, selectors[0], selectors[1], backend, downstream, vertex);
        }

        private static readonly ConcurrentDictionary<(string, Type[]), MethodInfo> Methods = new(new MethodKeyComparer());

        private object Invoke(string method, Type[] typeArguments, params object[] arguments)
        {
            var generic = Methods.GetOrAdd((method, typeArguments), key =>
                typeof(Builder).GetMethod(key.Item1, BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static)!.MakeGenericMethod(key.Item2));
            try
            {
                return generic.Invoke(this, arguments)!;
            }
            catch (TargetInvocationException ex) when (ex.InnerException is not null)
            {
                throw ex.InnerException;
            }
        }

        private RecordWriter<T> CreateWriter<T>(OutputEdgeSpec edge, OutputChannel[] all)
        {
            var channels = all.AsSpan(edge.FirstChannelIndex, edge.Channels.Count).ToArray();
            IPartitioner<T> partitioner = edge.Partitioning switch
            {
                Partitioning.Forward => new ForwardPartitioner<T>(),
                Partitioning.Rebalance => new RebalancePartitioner<T>(channels.Length, deployment.Id.SubtaskIndex),
                Partitioning.Hash => (IPartitioner<T>)Invoke(
                    nameof(CreateKeyGroupPartitioner),
                    [typeof(T), TypeResolver.Resolve(edge.KeyType!)],
                    FunctionLoader.Load(_serializer, edge.KeySelector!, "KeyBy"),
                    channels.Length),
                _ => throw new InvalidOperationException($"Unknown partitioning {edge.Partitioning}."),
            };
            var writer = deployment.EventTime
                ? new RecordWriter<T>(channels, partitioner, _serializer.GetSerializer<T[]>(), deployment.BatchSize, _pending, _counters, _context, _serializer.GetSerializer<TimestampedBatch<T>>())
                : new RecordWriter<T>(channels, partitioner, _serializer.GetSerializer<T[]>(), deployment.BatchSize, _pending, _counters);
            _writers.Add(writer);
            return writer;
        }

        private KeyGroupPartitioner<T, TKey> CreateKeyGroupPartitioner<T, TKey>(IKeySelector<T, TKey> selector, int parallelism)
            where TKey : notnull =>
            new(selector, KeyHashers.Create<TKey>(_serializer), deployment.MaxParallelism, parallelism);

        private static CountingCollector<T> CreateCounting<T>(object downstream, OperatorOutputCounter counter) => new((ICollector<T>)downstream, counter);

        private static BroadcastCollector<T> CreateBroadcast<T>(object[] writers) => new([.. writers.Cast<ICollector<T>>()]);

        private GateReader<T> CreateGateReader<T>(ICollector<T> head) => deployment.EventTime
            ? new(_serializer.GetSerializer<T[]>(), head, _poison, _context, _serializer.GetSerializer<TimestampedBatch<T>>())
            : new(_serializer.GetSerializer<T[]>(), head, _poison);

        private IKeyedStateBackend<TKey> CreateBackend<TKey>(JobVertex vertex)
            where TKey : notnull
        {
            var factory = services.GetKeyedService<IKeyedStateBackendFactory>(deployment.StateBackend)
                ?? throw new InvalidOperationException($"No state backend '{deployment.StateBackend}' is registered in this silo; operator {vertex} cannot hold keyed state.");
            return factory.Create<TKey>(new KeyedStateBackendContext(
                deployment.KeyGroups ?? throw new InvalidOperationException($"Keyed operator {vertex} was deployed without key groups."),
                deployment.MaxParallelism,
                vertex.Name));
        }

        private SourceOperator<T> CreateSource<T>(ISourceFunction<T> function, ICollector<T> output, JobVertex vertex) =>
            new(function, output)
            {
                Name = vertex.Name,
                Uid = vertex.Uid,
                Poison = _poison,
                ReaderContext = new SourceReaderContext
                {
                    JobId = deployment.Id.JobId,
                    OperatorName = vertex.Name,
                    SubtaskIndex = deployment.Id.SubtaskIndex,
                    Parallelism = deployment.Parallelism,
                    StartOffset = deployment.Restore?.FirstOrDefault(r => r.OperatorUid == vertex.Uid)?.SourceOffset,
                    RestoredSplitPositions = deployment.Restore?.FirstOrDefault(r => r.OperatorUid == vertex.Uid)?.SplitPositions,
                    Services = services,
                },
            };

        private static MapOperator<TIn, TOut> CreateMap<TIn, TOut>(IMapFunction<TIn, TOut> function, ICollector<TOut> output, JobVertex vertex) =>
            new(function, output) { Name = vertex.Name, Uid = vertex.Uid };

        private static FlatMapOperator<TIn, TOut> CreateFlatMap<TIn, TOut>(IFlatMapFunction<TIn, TOut> function, ICollector<TOut> output, JobVertex vertex) =>
            new(function, output) { Name = vertex.Name, Uid = vertex.Uid };

        private static EventTime.TimestampsAndWatermarksOperator<T> CreateTimestampsAndWatermarks<T>(WatermarkStrategy<T> strategy, ICollector<T> output, JobVertex vertex) =>
            new(strategy, output) { Name = vertex.Name, Uid = vertex.Uid };

        private static FilterOperator<T> CreateFilter<T>(IFilterFunction<T> function, ICollector<T> output, JobVertex vertex) =>
            new(function, output) { Name = vertex.Name, Uid = vertex.Uid };

        private SinkOperator<T> CreateSink<T>(ISinkFunction<T> function, JobVertex vertex) =>
            new(function)
            {
                Name = vertex.Name,
                Uid = vertex.Uid,
                WriterContext = SinkContext(vertex),
            };

        // The committable type of a two-phase-commit sink of records of type input, or null for a plain sink.
        private static Type? TwoPhaseCommittableType(object function, Type input) =>
            function.GetType().GetInterfaces()
                .FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(ITwoPhaseCommittingSink<,>) && i.GetGenericArguments()[0] == input)
                ?.GetGenericArguments()[1];

        private TwoPhaseCommitSinkOperator<T, TCommittable> CreateTwoPhaseCommitSink<T, TCommittable>(ITwoPhaseCommittingSink<T, TCommittable> function, JobVertex vertex) =>
            new(function, _serializer.GetSerializer<TCommittable[]>(), services.GetRequiredService<ILoggerFactory>().CreateLogger<TwoPhaseCommitSinkOperator<T, TCommittable>>())
            {
                Name = vertex.Name,
                Uid = vertex.Uid,
                WriterContext = SinkContext(vertex),
                Restored = deployment.Restore?.FirstOrDefault(r => r.OperatorUid == vertex.Uid)?.Committables ?? [],
            };

        private SinkWriterContext SinkContext(JobVertex vertex) => new()
        {
            JobId = deployment.Id.JobId,
            OperatorUid = vertex.Uid,
            OperatorName = vertex.Name,
            SubtaskIndex = deployment.Id.SubtaskIndex,
            Parallelism = deployment.Parallelism,
            Attempt = deployment.Attempt,
            RestoredCheckpointId = deployment.RestoredFrom,
            Services = services,
        };

        private static KeyedProcessOperator<TKey, TIn, TOut> CreateKeyedProcess<TKey, TIn, TOut>(
            KeyedProcessFunction<TKey, TIn, TOut> function, IKeySelector<TIn, TKey> selector, IKeyedStateBackend backend, ICollector<TOut> output, JobVertex vertex)
            where TKey : notnull =>
            new(function, selector, (IKeyedStateBackend<TKey>)backend, output) { Name = vertex.Name, Uid = vertex.Uid };

        private static KeyedCoProcessOperator<TKey, TIn1, TIn2, TOut> CreateKeyedCoProcess<TKey, TIn1, TIn2, TOut>(
            KeyedCoProcessFunction<TKey, TIn1, TIn2, TOut> function,
            IKeySelector<TIn1, TKey> selector1,
            IKeySelector<TIn2, TKey> selector2,
            IKeyedStateBackend backend,
            ICollector<TOut> output,
            JobVertex vertex)
            where TKey : notnull =>
            new(function, selector1, selector2, (IKeyedStateBackend<TKey>)backend, output) { Name = vertex.Name, Uid = vertex.Uid };
    }

    private sealed class MethodKeyComparer : IEqualityComparer<(string, Type[])>
    {
        public bool Equals((string, Type[]) x, (string, Type[]) y) => x.Item1 == y.Item1 && x.Item2.SequenceEqual(y.Item2);

        public int GetHashCode((string, Type[]) obj)
        {
            var hash = new HashCode();
            hash.Add(obj.Item1);
            foreach (var type in obj.Item2)
            {
                hash.Add(type);
            }

            return hash.ToHashCode();
        }
    }
}

/// <summary>Resolves the type names a job graph carries.</summary>
/// <summary>The records one chained operator emitted (a plain field: bumped on the subtask's loop, read when publishing).</summary>
internal sealed class OperatorOutputCounter
{
    public long RecordsOut;
}

/// <summary>Counts the records an operator emits into the next collector of its chain.</summary>
internal sealed class CountingCollector<T>(ICollector<T> next, OperatorOutputCounter counter) : ICollector<T>
{
    public void Collect(T record)
    {
        counter.RecordsOut++;
        next.Collect(record);
    }
}

internal static class TypeResolver
{
    private static readonly ConcurrentDictionary<string, Type?> Cache = new(StringComparer.Ordinal);

    public static Type? TryResolve(string name) => Cache.GetOrAdd(name, static n =>
    {
        try
        {
            return Type.GetType(n, throwOnError: false);
        }
        catch (Exception ex) when (ex is ArgumentException or FileLoadException or BadImageFormatException or TypeLoadException)
        {
            return null;
        }
    });

    public static Type Resolve(string name) => TryResolve(name)
        ?? throw new InvalidOperationException($"Type '{name}' is not known on this silo; deploy the assembly that defines it with the silos.");
}

/// <summary>Deserializes function objects.</summary>
internal static class FunctionLoader
{
    public static object Load(Serializer serializer, FunctionSpec spec, string operatorName)
    {
        try
        {
            return serializer.Deserialize<object>(spec.Payload)
                ?? throw new InvalidOperationException("the payload holds null");
        }
        catch (Exception ex)
        {
            throw new InvalidOperationException(
                $"The function of operator '{operatorName}' (type '{spec.TypeName}') cannot be deserialized on this silo: {ex.Message}", ex);
        }
    }
}
