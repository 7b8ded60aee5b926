using Platform.Graph;
using Platform.State;
using Platform.Tasks;

namespace Platform.Jobs;

/// <summary>
/// A job graph expanded for execution (Flink's ExecutionGraph): operators chained into tasks where records can be
/// handed over by a direct call, each task expanded into parallel subtasks, and every channel between subtasks
/// numbered on both of its ends.
/// </summary>
internal sealed class ExecutionPlan
{
    private readonly Dictionary<int, PlannedTask> _taskOfVertex;

    private ExecutionPlan(JobGraph graph, List<PlannedTask> tasks, Dictionary<int, PlannedTask> taskOfVertex)
    {
        Graph = graph;
        Tasks = tasks;
        _taskOfVertex = taskOfVertex;
    }

    public JobGraph Graph { get; }

    public IReadOnlyList<PlannedTask> Tasks { get; }

    /// <summary>Every subtask of every task.</summary>
    public IEnumerable<TaskId> Subtasks(string jobId) =>
        Tasks.SelectMany(t => Enumerable.Range(0, t.Parallelism).Select(i => new TaskId(jobId, t.Index, i)));

    public static ExecutionPlan Build(JobGraph graph)
    {
        var incoming = graph.Vertices.ToDictionary(v => v.Id, v => graph.Edges.Where(e => e.TargetId == v.Id).ToList());
        var outgoing = graph.Vertices.ToDictionary(v => v.Id, v => graph.Edges.Where(e => e.SourceId == v.Id).ToList());
        var byId = graph.Vertices.ToDictionary(v => v.Id);

        // Chain a vertex to its producer when the producer's only edge is a forward edge into it, with equal parallelism.
        var chainOf = new Dictionary<int, List<JobVertex>>();
        var chains = new List<List<JobVertex>>();
        foreach (var vertex in TopologicalOrder(graph, incoming))
        {
            var inputs = incoming[vertex.Id];
            if (inputs is [{ Partitioning: Partitioning.Forward } edge]
                && outgoing[edge.SourceId].Count == 1
                && byId[edge.SourceId].Parallelism == vertex.Parallelism
                && vertex.Kind != OperatorKind.Source)
            {
                var chain = chainOf[edge.SourceId];
                chain.Add(vertex);
                chainOf[vertex.Id] = chain;
            }
            else
            {
                var chain = new List<JobVertex> { vertex };
                chains.Add(chain);
                chainOf[vertex.Id] = chain;
            }
        }

        var tasks = chains.Select((chain, index) => new PlannedTask(index, chain, incoming[chain[0].Id], outgoing[chain[^1].Id])).ToList();
        var taskOfVertex = tasks.SelectMany(t => t.Chain.Select(v => (v.Id, t))).ToDictionary(x => x.Id, x => x.t);

        // Receiver side: number each subtask's input channels by (edge, upstream subtask).
        foreach (var task in tasks)
        {
            for (var subtask = 0; subtask < task.Parallelism; subtask++)
            {
                var channels = new List<(JobEdge Edge, int UpstreamSubtask)>();
                foreach (var edge in task.InputEdges)
                {
                    var upstream = taskOfVertex[edge.SourceId];
                    if (edge.Partitioning == Partitioning.Forward)
                    {
                        channels.Add((edge, subtask));
                    }
                    else
                    {
                        for (var u = 0; u < upstream.Parallelism; u++)
                        {
                            channels.Add((edge, u));
                        }
                    }
                }

                task.InputChannels.Add(channels);
            }
        }

        // Sender side: number each subtask's output channels by (edge, target subtask), and tell the receiver.
        foreach (var task in tasks)
        {
            for (var subtask = 0; subtask < task.Parallelism; subtask++)
            {
                var edges = new List<(JobEdge Edge, PlannedTask Target, List<(int TargetSubtask, int ReceiverChannel)> Channels, int First)>();
                var next = 0;
                foreach (var edge in task.OutputEdges)
                {
                    var target = taskOfVertex[edge.TargetId];
                    var targets = edge.Partitioning == Partitioning.Forward
                        ? [subtask]
                        : Enumerable.Range(0, target.Parallelism).ToList();
                    var channels = targets
                        .Select(t => (t, target.InputChannels[t].FindIndex(c => c.Edge == edge && c.UpstreamSubtask == subtask)))
                        .ToList();
                    edges.Add((edge, target, channels, next));
                    next += channels.Count;
                }

                task.OutputChannels.Add(edges);
            }
        }

        return new ExecutionPlan(graph, tasks, taskOfVertex);
    }

    /// <summary>The deployment of one subtask for <paramref name="attempt"/>.</summary>
    public TaskDeployment Deployment(TaskId id, int attempt, int batchSize, int channelWindow)
    {
        var task = Tasks[id.TaskIndex];
        var subtask = id.SubtaskIndex;

        var inputs = task.InputChannels[subtask]
            .Select(c =>
            {
                var upstream = _taskOfVertex[c.Edge.SourceId];
                var senderEdges = upstream.OutputChannels[c.UpstreamSubtask];
                var senderEdge = senderEdges.Single(e => e.Edge == c.Edge);
                var offset = senderEdge.Channels.FindIndex(ch => ch.TargetSubtask == subtask);
                return new InputChannelSpec(c.Edge.TargetInput, new TaskId(id.JobId, upstream.Index, c.UpstreamSubtask), senderEdge.First + offset);
            })
            .ToList();

        var outputs = task.OutputChannels[subtask]
            .Select(e => new OutputEdgeSpec
            {
                Partitioning = e.Edge.Partitioning,
                KeySelector = e.Edge.KeySelector,
                KeyType = e.Edge.KeyType,
                Channels = [.. e.Channels.Select(ch => new OutputChannelSpec(new TaskId(id.JobId, e.Target.Index, ch.TargetSubtask), ch.ReceiverChannel))],
                FirstChannelIndex = e.First,
            })
            .ToList();

        List<KeyedInputSpec>? keyedInputs = null;
        KeyGroupRange? keyGroups = null;
        if (task.IsKeyed)
        {
            keyedInputs = [.. Enumerable.Range(0, task.Head.InputTypes.Count).Select(gate =>
            {
                var edge = task.InputEdges.First(e => e.TargetInput == gate);
                return new KeyedInputSpec(edge.KeySelector!, edge.KeyType!);
            })];
            keyGroups = KeyGroupAssignment.RangeForOperator(Graph.MaxParallelism, task.Parallelism, subtask);
        }

        return new TaskDeployment
        {
            Id = id,
            Attempt = attempt,
            TaskName = task.Name,
            Parallelism = task.Parallelism,
            MaxParallelism = Graph.MaxParallelism,
            Chain = task.Chain,
            Inputs = inputs,
            KeyedInputs = keyedInputs,
            Outputs = outputs,
            KeyGroups = keyGroups,
            BatchSize = batchSize,
            ChannelWindow = channelWindow,
            PoisonRecords = Graph.PoisonRecords,
            AutoWatermarkInterval = Graph.AutoWatermarkInterval ?? TaskDeployment.DefaultAutoWatermarkInterval,
            EventTime = Graph.Vertices.Any(v => v.Kind == OperatorKind.TimestampsAndWatermarks),
            JobName = Graph.Name,
        };
    }

    private static List<JobVertex> TopologicalOrder(JobGraph graph, Dictionary<int, List<JobEdge>> incoming)
    {
        var remaining = graph.Vertices.ToDictionary(v => v.Id, v => incoming[v.Id].Count);
        var ready = new Queue<JobVertex>(graph.Vertices.Where(v => remaining[v.Id] == 0));
        var order = new List<JobVertex>();
        while (ready.TryDequeue(out var vertex))
        {
            order.Add(vertex);
            foreach (var edge in graph.Edges.Where(e => e.SourceId == vertex.Id))
            {
                if (--remaining[edge.TargetId] == 0)
                {
                    ready.Enqueue(graph.FindVertex(edge.TargetId)!);
                }
            }
        }

        return order;
    }
}

/// <summary>A chain of operators that runs as one task.</summary>
internal sealed class PlannedTask(int index, List<JobVertex> chain, List<JobEdge> inputEdges, List<JobEdge> outputEdges)
{
    public int Index { get; } = index;

    public List<JobVertex> Chain { get; } = chain;

    public JobVertex Head => Chain[0];

    public string Name { get; } = string.Join(" -> ", chain.Select(v => v.Name));

    public int Parallelism => Chain[0].Parallelism;

    public bool IsKeyed => Head.Kind is OperatorKind.KeyedProcess or OperatorKind.KeyedCoProcess;

    public List<JobEdge> InputEdges { get; } = inputEdges;

    public List<JobEdge> OutputEdges { get; } = outputEdges;

    /// <summary>Per subtask: its input channels, in receiver channel order.</summary>
    public List<List<(JobEdge Edge, int UpstreamSubtask)>> InputChannels { get; } = [];

    /// <summary>Per subtask: its output edges with their channels.</summary>
    public List<List<(JobEdge Edge, PlannedTask Target, List<(int TargetSubtask, int ReceiverChannel)> Channels, int First)>> OutputChannels { get; } = [];
}
