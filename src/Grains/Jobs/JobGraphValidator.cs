using Orleans.Serialization;
using Platform.Connectors;
using Platform.Functions;
using Platform.Graph;
using Platform.Tasks;

namespace Platform.Jobs;

/// <summary>
/// Checks a submitted job graph on the silo, where its types must load, and reports every problem at once:
/// unknown or mismatched types, functions of the wrong kind, keyed functions without KeyBy, duplicate uids,
/// parallelism above max parallelism, cycles, and settings that connectors check themselves.
/// </summary>
internal sealed class JobGraphValidator(Serializer serializer, Storage.FileSystem.DataRoots dataRoots)
{
    public IReadOnlyList<string> Validate(JobGraph graph)
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(graph.Name))
        {
            problems.Add("The job has no name.");
        }

        if (graph.MaxParallelism is < 1 or > JobGraph.UpperBoundMaxParallelism)
        {
            problems.Add($"Max parallelism {graph.MaxParallelism} is out of range; it must be between 1 and {JobGraph.UpperBoundMaxParallelism}.");
        }

        ValidateSettings(graph, problems);

        if (graph.Vertices.Count == 0)
        {
            problems.Add("The job has no operators: add a source and a sink.");
            return problems;
        }

        foreach (var group in graph.Vertices.GroupBy(v => v.Id).Where(g => g.Count() > 1))
        {
            problems.Add($"Vertex id {group.Key} is used by {group.Count()} operators; ids must be unique.");
        }

        foreach (var group in graph.Vertices.GroupBy(v => v.Uid, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            problems.Add($"Uid '{group.Key}' is used by operators {string.Join(", ", group.Select(v => $"'{v.Name}'"))}; every operator needs its own uid.");
        }

        var byId = graph.Vertices.GroupBy(v => v.Id).ToDictionary(g => g.Key, g => g.First());
        var types = new Dictionary<string, Type?>(StringComparer.Ordinal);
        foreach (var vertex in graph.Vertices)
        {
            ValidateVertex(graph, vertex, types, problems);
        }

        if (!graph.Vertices.Any(v => v.Kind == OperatorKind.Source))
        {
            problems.Add("The job has no source.");
        }

        if (!graph.Vertices.Any(v => v.Kind == OperatorKind.Sink))
        {
            problems.Add("The job has no sink: end every stream in a sink (SinkTo).");
        }

        var edgesOk = true;
        foreach (var edge in graph.Edges)
        {
            edgesOk &= ValidateEdge(graph, edge, byId, types, problems);
        }

        foreach (var vertex in graph.Vertices)
        {
            for (var input = 0; input < vertex.InputTypes.Count; input++)
            {
                if (!graph.Edges.Any(e => e.TargetId == vertex.Id && e.TargetInput == input))
                {
                    problems.Add($"Input {input} of operator {vertex} is not connected to any stream.");
                }
            }

            if (vertex.Kind != OperatorKind.Sink && !graph.Edges.Any(e => e.SourceId == vertex.Id))
            {
                problems.Add($"The output of operator {vertex} is not consumed: connect it to another operator or a sink.");
            }

            if (vertex.Kind is OperatorKind.KeyedProcess or OperatorKind.KeyedCoProcess)
            {
                ValidateKeyedInputs(graph, vertex, byId, problems);
            }
        }

        if (edgesOk && FindCycle(graph) is { } cycle)
        {
            problems.Add($"The job graph has a cycle: {string.Join(" -> ", cycle.Select(v => $"'{v.Name}'"))}. Streams must flow from sources to sinks without loops.");
        }

        return problems;
    }

    private void ValidateSettings(JobGraph graph, List<string> problems)
    {
        if (graph.PoisonRecords is { } poison)
        {
            // Outside the data roots, the directory is not even created (which validating it would do).
            if (poison.DeadLetterDirectory is { } deadLetters && dataRoots.Problem("PoisonRecords.DeadLetterDirectory", deadLetters) is { } outside)
            {
                problems.Add(outside);
            }
            else
            {
                ValidatePoisonRecords(poison, problems);
            }
        }

        if (graph.StateBackend is { } backend && !Enum.IsDefined(backend))
        {
            problems.Add($"State backend {(int)backend} is unknown; use Heap or RocksDb.");
        }

        if (graph.Checkpointing is { } c)
        {
            if (c.Interval is { } interval && interval < TimeSpan.FromMilliseconds(10))
            {
                problems.Add($"Checkpointing interval {interval} is too short; it must be at least 10 ms (or unset to turn periodic checkpoints off).");
            }

            if (c.Timeout <= TimeSpan.Zero)
            {
                problems.Add($"Checkpoint timeout {c.Timeout} must be positive.");
            }

            if (c.MinPauseBetweenCheckpoints < TimeSpan.Zero)
            {
                problems.Add($"Minimum pause between checkpoints {c.MinPauseBetweenCheckpoints} must not be negative.");
            }

            if (c.MaxConcurrentCheckpoints < 1)
            {
                problems.Add($"Max concurrent checkpoints is {c.MaxConcurrentCheckpoints}; it must be at least 1.");
            }

            if (c.TolerableFailedCheckpoints < 0)
            {
                problems.Add($"Tolerable failed checkpoints is {c.TolerableFailedCheckpoints}; it must be 0 or more.");
            }

            if (c.RetainedCheckpoints < 1)
            {
                problems.Add($"Retained checkpoints is {c.RetainedCheckpoints}; at least 1 must be kept for recovery.");
            }

            // Checked, not created: the first checkpoint creates it.
            if (c.Directory is { } directory && Storage.FileSystem.DirectorySetting.Problem("The checkpoint directory", directory) is { } problem)
            {
                problems.Add($"{problem} (as the silo sees it)");
            }
        }

        if (graph.RestartStrategy is { } r && (r.MaxAttempts < 0 || r.Delay < TimeSpan.Zero || r.InitialBackoff <= TimeSpan.Zero || r.MaxBackoff < r.InitialBackoff || r.BackoffMultiplier < 1 || r.FailureRateInterval <= TimeSpan.Zero))
        {
            problems.Add($"Restart strategy {r.Kind} has invalid settings: attempts must be 0 or more, delays non-negative, the initial backoff positive and at most the max backoff, the multiplier at least 1, the failure-rate interval positive.");
        }
    }

    private void ValidateVertex(JobGraph graph, JobVertex vertex, Dictionary<string, Type?> types, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(vertex.Uid))
        {
            problems.Add($"Operator '{vertex.Name}' has an empty uid.");
        }

        if (vertex.Parallelism < 1)
        {
            problems.Add($"Operator {vertex} has parallelism {vertex.Parallelism}; it must be at least 1.");
        }
        else if (vertex.Parallelism > graph.MaxParallelism)
        {
            problems.Add($"Operator {vertex} has parallelism {vertex.Parallelism}, above the job's max parallelism {graph.MaxParallelism}; lower the parallelism or raise the max parallelism.");
        }

        var expectedInputs = vertex.Kind switch
        {
            OperatorKind.Source => 0,
            OperatorKind.KeyedCoProcess => 2,
            _ => 1,
        };
        if (vertex.InputTypes.Count != expectedInputs)
        {
            problems.Add($"Operator {vertex} of kind {vertex.Kind} declares {vertex.InputTypes.Count} inputs; it must have {expectedInputs}.");
            return;
        }

        if (vertex.Kind == OperatorKind.Sink ? vertex.OutputType is not null : vertex.OutputType is null)
        {
            problems.Add(vertex.Kind == OperatorKind.Sink
                ? $"Sink {vertex} declares an output type; sinks emit nothing."
                : $"Operator {vertex} declares no output type.");
            return;
        }

        var inputTypes = vertex.InputTypes.Select(t => RecordType(t, vertex, types, problems)).ToArray();
        var outputType = vertex.OutputType is null ? null : RecordType(vertex.OutputType, vertex, types, problems);
        var function = LoadFunction(vertex.Function, $"operator {vertex}", problems);
        if (function is null || inputTypes.Any(t => t is null) || (vertex.OutputType is not null && outputType is null))
        {
            return;
        }

        var functionType = function.GetType();
        var (expected, ok) = vertex.Kind switch
        {
            OperatorKind.Source => ($"ISourceFunction<{outputType!.Name}>", Implements(functionType, typeof(ISourceFunction<>), outputType)),
            OperatorKind.Map => ($"IMapFunction<{inputTypes[0]!.Name}, {outputType!.Name}>", Implements(functionType, typeof(IMapFunction<,>), inputTypes[0]!, outputType)),
            OperatorKind.FlatMap => ($"IFlatMapFunction<{inputTypes[0]!.Name}, {outputType!.Name}>", Implements(functionType, typeof(IFlatMapFunction<,>), inputTypes[0]!, outputType)),
            OperatorKind.Filter => ($"IFilterFunction<{inputTypes[0]!.Name}> with equal input and output types", inputTypes[0] == outputType && Implements(functionType, typeof(IFilterFunction<>), inputTypes[0]!)),
            OperatorKind.TimestampsAndWatermarks => ($"WatermarkStrategy<{inputTypes[0]!.Name}> with a timestamp assigner and equal input and output types",
                inputTypes[0] == outputType && functionType == typeof(WatermarkStrategy<>).MakeGenericType(inputTypes[0]!) && HasAssigner(function)),
            OperatorKind.Sink => ($"ISinkFunction<{inputTypes[0]!.Name}>", Implements(functionType, typeof(ISinkFunction<>), inputTypes[0]!)),
            OperatorKind.KeyedProcess => ($"KeyedProcessFunction<TKey, {inputTypes[0]!.Name}, {outputType!.Name}>", DerivesFrom(functionType, typeof(KeyedProcessFunction<,,>), null, inputTypes[0]!, outputType)),
            OperatorKind.KeyedCoProcess => ($"KeyedCoProcessFunction<TKey, {inputTypes[0]!.Name}, {inputTypes[1]!.Name}, {outputType!.Name}>", DerivesFrom(functionType, typeof(KeyedCoProcessFunction<,,,>), null, inputTypes[0]!, inputTypes[1]!, outputType)),
            _ => ($"a known operator kind", false),
        };
        if (!ok)
        {
            problems.Add($"The function of operator {vertex} is a {functionType.Name}, which is not {expected}: its types do not match the stream's.");
        }

        // Files outside the data roots are refused before the function's own checks run: those would open them.
        var outside = function is IFileSystemFunction files
            ? files.FileSystemPaths.Select(path => dataRoots.Problem($"Operator {vertex}: the path", path)).OfType<string>().ToList()
            : [];
        problems.AddRange(outside);
        if (outside.Count == 0 && function is IValidatingFunction validating)
        {
            try
            {
                problems.AddRange(validating.Validate().Select(p => $"Operator {vertex}: {p}"));
            }
            catch (Exception ex)
            {
                problems.Add($"Operator {vertex}: validating its settings failed: {ex.Message}");
            }
        }
    }

    private bool ValidateEdge(JobGraph graph, JobEdge edge, Dictionary<int, JobVertex> byId, Dictionary<string, Type?> types, List<string> problems)
    {
        if (!byId.TryGetValue(edge.SourceId, out var source) | !byId.TryGetValue(edge.TargetId, out var target))
        {
            problems.Add($"An edge connects vertex {edge.SourceId} to vertex {edge.TargetId}, but {(source is null ? edge.SourceId : edge.TargetId)} is not in the graph.");
            return false;
        }

        if (source!.Kind == OperatorKind.Sink)
        {
            problems.Add($"Sink {source} has an outgoing edge to {target}; sinks emit nothing.");
            return true;
        }

        if (edge.TargetInput < 0 || edge.TargetInput >= target!.InputTypes.Count)
        {
            problems.Add($"An edge from {source} goes to input {edge.TargetInput} of {target}, which has {target!.InputTypes.Count} input(s).");
            return true;
        }

        var produced = source.OutputType;
        var expected = target.InputTypes[edge.TargetInput];
        if (produced is not null && !string.Equals(produced, expected, StringComparison.Ordinal))
        {
            problems.Add($"Mismatched types: operator {source} emits {ShortName(produced, types)} but input {edge.TargetInput} of operator {target} expects {ShortName(expected, types)}.");
        }

        switch (edge.Partitioning)
        {
            case Partitioning.Forward when source.Parallelism != target.Parallelism:
                problems.Add($"The forward edge from {source} (parallelism {source.Parallelism}) to {target} (parallelism {target.Parallelism}) needs equal parallelism; use Rebalance or KeyBy, or equal parallelism.");
                break;
            case Partitioning.Hash:
                ValidateKeySelector(edge, source, target, types, problems);
                break;
        }

        return true;
    }

    private void ValidateKeySelector(JobEdge edge, JobVertex source, JobVertex target, Dictionary<string, Type?> types, List<string> problems)
    {
        if (edge.KeySelector is null || edge.KeyType is null)
        {
            problems.Add($"The keyed edge from {source} to {target} has no key selector.");
            return;
        }

        var keyType = RecordType(edge.KeyType, target, types, problems, what: "key type");
        var recordType = source.OutputType is null ? null : Resolve(source.OutputType, types);
        var selector = LoadFunction(edge.KeySelector, $"the KeyBy from {source} to {target}", problems);
        if (keyType is null || recordType is null || selector is null)
        {
            return;
        }

        if (!Implements(selector.GetType(), typeof(IKeySelector<,>), recordType, keyType))
        {
            problems.Add($"The key selector {selector.GetType().Name} of the KeyBy from {source} to {target} is not an IKeySelector<{recordType.Name}, {keyType.Name}>.");
        }
    }

    private static void ValidateKeyedInputs(JobGraph graph, JobVertex vertex, Dictionary<int, JobVertex> byId, List<string> problems)
    {
        var inputs = graph.Edges.Where(e => e.TargetId == vertex.Id).ToList();
        foreach (var edge in inputs.Where(e => e.Partitioning != Partitioning.Hash))
        {
            var from = byId.TryGetValue(edge.SourceId, out var s) ? s.ToString() : $"vertex {edge.SourceId}";
            problems.Add($"Operator {vertex} is a keyed function, but its input from {from} is not keyed: call KeyBy on the stream before applying it.");
        }

        var keyTypes = inputs.Where(e => e.Partitioning == Partitioning.Hash && e.KeyType is not null).Select(e => e.KeyType!).Distinct(StringComparer.Ordinal).ToList();
        if (keyTypes.Count > 1)
        {
            problems.Add($"The inputs of keyed operator {vertex} are keyed by different key types ({string.Join(", ", keyTypes)}); both sides must use the same key type.");
        }

        foreach (var gate in inputs.Where(e => e.Partitioning == Partitioning.Hash && e.KeySelector is not null).GroupBy(e => e.TargetInput))
        {
            if (gate.Select(e => e.KeySelector!.TypeName).Distinct(StringComparer.Ordinal).Count() > 1)
            {
                problems.Add($"Input {gate.Key} of keyed operator {vertex} receives streams keyed by different key selectors; key united streams with one selector.");
            }
        }

        if (vertex.Kind == OperatorKind.KeyedProcess || vertex.Kind == OperatorKind.KeyedCoProcess)
        {
            var keyType = keyTypes.Count == 1 ? TypeResolver.TryResolve(keyTypes[0]) : null;
            if (keyType is not null && TypeResolver.TryResolve(vertex.Function.TypeName) is { } functionType)
            {
                var definition = vertex.Kind == OperatorKind.KeyedProcess ? typeof(KeyedProcessFunction<,,>) : typeof(KeyedCoProcessFunction<,,,>);
                var baseType = FindGenericBase(functionType, definition);
                if (baseType is not null && baseType.GetGenericArguments()[0] != keyType)
                {
                    problems.Add($"Operator {vertex} is keyed by {keyType.Name}, but its function expects keys of type {baseType.GetGenericArguments()[0].Name}.");
                }
            }
        }
    }

    private object? LoadFunction(FunctionSpec spec, string owner, List<string> problems)
    {
        if (TypeResolver.TryResolve(spec.TypeName) is null)
        {
            problems.Add($"The function type '{spec.TypeName}' of {owner} is not known on the silo: deploy the assembly that defines it with the silos.");
            return null;
        }

        try
        {
            return FunctionLoader.Load(serializer, spec, owner);
        }
        catch (Exception ex)
        {
            problems.Add(ex.Message);
            return null;
        }
    }

    private Type? RecordType(string name, JobVertex vertex, Dictionary<string, Type?> types, List<string> problems, string what = "record type")
    {
        var type = Resolve(name, types);
        if (type is null)
        {
            problems.Add($"The {what} '{name}' of operator {vertex} is not known on the silo: deploy the assembly that defines it with the silos.");
            return null;
        }

        if (!serializer.CanSerialize(type))
        {
            problems.Add($"The {what} {type.FullName} of operator {vertex} has no Orleans serializer: mark it [GenerateSerializer] (with [Id] on its members).");
            return null;
        }

        return type;
    }

    private static Type? Resolve(string name, Dictionary<string, Type?> types)
    {
        if (!types.TryGetValue(name, out var type))
        {
            type = TypeResolver.TryResolve(name);
            types[name] = type;
        }

        return type;
    }

    private static string ShortName(string name, Dictionary<string, Type?> types) => Resolve(name, types)?.Name ?? name;

    private static bool Implements(Type type, Type genericInterface, params Type[] arguments) =>
        type.GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == genericInterface && i.GetGenericArguments().SequenceEqual(arguments));

    private static bool DerivesFrom(Type type, Type genericBase, Type? keyType, params Type[] rest)
    {
        var baseType = FindGenericBase(type, genericBase);
        if (baseType is null)
        {
            return false;
        }

        var arguments = baseType.GetGenericArguments();
        return (keyType is null || arguments[0] == keyType) && arguments.Skip(1).SequenceEqual(rest);
    }

    private static Type? FindGenericBase(Type type, Type genericBase)
    {
        for (var current = type; current is not null; current = current.BaseType)
        {
            if (current.IsGenericType && current.GetGenericTypeDefinition() == genericBase)
            {
                return current;
            }
        }

        return null;
    }

    private static List<JobVertex>? FindCycle(JobGraph graph)
    {
        var byId = graph.Vertices.GroupBy(v => v.Id).ToDictionary(g => g.Key, g => g.First());
        var state = new Dictionary<int, int>(); // 0 new, 1 on stack, 2 done
        var stack = new List<JobVertex>();

        List<JobVertex>? Visit(JobVertex vertex)
        {
            state[vertex.Id] = 1;
            stack.Add(vertex);
            foreach (var edge in graph.Edges.Where(e => e.SourceId == vertex.Id))
            {
                var next = byId[edge.TargetId];
                var s = state.GetValueOrDefault(next.Id);
                if (s == 1)
                {
                    var start = stack.FindIndex(v => v.Id == next.Id);
                    return [.. stack.Skip(start), next];
                }

                if (s == 0 && Visit(next) is { } cycle)
                {
                    return cycle;
                }
            }

            stack.RemoveAt(stack.Count - 1);
            state[vertex.Id] = 2;
            return null;
        }

        foreach (var vertex in byId.Values)
        {
            if (state.GetValueOrDefault(vertex.Id) == 0 && Visit(vertex) is { } cycle)
            {
                return cycle;
            }
        }

        return null;
    }

    private static void ValidatePoisonRecords(PoisonRecordPolicy poison, List<string> problems)
    {
        if (!Enum.IsDefined(poison.Action))
        {
            problems.Add($"PoisonRecords.Action {(int)poison.Action} is unknown; use Fail or Skip.");
        }

        if (poison.MaxSkippedPerSubtask is < 0)
        {
            problems.Add($"PoisonRecords.MaxSkippedPerSubtask is {poison.MaxSkippedPerSubtask}; it must be 0 or more (or unset for no limit).");
        }

        if (poison.Action != PoisonRecordAction.Skip)
        {
            return;
        }

        if (string.IsNullOrWhiteSpace(poison.DeadLetterDirectory))
        {
            problems.Add("PoisonRecords.Action is Skip but PoisonRecords.DeadLetterDirectory is not set: set it to a directory the silos can write, where skipped records are kept (a skipped record is never just dropped).");
            return;
        }

        try
        {
            var full = Path.GetFullPath(poison.DeadLetterDirectory);
            if (File.Exists(full))
            {
                problems.Add($"PoisonRecords.DeadLetterDirectory '{full}' is a file; it must be a directory.");
                return;
            }

            Directory.CreateDirectory(full);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            problems.Add($"PoisonRecords.DeadLetterDirectory '{poison.DeadLetterDirectory}' cannot be created: {ex.Message}");
        }
    }

    private static bool HasAssigner(object strategy) =>
        strategy.GetType().GetProperty(nameof(WatermarkStrategy<object>.Assigner))?.GetValue(strategy) is not null;
}
