using Orleans.Serialization;
using Orleans.Serialization.TypeSystem;
using Platform.Connectors;
using Platform.Functions;

namespace Platform.Graph;

/// <summary>
/// Builds a streaming job in C# (Flink's <c>StreamExecutionEnvironment</c>): add sources, transform the streams they
/// return, and end them in sinks. Functions are objects whose class the silos load and whose fields are serialized.
/// </summary>
public sealed class StreamJobBuilder
{
    private readonly List<OperatorNode> _nodes = [];

    /// <summary>Creates a builder for a job named <paramref name="name"/>.</summary>
    public StreamJobBuilder(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
    }

    /// <summary>The job's name.</summary>
    public string Name { get; }

    /// <summary>The number of key groups (default 128); no operator may run with more parallel subtasks.</summary>
    public int MaxParallelism { get; set; } = JobGraph.DefaultMaxParallelism;

    /// <summary>The parallelism of operators that do not set their own (default 1).</summary>
    public int DefaultParallelism { get; set; } = 1;

    /// <summary>The job's checkpointing settings (off unless an interval is set).</summary>
    public Checkpointing.CheckpointingSettings? Checkpointing { get; set; }

    /// <summary>How the job restarts after a failure (default: exponential delay).</summary>
    public Checkpointing.RestartStrategy? RestartStrategy { get; set; }

    /// <summary>What happens to records a source cannot read or an operator throws on; <c>null</c> fails the subtask naming the operator (and, at a source, the split and offset).</summary>
    public Connectors.PoisonRecordPolicy? PoisonRecords { get; set; }

    /// <summary>How often watermark generators emit (Flink's <c>pipeline.auto-watermark-interval</c>); 200 ms when null.</summary>
    public TimeSpan? AutoWatermarkInterval { get; set; }

    /// <summary>Where keyed state lives (default: the silos' default, heap unless configured).</summary>
    public State.StateBackendKind? StateBackend { get; set; }

    /// <summary>The savepoint or retained checkpoint the job starts from (state matched to operators by uid); <c>null</c> for empty state.</summary>
    public Checkpointing.RestoreSettings? RestoreFrom { get; set; }

    /// <summary>Turns on periodic checkpoints every <paramref name="interval"/>, in <paramref name="mode"/>.</summary>
    public StreamJobBuilder EnableCheckpointing(TimeSpan interval, Checkpointing.CheckpointingMode mode = Platform.Checkpointing.CheckpointingMode.ExactlyOnce)
    {
        Checkpointing = (Checkpointing ?? new()) with { Interval = interval, Mode = mode };
        return this;
    }

    /// <summary>Adds a source and returns the stream of its records.</summary>
    public DataStream<T> AddSource<T>(ISourceFunction<T> source, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        var node = AddNode(OperatorKind.Source, source, name, [], typeof(T));
        return new DataStream<T>(this, [node], node);
    }

    internal OperatorNode AddNode(OperatorKind kind, object function, string? name, Type[] inputTypes, Type? outputType)
    {
        ArgumentNullException.ThrowIfNull(function);
        var node = new OperatorNode(_nodes.Count + 1, kind, function, inputTypes, outputType)
        {
            Name = name ?? function.GetType().Name,
        };
        _nodes.Add(node);
        return node;
    }

    /// <summary>Turns the operators added so far into the graph submitted to the cluster.</summary>
    /// <param name="serializer">The client's serializer, which serializes the function objects.</param>
    public JobGraph ToJobGraph(Serializer serializer)
    {
        ArgumentNullException.ThrowIfNull(serializer);
        var graph = new JobGraph { Name = Name, MaxParallelism = MaxParallelism, Checkpointing = Checkpointing, RestartStrategy = RestartStrategy, StateBackend = StateBackend, Restore = RestoreFrom, PoisonRecords = PoisonRecords, AutoWatermarkInterval = AutoWatermarkInterval };
        foreach (var node in _nodes)
        {
            graph.Vertices.Add(new JobVertex
            {
                Id = node.Id,
                Uid = node.Uid ?? $"{node.Kind.ToString().ToLowerInvariant()}-{node.Id}",
                Name = node.Name,
                Kind = node.Kind,
                Parallelism = node.Parallelism ?? DefaultParallelism,
                Function = Spec(serializer, node.Function),
                InputTypes = [.. node.InputTypes.Select(FormatType)],
                OutputType = node.OutputType is null ? null : FormatType(node.OutputType),
            });
        }

        foreach (var node in _nodes)
        {
            foreach (var input in node.Inputs)
            {
                var sourceParallelism = input.Source.Parallelism ?? DefaultParallelism;
                var targetParallelism = node.Parallelism ?? DefaultParallelism;
                var partitioning = input.Partitioning
                    ?? (sourceParallelism == targetParallelism ? Partitioning.Forward : Partitioning.Rebalance);
                graph.Edges.Add(new JobEdge
                {
                    SourceId = input.Source.Id,
                    TargetId = node.Id,
                    TargetInput = input.InputIndex,
                    Partitioning = partitioning,
                    KeySelector = input.KeySelector is null ? null : Spec(serializer, input.KeySelector),
                    KeyType = input.KeyType is null ? null : FormatType(input.KeyType),
                });
            }
        }

        return graph;
    }

    /// <summary>Formats a type name the way the job graph carries it.</summary>
    public static string FormatType(Type type) => RuntimeTypeNameFormatter.Format(type);

    private static FunctionSpec Spec(Serializer serializer, object function) => new()
    {
        TypeName = FormatType(function.GetType()),
        Payload = SerializeFunction(serializer, function),
    };

    private static byte[] SerializeFunction(Serializer serializer, object function)
    {
        if (!serializer.CanSerialize(function.GetType()))
        {
            throw new ArgumentException(
                $"Function type '{function.GetType().FullName}' cannot be serialized by Orleans: mark it [GenerateSerializer] " +
                "(and its parameter fields or properties [Id(n)]) so that it can be shipped to the silos.");
        }

        return serializer.SerializeToArray<object>(function);
    }
}

/// <summary>An operator added to a <see cref="StreamJobBuilder"/>.</summary>
internal sealed class OperatorNode(int id, OperatorKind kind, object function, Type[] inputTypes, Type? outputType)
{
    public int Id { get; } = id;
    public OperatorKind Kind { get; } = kind;
    public object Function { get; } = function;
    public Type[] InputTypes { get; } = inputTypes;
    public Type? OutputType { get; } = outputType;
    public required string Name { get; set; }
    public string? Uid { get; set; }
    public int? Parallelism { get; set; }
    public List<NodeInput> Inputs { get; } = [];
}

/// <summary>An edge into an <see cref="OperatorNode"/>; a null partitioning means forward when parallelisms match, else rebalance.</summary>
internal sealed record NodeInput(OperatorNode Source, int InputIndex, Partitioning? Partitioning, object? KeySelector, Type? KeyType);

/// <summary>A stream of records of type <typeparamref name="T"/> (Flink's <c>DataStream</c>).</summary>
public sealed class DataStream<T>
{
    private readonly StreamJobBuilder _builder;
    private readonly OperatorNode[] _producers;
    private readonly OperatorNode? _operator;
    private readonly Partitioning? _partitioning;

    // The operator this stream stands for (uid, name, parallelism) when it is split off that operator's output: a
    // window with a late-data side output. Its side outputs, created when first asked for.
    private OperatorNode? _owner;
    private Dictionary<string, (Func<object> Create, object? Stream)>? _sideOutputs;

    internal DataStream(StreamJobBuilder builder, OperatorNode[] producers, OperatorNode? @operator, Partitioning? partitioning = null)
    {
        _builder = builder;
        _producers = producers;
        _operator = @operator;
        _partitioning = partitioning;
    }

    /// <summary>Sets the uid of the operator that produces this stream; state is matched to operators by uid on restore.</summary>
    public DataStream<T> Uid(string uid)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(uid);
        if (_owner is not null)
        {
            _owner.Uid = uid;
            Operator(nameof(Uid)).Uid = $"{uid}/results";
            return this;
        }

        Operator(nameof(Uid)).Uid = uid;
        return this;
    }

    /// <summary>Sets the display name of the operator that produces this stream.</summary>
    public DataStream<T> Name(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (_owner is not null)
        {
            _owner.Name = name;
            Operator(nameof(Name)).Name = $"{name}/results";
            return this;
        }

        Operator(nameof(Name)).Name = name;
        return this;
    }

    /// <summary>Sets how many parallel subtasks run the operator that produces this stream.</summary>
    public DataStream<T> SetParallelism(int parallelism)
    {
        Operator(nameof(SetParallelism)).Parallelism = parallelism;
        if (_owner is not null)
        {
            _owner.Parallelism = parallelism;
        }

        return this;
    }

    /// <summary>
    /// The side output <paramref name="tag"/> of the operator that produced this stream (Flink's <c>getSideOutput</c>),
    /// for example a window's late records (<c>SideOutputLateData</c>).
    /// </summary>
    /// <exception cref="InvalidOperationException">The operator declared no side output of that name.</exception>
    /// <exception cref="ArgumentException">The side output carries records of another type.</exception>
    public DataStream<TSide> GetSideOutput<TSide>(OutputTag<TSide> tag)
    {
        ArgumentNullException.ThrowIfNull(tag);
        if (_sideOutputs is null || !_sideOutputs.TryGetValue(tag.Id, out var side))
        {
            throw new InvalidOperationException(
                $"The operator that produced this stream has no side output '{tag.Id}'" +
                (_sideOutputs is { Count: > 0 } ? $" (it has {string.Join(", ", _sideOutputs.Keys.Select(k => $"'{k}'"))})" : "") +
                ". Declare it on the operator first: for a window's late records, SideOutputLateData(tag) before the window function.");
        }

        if (side.Stream is null)
        {
            side.Stream = side.Create();
            _sideOutputs[tag.Id] = side;
        }

        return side.Stream as DataStream<TSide> ?? throw new ArgumentException(
            $"The side output '{tag.Id}' carries {side.Stream.GetType().GenericTypeArguments[0].Name} records, not {typeof(TSide).Name}.", nameof(tag));
    }

    internal DataStream<T> StandingFor<TOwner>(DataStream<TOwner> owner, string sideOutputId, Func<object> createSideOutput)
    {
        _owner = owner._operator;
        _sideOutputs = new(StringComparer.Ordinal) { [sideOutputId] = (createSideOutput, null) };
        return this;
    }

    /// <summary>Applies <paramref name="function"/> to every record.</summary>
    public DataStream<TOut> Map<TOut>(IMapFunction<T, TOut> function, string? name = null) =>
        Then<TOut>(OperatorKind.Map, function, name);

    /// <summary>Applies <paramref name="function"/> to every record, emitting zero or more records each.</summary>
    public DataStream<TOut> FlatMap<TOut>(IFlatMapFunction<T, TOut> function, string? name = null) =>
        Then<TOut>(OperatorKind.FlatMap, function, name);

    /// <summary>Keeps the records <paramref name="function"/> accepts.</summary>
    public DataStream<T> Filter(IFilterFunction<T> function, string? name = null) =>
        Then<T>(OperatorKind.Filter, function, name);

    /// <summary>
    /// Assigns each record's event time and generates watermarks by <paramref name="strategy"/> (Flink's
    /// <c>assignTimestampsAndWatermarks</c>), chained after the operator before it. Watermarks arriving from upstream
    /// are replaced by the ones generated here.
    /// </summary>
    public DataStream<T> AssignTimestampsAndWatermarks(WatermarkStrategy<T> strategy, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(strategy);
        if (strategy.Assigner is null)
        {
            throw new ArgumentException("The watermark strategy has no timestamp assigner; add one with WithTimestampAssigner.", nameof(strategy));
        }

        return Then<T>(OperatorKind.TimestampsAndWatermarks, strategy, name ?? "Timestamps/Watermarks");
    }

    /// <summary>Partitions the stream by key: records with equal keys go to the same subtask and share keyed state.</summary>
    public KeyedStream<T, TKey> KeyBy<TKey>(IKeySelector<T, TKey> keySelector)
        where TKey : notnull
    {
        ArgumentNullException.ThrowIfNull(keySelector);
        return new KeyedStream<T, TKey>(_builder, _producers, keySelector);
    }

    /// <summary>Distributes the records round-robin over the next operator's subtasks.</summary>
    public DataStream<T> Rebalance() => new(_builder, _producers, null, Partitioning.Rebalance);

    /// <summary>Merges this stream with <paramref name="others"/> of the same type into one stream.</summary>
    public DataStream<T> Union(params DataStream<T>[] others)
    {
        ArgumentNullException.ThrowIfNull(others);
        var producers = new List<OperatorNode>(_producers);
        foreach (var other in others)
        {
            if (other._builder != _builder)
            {
                throw new ArgumentException("Only streams of the same job can be united.", nameof(others));
            }

            producers.AddRange(other._producers);
        }

        return new DataStream<T>(_builder, [.. producers], null, _partitioning);
    }

    /// <summary>Ends the stream in <paramref name="sink"/>.</summary>
    public DataStreamSink SinkTo(ISinkFunction<T> sink, string? name = null)
    {
        var node = _builder.AddNode(OperatorKind.Sink, sink, name, [typeof(T)], null);
        ConnectInto(node, 0, _partitioning, null, null);
        return new DataStreamSink(node);
    }

    private DataStream<TOut> Then<TOut>(OperatorKind kind, object function, string? name)
    {
        var node = _builder.AddNode(kind, function, name, [typeof(T)], typeof(TOut));
        ConnectInto(node, 0, _partitioning, null, null);
        return new DataStream<TOut>(_builder, [node], node);
    }

    internal void ConnectInto(OperatorNode target, int inputIndex, Partitioning? partitioning, object? keySelector, Type? keyType)
    {
        foreach (var producer in _producers)
        {
            target.Inputs.Add(new NodeInput(producer, inputIndex, partitioning, keySelector, keyType));
        }
    }

    internal StreamJobBuilder Builder => _builder;

    private OperatorNode Operator(string method) => _operator
        ?? throw new InvalidOperationException(
            $"{method} applies to the operator that produced a stream; a united or repartitioned stream has none. Call it on the stream before Union, KeyBy or Rebalance.");
}

/// <summary>A stream partitioned by key (Flink's <c>KeyedStream</c>): keyed state and keyed functions apply to it.</summary>
public sealed class KeyedStream<T, TKey>
    where TKey : notnull
{
    private readonly StreamJobBuilder _builder;
    private readonly OperatorNode[] _producers;

    internal KeyedStream(StreamJobBuilder builder, OperatorNode[] producers, IKeySelector<T, TKey> keySelector)
    {
        _builder = builder;
        _producers = producers;
        KeySelector = keySelector;
    }

    internal IKeySelector<T, TKey> KeySelector { get; }

    /// <summary>Processes every record with <paramref name="function"/>, which may use keyed state.</summary>
    public DataStream<TOut> Process<TOut>(KeyedProcessFunction<TKey, T, TOut> function, string? name = null)
    {
        var node = _builder.AddNode(OperatorKind.KeyedProcess, function, name, [typeof(T)], typeof(TOut));
        ConnectInto(node, 0);
        return new DataStream<TOut>(_builder, [node], node);
    }

    /// <summary>Cuts the keyed stream into windows (Flink's <c>window</c>): tumbling or sliding, over event or processing time.</summary>
    public Windowing.WindowedStream<T, TKey> Window(Windowing.WindowAssigner assigner)
    {
        ArgumentNullException.ThrowIfNull(assigner);
        return new Windowing.WindowedStream<T, TKey>(this, assigner);
    }

    /// <summary>Connects this keyed stream with another keyed on the same key type, for a two-input co-process function.</summary>
    public ConnectedStreams<T, T2, TKey> Connect<T2>(KeyedStream<T2, TKey> other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other._builder != _builder)
        {
            throw new ArgumentException("Only streams of the same job can be connected.", nameof(other));
        }

        return new ConnectedStreams<T, T2, TKey>(_builder, this, other);
    }

    internal void ConnectInto(OperatorNode target, int inputIndex)
    {
        foreach (var producer in _producers)
        {
            target.Inputs.Add(new NodeInput(producer, inputIndex, Partitioning.Hash, KeySelector, typeof(TKey)));
        }
    }
}

/// <summary>Two keyed streams connected for a <see cref="KeyedCoProcessFunction{TKey, TIn1, TIn2, TOut}"/>.</summary>
public sealed class ConnectedStreams<T1, T2, TKey>
    where TKey : notnull
{
    private readonly StreamJobBuilder _builder;
    private readonly KeyedStream<T1, TKey> _first;
    private readonly KeyedStream<T2, TKey> _second;

    internal ConnectedStreams(StreamJobBuilder builder, KeyedStream<T1, TKey> first, KeyedStream<T2, TKey> second)
    {
        _builder = builder;
        _first = first;
        _second = second;
    }

    /// <summary>Processes both inputs with <paramref name="function"/>; state is shared by both inputs per key.</summary>
    public DataStream<TOut> Process<TOut>(KeyedCoProcessFunction<TKey, T1, T2, TOut> function, string? name = null)
    {
        var node = _builder.AddNode(OperatorKind.KeyedCoProcess, function, name, [typeof(T1), typeof(T2)], typeof(TOut));
        _first.ConnectInto(node, 0);
        _second.ConnectInto(node, 1);
        return new DataStream<TOut>(_builder, [node], node);
    }
}

/// <summary>The end of a stream in a sink.</summary>
public sealed class DataStreamSink
{
    private readonly OperatorNode _node;

    internal DataStreamSink(OperatorNode node) => _node = node;

    /// <summary>Sets the sink's uid.</summary>
    public DataStreamSink Uid(string uid)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(uid);
        _node.Uid = uid;
        return this;
    }

    /// <summary>Sets the sink's display name.</summary>
    public DataStreamSink Name(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        _node.Name = name;
        return this;
    }

    /// <summary>Sets the sink's parallelism.</summary>
    public DataStreamSink SetParallelism(int parallelism)
    {
        _node.Parallelism = parallelism;
        return this;
    }
}
