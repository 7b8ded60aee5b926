namespace Platform.Graph;

/// <summary>What an operator does; decides which function interface its function implements.</summary>
[GenerateSerializer, Alias("platform.OperatorKind")]
public enum OperatorKind
{
    /// <summary>Reads records from an <see cref="Connectors.ISourceFunction{T}"/>.</summary>
    Source,

    /// <summary>Applies an <see cref="Functions.IMapFunction{TIn, TOut}"/>.</summary>
    Map,

    /// <summary>Applies an <see cref="Functions.IFlatMapFunction{TIn, TOut}"/>.</summary>
    FlatMap,

    /// <summary>Applies an <see cref="Functions.IFilterFunction{T}"/>.</summary>
    Filter,

    /// <summary>Applies a <see cref="Functions.KeyedProcessFunction{TKey, TIn, TOut}"/> to a keyed stream.</summary>
    KeyedProcess,

    /// <summary>Applies a <see cref="Functions.KeyedCoProcessFunction{TKey, TIn1, TIn2, TOut}"/> to two connected keyed streams.</summary>
    KeyedCoProcess,

    /// <summary>Writes records to an <see cref="Connectors.ISinkFunction{T}"/>.</summary>
    Sink,

    /// <summary>Assigns event timestamps and generates watermarks (<c>AssignTimestampsAndWatermarks</c>).</summary>
    TimestampsAndWatermarks,
}

/// <summary>How the records of an edge are distributed over the target operator's subtasks.</summary>
[GenerateSerializer, Alias("platform.Partitioning")]
public enum Partitioning
{
    /// <summary>Subtask i sends to subtask i; both sides have the same parallelism.</summary>
    Forward,

    /// <summary>Round-robin over all target subtasks.</summary>
    Rebalance,

    /// <summary>By key group: each key goes to the subtask that owns its key group (<c>KeyBy</c>).</summary>
    Hash,
}

/// <summary>A function referenced by its type, with its parameters: the function object serialized by Orleans.</summary>
[GenerateSerializer, Alias("platform.FunctionSpec")]
public sealed class FunctionSpec
{
    /// <summary>The function's type, as Orleans formats type names.</summary>
    [Id(0)] public required string TypeName { get; init; }

    /// <summary>The function object serialized with Orleans' serializer (its fields are its parameters).</summary>
    [Id(1)] public required byte[] Payload { get; init; }

    /// <inheritdoc />
    public override string ToString() => TypeName;
}

/// <summary>One operator of a job graph.</summary>
[GenerateSerializer, Alias("platform.JobVertex")]
public sealed class JobVertex
{
    /// <summary>The vertex's id within the graph.</summary>
    [Id(0)] public required int Id { get; init; }

    /// <summary>The operator's stable identity: state is matched to operators by uid when a job is restored.</summary>
    [Id(1)] public required string Uid { get; set; }

    /// <summary>The operator's display name, used in statuses and error messages.</summary>
    [Id(2)] public required string Name { get; set; }

    /// <summary>What the operator does.</summary>
    [Id(3)] public required OperatorKind Kind { get; set; }

    /// <summary>How many parallel subtasks run the operator.</summary>
    [Id(4)] public required int Parallelism { get; set; }

    /// <summary>The operator's function.</summary>
    [Id(5)] public required FunctionSpec Function { get; set; }

    /// <summary>The record type of each input (one for most operators, two for co-process, none for sources).</summary>
    [Id(6)] public List<string> InputTypes { get; set; } = [];

    /// <summary>The record type the operator emits; <c>null</c> for sinks.</summary>
    [Id(7)] public string? OutputType { get; set; }

    /// <inheritdoc />
    public override string ToString() => $"'{Name}' (uid '{Uid}')";
}

/// <summary>A connection from one operator's output to an input of another.</summary>
[GenerateSerializer, Alias("platform.JobEdge")]
public sealed class JobEdge
{
    /// <summary>The producing vertex.</summary>
    [Id(0)] public required int SourceId { get; set; }

    /// <summary>The consuming vertex.</summary>
    [Id(1)] public required int TargetId { get; set; }

    /// <summary>Which input of the target (0, or 1 for the second input of a co-process operator).</summary>
    [Id(2)] public int TargetInput { get; set; }

    /// <summary>How records are distributed over the target's subtasks.</summary>
    [Id(3)] public required Partitioning Partitioning { get; set; }

    /// <summary>The key selector of a <see cref="Graph.Partitioning.Hash"/> edge.</summary>
    [Id(4)] public FunctionSpec? KeySelector { get; set; }

    /// <summary>The key type of a <see cref="Graph.Partitioning.Hash"/> edge.</summary>
    [Id(5)] public string? KeyType { get; set; }
}

/// <summary>
/// A job as the cluster receives it: operators and the edges between them. Built with
/// <see cref="StreamJobBuilder"/>; validated by the job manager on submission.
/// </summary>
[GenerateSerializer, Alias("platform.JobGraph")]
public sealed class JobGraph
{
    /// <summary>The default number of key groups.</summary>
    public const int DefaultMaxParallelism = 128;

    /// <summary>The largest supported number of key groups (Flink's limit).</summary>
    public const int UpperBoundMaxParallelism = 32768;

    /// <summary>The job's name.</summary>
    [Id(0)] public required string Name { get; set; }

    /// <summary>The number of key groups keyed state is sharded into; bounds every operator's parallelism.</summary>
    [Id(1)] public int MaxParallelism { get; set; } = DefaultMaxParallelism;

    /// <summary>The operators.</summary>
    [Id(2)] public List<JobVertex> Vertices { get; set; } = [];

    /// <summary>The edges.</summary>
    [Id(3)] public List<JobEdge> Edges { get; set; } = [];

    /// <summary>Checkpointing; <c>null</c> or without an interval means no periodic checkpoints.</summary>
    [Id(4)] public Checkpointing.CheckpointingSettings? Checkpointing { get; set; }

    /// <summary>How the job restarts after a failure; <c>null</c> uses the default (exponential delay).</summary>
    [Id(5)] public Checkpointing.RestartStrategy? RestartStrategy { get; set; }

    /// <summary>Where keyed state lives; <c>null</c> uses the silos' default.</summary>
    [Id(6)] public State.StateBackendKind? StateBackend { get; set; }

    /// <summary>The savepoint or retained checkpoint the job starts from; <c>null</c> for empty state.</summary>
    [Id(7)] public Checkpointing.RestoreSettings? Restore { get; set; }

    /// <summary>What happens to records a source cannot read or an operator throws on; <c>null</c> fails the subtask.</summary>
    [Id(8)] public Connectors.PoisonRecordPolicy? PoisonRecords { get; set; }

    /// <summary>How often watermark generators emit (Flink's <c>pipeline.auto-watermark-interval</c>); 200 ms when null.</summary>
    [Id(9)] public TimeSpan? AutoWatermarkInterval { get; set; }

    /// <summary>Finds a vertex by id.</summary>
    public JobVertex? FindVertex(int id) => Vertices.Find(v => v.Id == id);
}
