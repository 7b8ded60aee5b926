using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Serialization;
using Platform.Graph;
using Platform.Hosting;
using Platform.Runtime;
using Platform.Tasks;

namespace Platform.Jobs;

/// <summary>
/// One per job (Flink's JobMaster): validates the graph, plans it, deploys a task grain per subtask, starts them,
/// and turns their reports into the job's state. Task reports arrive as calls; this grain never waits inside a turn
/// for a call that a task would make back to it.
/// </summary>
[KeepAlive]
internal sealed partial class JobManagerGrain(
    ILogger<JobManagerGrain> logger,
    IOptions<StreamingPlatformOptions> options,
    Serializer serializer) : Grain, IJobManagerGrain, ITaskEventSink
{
    private readonly Dictionary<TaskId, SubtaskRecord> _subtasks = [];
    private TaskCompletionSource _terminal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private JobGraph? _graph;
    private ExecutionPlan? _plan;
    private JobState _state = JobState.Created;
    private int _attempt;
    private DateTimeOffset _submittedAt;
    private DateTimeOffset? _endedAt;
    private FailureInfo? _failure;

    private string JobId => this.GetPrimaryKeyString();

    public async Task<JobStatusInfo> Submit(JobGraph graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        if (_graph is not null)
        {
            throw new InvalidOperationException($"Job '{JobId}' was already submitted; submit a new job under a new id.");
        }

        var problems = new JobGraphValidator(serializer).Validate(graph);
        if (problems.Count > 0)
        {
            LogRejected(JobId, graph.Name, problems.Count);
            DeactivateOnIdle();
            throw new JobValidationException(graph.Name, problems);
        }

        _graph = graph;
        _plan = ExecutionPlan.Build(graph);
        _submittedAt = DateTimeOffset.UtcNow;
        _attempt = 1;
        foreach (var id in _plan.Subtasks(JobId))
        {
            var task = _plan.Tasks[id.TaskIndex];
            _subtasks[id] = new SubtaskRecord(task);
        }

        LogSubmitted(JobId, graph.Name, _plan.Tasks.Count, _subtasks.Count);
        await RecordInRegistryAsync();
        await DeployAndStartAsync();
        return Status();
    }

    public Task<JobStatusInfo> GetStatus() => Task.FromResult(Status());

    public async Task<JobStatusInfo> Cancel()
    {
        if (_graph is null || _state.IsTerminal())
        {
            return Status();
        }

        SetState(JobState.Cancelling);
        await ForEachSubtaskAsync((grain, _) => grain.Cancel(_attempt));
        foreach (var record in _subtasks.Values.Where(r => r.State is TaskState.Created or TaskState.Running))
        {
            record.State = TaskState.Canceled;
        }

        await EndAsync(JobState.Canceled);
        return Status();
    }

    public async Task<JobStatusInfo> WaitForTerminalState(TimeSpan maxWait)
    {
        if (!_state.IsTerminal() && maxWait > TimeSpan.Zero)
        {
            await Task.WhenAny(_terminal.Task, Task.Delay(maxWait));
        }

        return Status();
    }

    public async Task TaskFinished(TaskId task, int attempt, TaskMetrics metrics)
    {
        if (attempt != _attempt || !_subtasks.TryGetValue(task, out var record) || _state.IsTerminal())
        {
            return;
        }

        record.State = TaskState.Finished;
        record.Metrics = metrics;
        if (_subtasks.Values.All(r => r.State == TaskState.Finished))
        {
            await EndAsync(JobState.Finished);
        }
    }

    public async Task TaskFailed(TaskId task, int attempt, FailureInfo failure)
    {
        if (attempt != _attempt || !_subtasks.TryGetValue(task, out var record) || _state.IsTerminal())
        {
            return;
        }

        record.State = TaskState.Failed;
        await FailAsync(failure);
    }

    private async Task DeployAndStartAsync()
    {
        var settings = options.Value;
        try
        {
            // Deploy every subtask before starting any, so that no batch reaches a task that is not deployed yet.
            await ForEachSubtaskAsync(async (grain, id) =>
            {
                var deployed = await grain.Deploy(_plan!.Deployment(id, _attempt, settings.BatchSize, settings.ChannelWindow));
                _subtasks[id].Silo = deployed.Silo;
            });
            await ForEachSubtaskAsync((grain, _) => grain.Start(_attempt));
        }
        catch (Exception ex)
        {
            LogDeployFailed(ex, JobId);
            await FailAsync(new FailureInfo
            {
                Message = $"Deploying the job's tasks failed: {ex.Message}",
                ExceptionType = ex.GetType().FullName,
                StackTrace = ex.StackTrace,
            });
            return;
        }

        if (_state == JobState.Created)
        {
            foreach (var record in _subtasks.Values.Where(r => r.State == TaskState.Created))
            {
                record.State = TaskState.Running;
            }

            SetState(JobState.Running);
            await RecordInRegistryAsync();
        }
    }

    private async Task FailAsync(FailureInfo failure)
    {
        _failure = failure;
        LogFailed(JobId, failure.Describe());
        await ForEachSubtaskAsync((grain, _) => grain.Cancel(_attempt), ignoreErrors: true);
        await EndAsync(JobState.Failed);
    }

    private async Task EndAsync(JobState state)
    {
        _endedAt = DateTimeOffset.UtcNow;
        SetState(state);
        LogEnded(JobId, state);
        await RecordInRegistryAsync();
        await ForEachSubtaskAsync((grain, _) => grain.Release(_attempt), ignoreErrors: true);
    }

    private void SetState(JobState state)
    {
        _state = state;
        if (state.IsTerminal())
        {
            _terminal.TrySetResult();
        }
    }

    private async Task ForEachSubtaskAsync(Func<IStreamTaskGrain, TaskId, Task> action, bool ignoreErrors = false)
    {
        var calls = _subtasks.Keys.Select(async id =>
        {
            try
            {
                await action(GrainFactory.GetGrain<IStreamTaskGrain>(id.GrainKey), id);
            }
            catch (Exception ex) when (ignoreErrors)
            {
                LogTaskCallFailed(ex, id);
            }
        });
        await Task.WhenAll(calls);
    }

    private async Task RecordInRegistryAsync()
    {
        try
        {
            await GrainFactory.GetGrain<IJobRegistryGrain>(0).Record(new JobSummary
            {
                JobId = JobId,
                Name = _graph?.Name ?? "",
                State = _state,
                SubmittedAt = _submittedAt,
                EndedAt = _endedAt,
            });
        }
        catch (Exception ex)
        {
            LogRegistryFailed(ex, JobId);
        }
    }

    private JobStatusInfo Status() => new()
    {
        JobId = JobId,
        Name = _graph?.Name ?? "",
        State = _state,
        Attempt = _attempt,
        SubmittedAt = _submittedAt,
        EndedAt = _endedAt,
        Failure = _failure,
        MaxParallelism = _graph?.MaxParallelism ?? 0,
        Tasks = [.. _subtasks.OrderBy(s => s.Key.TaskIndex).ThenBy(s => s.Key.SubtaskIndex).Select(s => new TaskStatusInfo
        {
            TaskName = s.Value.Task.Name,
            OperatorUids = [.. s.Value.Task.Chain.Select(v => v.Uid)],
            SubtaskIndex = s.Key.SubtaskIndex,
            Parallelism = s.Value.Task.Parallelism,
            State = s.Value.State,
            Silo = s.Value.Silo,
            KeyGroupStart = s.Value.Task.IsKeyed ? State.KeyGroupAssignment.RangeForOperator(_graph!.MaxParallelism, s.Value.Task.Parallelism, s.Key.SubtaskIndex).Start : null,
            KeyGroupEnd = s.Value.Task.IsKeyed ? State.KeyGroupAssignment.RangeForOperator(_graph!.MaxParallelism, s.Value.Task.Parallelism, s.Key.SubtaskIndex).End : null,
            RecordsIn = s.Value.Metrics?.RecordsIn ?? 0,
            RecordsOut = s.Value.Metrics?.RecordsOut ?? 0,
        })],
    };

    private sealed class SubtaskRecord(PlannedTask task)
    {
        public PlannedTask Task { get; } = task;

        public TaskState State { get; set; } = TaskState.Created;

        public string? Silo { get; set; }

        public TaskMetrics? Metrics { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} ('{Name}') rejected: {Count} problem(s)")]
    private partial void LogRejected(string jobId, string name, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} ('{Name}') submitted: {Tasks} tasks, {Subtasks} subtasks")]
    private partial void LogSubmitted(string jobId, string name, int tasks, int subtasks);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Deploying job {JobId} failed")]
    private partial void LogDeployFailed(Exception exception, string jobId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} failed: {Reason}")]
    private partial void LogFailed(string jobId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} is {State}")]
    private partial void LogEnded(string jobId, JobState state);

    [LoggerMessage(Level = LogLevel.Debug, Message = "A call to task {Task} failed")]
    private partial void LogTaskCallFailed(Exception exception, TaskId task);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recording job {JobId} in the job registry failed")]
    private partial void LogRegistryFailed(Exception exception, string jobId);
}
