using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Serialization;
using Platform.Checkpointing;
using Platform.Graph;
using Platform.Hosting;
using Platform.Runtime;
using Platform.Storage;
using Platform.Tasks;

namespace Platform.Jobs;

/// <summary>What the job manager keeps durably, so that a job survives the loss of the silo hosting it.</summary>
[GenerateSerializer, Alias("platform.JobManagerState")]
public sealed class JobManagerState
{
    [Id(0)] public JobGraph? Graph { get; set; }
    [Id(1)] public JobState State { get; set; } = JobState.Created;
    [Id(2)] public int Attempt { get; set; }
    [Id(3)] public DateTimeOffset SubmittedAt { get; set; }
    [Id(4)] public DateTimeOffset? EndedAt { get; set; }
    [Id(5)] public FailureInfo? Failure { get; set; }
    [Id(6)] public RestartHistory History { get; set; } = new();
    [Id(7)] public List<FailureInfo> RestartCauses { get; set; } = [];
    [Id(8)] public long? RestoredFrom { get; set; }

    /// <summary>The savepoint or checkpoint the job was submitted to start from (until it has checkpoints of its own).</summary>
    [Id(9)] public CheckpointMetadata? InitialRestore { get; set; }

    /// <summary>Where <see cref="InitialRestore"/>'s files are.</summary>
    [Id(10)] public SnapshotLocation? InitialRestoreLocation { get; set; }

    /// <summary>Whether the current attempt restored from <see cref="InitialRestore"/> rather than the job's own checkpoint.</summary>
    [Id(11)] public bool RestoredFromInitial { get; set; }
}

/// <summary>How the silos' failure watchers and the cluster's startup reach job managers.</summary>
[Alias("platform.IJobRecovery")]
public interface IJobRecovery : IGrainWithStringKey
{
    /// <summary>A silo left the cluster: restart the job if any of its subtasks ran there.</summary>
    Task OnSiloDown(string silo);

    /// <summary>Makes sure a job that should be running is (after the whole cluster restarted).</summary>
    Task EnsureRecovered();
}

/// <summary>
/// One per job (Flink's JobMaster): validates the graph, plans it, deploys a task grain per subtask, starts them,
/// drives the checkpoint coordinator, and on any failure restarts every subtask from the latest completed
/// checkpoint with a new attempt number, as the job's restart strategy allows. Its state is durable; an activation
/// that finds a job it did not deploy itself (its silo was lost, or the cluster restarted) restarts the job.
/// It never waits inside a turn for a call that a task or the coordinator would make back to it.
/// </summary>
[KeepAlive]
internal sealed partial class JobManagerGrain(
    ILogger<JobManagerGrain> logger,
    IOptions<StreamingPlatformOptions> options,
    Serializer serializer,
    CheckpointStorageFactory storageFactory,
    SavepointLocations savepointLocations,
    ILocalSiloDetails silo,
    Diagnostics.StreamingMetrics metrics,
    [PersistentState("job", PlatformStreams.StateStorageName)] IPersistentState<JobManagerState> state)
    : Grain, IJobManagerGrain, ITaskEventSink, ICheckpointFailureListener, IJobRecovery
{
    private const int MaxRestartCauses = 10;

    /// <summary>How often the job manager makes sure its coordinator is active and triggering (it may have been lost with its silo).</summary>
    private static readonly TimeSpan CoordinatorHeartbeat = TimeSpan.FromSeconds(5);

    /// <summary>How often a job whose subtasks all finished asks whether its stop with savepoint is still in progress.</summary>
    private static readonly TimeSpan StopPollPeriod = TimeSpan.FromMilliseconds(250);
    private readonly Dictionary<TaskId, SubtaskRecord> _subtasks = [];
    private TaskCompletionSource _terminal = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Set while the end of the job is being carried out (checkpoints deleted or kept, subtasks released): waiters for
    /// the terminal state are answered only afterwards, so that what they see next (storage included) is the end state.
    /// </summary>
    private bool _ending;
    private ExecutionPlan? _plan;
    private int? _deployedAttempt;
    private IGrainTimer? _restartTimer;
    private IGrainTimer? _finishTimer;

    private string JobId => this.GetPrimaryKeyString();

    private JobManagerState S => state.State;

    private bool HasCheckpointing => S.Graph?.Checkpointing is not null;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // The trigger schedule lives in the coordinator's persisted state, but only an activation runs it: this heartbeat
        // brings back a coordinator lost with its silo even when none of the job's subtasks ran there.
        this.RegisterGrainTimer(HeartbeatAsync, new GrainTimerCreationOptions { DueTime = CoordinatorHeartbeat, Period = CoordinatorHeartbeat });
        var taskHeartbeat = options.Value.TaskHeartbeatInterval;
        this.RegisterGrainTimer(CheckSubtasksAsync, new GrainTimerCreationOptions { DueTime = taskHeartbeat, Period = taskHeartbeat });
        if (S.Graph is not null)
        {
            _plan = ExecutionPlan.Build(S.Graph);
            InitializeSubtasks();
            if (S.State.IsTerminal())
            {
                _terminal.TrySetResult();
            }
            else if (S.State == JobState.Cancelling)
            {
                // Cancelled just before the previous activation was lost: finish the cancellation.
                _restartTimer = this.RegisterGrainTimer(
                    async _ =>
                    {
                        await ForEachSubtaskAsync((grain, _) => grain.Cancel(S.Attempt), ignoreErrors: true);
                        await EndAsync(JobState.Canceled);
                    },
                    new GrainTimerCreationOptions { DueTime = TimeSpan.Zero, Period = Timeout.InfiniteTimeSpan });
            }
            else
            {
                // This activation did not deploy the job: its previous activation was lost with its silo, or the
                // cluster restarted. The subtasks of the old attempt are fenced by the new attempt number.
                _restartTimer = this.RegisterGrainTimer(
                    _ => HandleFailureAsync(S.Attempt, new FailureInfo { Message = "The job manager was re-activated (its silo was lost or the cluster restarted)." }),
                    new GrainTimerCreationOptions { DueTime = TimeSpan.Zero, Period = Timeout.InfiniteTimeSpan });
            }
        }

        return Task.CompletedTask;
    }

    public async Task<JobStatusInfo> Submit(JobGraph graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        if (S.Graph is not null)
        {
            throw new InvalidOperationException($"Job '{JobId}' was already submitted; submit a new job under a new id.");
        }

        var problems = new JobGraphValidator(serializer, Storage.FileSystem.DataRoots.From(options.Value)).Validate(graph).ToList();
        if (graph.Checkpointing is { } checkpointing && storageFactory.Unavailable(storageFactory.Resolve(checkpointing).Kind) is { } unavailable)
        {
            problems.Add(unavailable);
        }

        (CheckpointMetadata Metadata, SnapshotLocation Location)? initial = null;
        if (problems.Count == 0 && graph.Restore is { } restore)
        {
            initial = await ReadInitialRestoreAsync(graph, restore, problems);
        }

        if (problems.Count > 0)
        {
            LogRejected(JobId, graph.Name, problems.Count);
            DeactivateOnIdle();
            throw new JobValidationException(graph.Name, problems);
        }

        S.Graph = graph;
        S.InitialRestore = initial?.Metadata;
        S.InitialRestoreLocation = initial?.Location;
        S.SubmittedAt = DateTimeOffset.UtcNow;
        S.Attempt = 1;
        S.State = JobState.Created;
        _plan = ExecutionPlan.Build(graph);
        InitializeSubtasks();
        await state.WriteStateAsync();
        LogSubmitted(JobId, graph.Name, _plan.Tasks.Count, _subtasks.Count);
        await RecordInRegistryAsync();
        await DeployAttemptAsync(S.Attempt);
        return Status();
    }

    public Task<JobStatusInfo> GetStatus() => Task.FromResult(Status());

    public Task<JobPlanInfo?> GetPlan()
    {
        if (_plan is null)
        {
            return Task.FromResult<JobPlanInfo?>(null);
        }

        var taskOfVertex = _plan.Tasks.SelectMany(t => t.Chain.Select(v => (v.Id, t.Index))).ToDictionary(x => x.Id, x => x.Index);
        return Task.FromResult<JobPlanInfo?>(new JobPlanInfo
        {
            Tasks = [.. _plan.Tasks.Select(t => new TaskPlanInfo
            {
                Index = t.Index,
                Name = t.Name,
                Operators = [.. t.Chain.Select(v => v.Name)],
                OperatorUids = [.. t.Chain.Select(v => v.Uid)],
                Parallelism = t.Parallelism,
                Kind = t.Head.Kind,
            })],
            Edges = [.. _plan.Tasks.SelectMany(t => t.InputEdges.Select(e => new TaskEdgeInfo(taskOfVertex[e.SourceId], t.Index, e.Partitioning)))],
            Checkpointing = _plan.Graph.Checkpointing,
            StateBackend = _plan.Graph.StateBackend,
            MaxParallelism = _plan.Graph.MaxParallelism,
        });
    }

    // Reads and checks the savepoint (or retained checkpoint) a job is submitted to start from; problems are added
    // to the submission's, so the caller learns everything wrong at once.
    private async Task<(CheckpointMetadata, SnapshotLocation)?> ReadInitialRestoreAsync(JobGraph graph, RestoreSettings restore, List<string> problems)
    {
        SnapshotLocation location;
        CheckpointMetadata metadata;
        try
        {
            location = savepointLocations.ForRestore(restore.Path, graph.Checkpointing);
            metadata = await location.ReadMetadataAsync(storageFactory);
        }
        catch (ArgumentException ex)
        {
            problems.Add(ex.Message);
            return null;
        }
        catch (CorruptCheckpointException ex)
        {
            problems.Add($"The savepoint at '{restore.Path}' cannot be restored: {ex.Message} Restore from another savepoint or retained checkpoint.");
            return null;
        }

        if (metadata.MaxParallelism != graph.MaxParallelism)
        {
            problems.Add(
                $"The savepoint at '{restore.Path}' was taken with max parallelism {metadata.MaxParallelism}, but the job has {graph.MaxParallelism}: " +
                $"keyed state is sharded into max-parallelism key groups, which cannot be remapped. Set StreamJobBuilder.MaxParallelism = {metadata.MaxParallelism}.");
        }

        var backend = graph.StateBackend ?? options.Value.DefaultStateBackend;
        if (backend != State.StateBackendKind.RocksDb && metadata.Subtasks.SelectMany(s => s.Operators).Any(o => o.KeyedState?.Native is not null))
        {
            problems.Add(
                $"The savepoint at '{restore.Path}' holds keyed state in RocksDB's native format, which the {backend} state backend cannot read. " +
                "Run the job on RocksDB (StreamJobBuilder.StateBackend), or take a portable savepoint (the default format) to change backends.");
        }

        var plan = ExecutionPlan.Build(graph);
        var uids = graph.Vertices.Select(v => v.Uid).ToHashSet(StringComparer.Ordinal);
        var withState = metadata.Subtasks.SelectMany(s => s.Operators)
            .Where(o => o.HasState)
            .Select(o => o.OperatorUid).Distinct(StringComparer.Ordinal).ToList();
        var unmatched = withState.Where(uid => !uids.Contains(uid)).ToList();
        if (unmatched.Count > 0 && !restore.AllowNonRestoredState)
        {
            problems.Add(
                $"The savepoint at '{restore.Path}' holds state of operators this job does not have (uids: {string.Join(", ", unmatched)}). " +
                "Give the operators that should take it these uids, or set RestoreSettings.AllowNonRestoredState to drop it.");
        }

        foreach (var task in plan.Tasks)
        {
            foreach (var vertex in task.Chain)
            {
                var sourceSnapshots = metadata.Subtasks.SelectMany(s => s.Operators).Where(o => o.OperatorUid == vertex.Uid && o.SourceOffset is not null).ToList();
                var offsets = sourceSnapshots.Count;
                // A source of splits with positions can change its parallelism: every subtask sees every split's position.
                if (offsets > 0 && offsets != task.Parallelism && !sourceSnapshots.All(o => o.SplitPositions is not null))
                {
                    problems.Add(
                        $"Source '{vertex.Name}' (uid '{vertex.Uid}') ran with parallelism {offsets} when the savepoint was taken and has {task.Parallelism} now; " +
                        $"a source resumes each subtask's read position, so its parallelism must stay {offsets} (keyed operators can change theirs).");
                }
            }
        }

        return (metadata, location);
    }

    public async Task<JobStatusInfo> Cancel()
    {
        if (S.Graph is null || S.State.IsTerminal())
        {
            return Status();
        }

        _restartTimer?.Dispose();
        await SetStateAsync(JobState.Cancelling);
        await ForEachSubtaskAsync((grain, _) => grain.Cancel(S.Attempt), ignoreErrors: true);
        foreach (var record in _subtasks.Values.Where(r => r.State is TaskState.Created or TaskState.Initializing or TaskState.Running))
        {
            record.State = TaskState.Canceled;
        }

        await EndAsync(JobState.Canceled);
        return Status();
    }

    public async Task<JobStatusInfo> WaitForTerminalState(TimeSpan maxWait)
    {
        if ((!S.State.IsTerminal() || _ending) && maxWait > TimeSpan.Zero)
        {
            await Task.WhenAny(_terminal.Task, Task.Delay(maxWait));
        }

        return Status();
    }

    public Task TaskInitialized(TaskId task, int attempt)
    {
        if (attempt == S.Attempt && _subtasks.TryGetValue(task, out var record) && record.State is TaskState.Created or TaskState.Initializing)
        {
            record.State = TaskState.Running;
        }

        return Task.CompletedTask;
    }

    public async Task TaskFinished(TaskId task, int attempt, TaskMetrics metrics, SubtaskSnapshot? finalSnapshot, long lastCheckpoint)
    {
        if (attempt != S.Attempt || _deployedAttempt != attempt || !_subtasks.TryGetValue(task, out var record) || S.State != JobState.Running)
        {
            return;
        }

        record.State = TaskState.Finished;
        record.Metrics = metrics;
        if (HasCheckpointing)
        {
            // If this fails, the coordinator (re-activated elsewhere) only keeps triggering checkpoints that cannot complete.
            await BestEffortAsync(() => Coordinator.OnTaskFinished(task, finalSnapshot, lastCheckpoint));
        }

        if (_subtasks.Values.All(r => r.State == TaskState.Finished))
        {
            await FinishIfStopAllowsAsync(attempt);
        }
    }

    // Every subtask finished. A stop with savepoint still in progress (an acknowledgement on its way, or lost and waiting
    // for the stop's deadline) must not let the job finish: finishing deletes its partial savepoint and the checkpoints
    // the job must resume from. So the job finishes once the stop completed, and fails over once it failed.
    private async Task FinishIfStopAllowsAsync(int attempt)
    {
        if (attempt != S.Attempt || S.State != JobState.Running)
        {
            return;
        }

        var outcome = HasCheckpointing ? await StopOutcomeAsync(attempt) : StopOutcome.None;
        switch (outcome.Status)
        {
            case StopStatus.Failed:
                // The coordinator's failure notification may still be on its way; finishing first would delete the
                // checkpoints the job must resume from, leaving the user with neither a savepoint nor a checkpoint.
                await HandleFailureAsync(attempt, new FailureInfo { Message = outcome.Reason!, ExceptionType = "CheckpointFailureThresholdExceeded" });
                break;
            case StopStatus.Pending:
                if (_finishTimer is null)
                {
                    LogWaitingForStop(JobId, attempt);
                    _finishTimer = this.RegisterGrainTimer(
                        _ => FinishIfStopAllowsAsync(attempt),
                        new GrainTimerCreationOptions { DueTime = StopPollPeriod, Period = StopPollPeriod });
                }

                break;
            default:
                await EndAsync(JobState.Finished);
                break;
        }
    }

    private async Task HeartbeatAsync(CancellationToken cancellationToken)
    {
        if (HasCheckpointing && S.State == JobState.Running && _deployedAttempt == S.Attempt)
        {
            await BestEffortAsync(() => Coordinator.EnsureScheduled(S.Attempt));
        }
    }

    /// <summary>
    /// Flink's heartbeat from the JobMaster to its tasks: every subtask of the running attempt that has not finished must
    /// say it still runs that attempt. One lost with its silo answers from a new, empty activation (or not at all), and
    /// the attempt fails over, even when no notification of the silo's death reached this job manager: without this, a
    /// job whose live subtasks are idle would wait for the lost one, and every checkpoint would wait until its timeout.
    /// </summary>
    private async Task CheckSubtasksAsync(CancellationToken cancellationToken)
    {
        var attempt = S.Attempt;
        if (S.Graph is null || S.State != JobState.Running || _deployedAttempt != attempt)
        {
            return;
        }

        var timeout = options.Value.TaskHeartbeatTimeout;
        var alive = _subtasks.Where(s => s.Value.State is TaskState.Initializing or TaskState.Running).Select(s => s.Key).ToList();
        var answers = await Task.WhenAll(alive.Select(async id =>
        {
            try
            {
                var reply = await GrainFactory.GetGrain<IStreamTaskGrain>(id.GrainKey).Heartbeat(attempt).WaitAsync(timeout, cancellationToken);
                if (!reply.RunsAttempt)
                {
                    return $"{id} is not deployed any more (its activation was lost, last on silo {_subtasks[id].Silo})";
                }

                if (reply.Metrics is { } metrics && attempt == S.Attempt && _subtasks.TryGetValue(id, out var record))
                {
                    record.Report(metrics);
                }

                return null;
            }
            catch (TimeoutException)
            {
                return $"{id} did not answer within {timeout.TotalSeconds:0.#} s";
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                return $"{id} could not be reached ({ex.GetType().Name}: {ex.Message})";
            }
        }));
        var lost = answers.OfType<string>().ToList();
        if (lost.Count == 0 || attempt != S.Attempt || S.State.IsTerminal())
        {
            return;
        }

        LogSubtasksLost(JobId, attempt, string.Join("; ", lost.Take(5)));
        await HandleFailureAsync(attempt, new FailureInfo
        {
            Message = $"{lost.Count} subtask(s) of attempt {attempt} failed the job manager's heartbeat: {string.Join("; ", lost.Take(5))}.",
            ExceptionType = "SubtaskLost",
        });
    }

    public async Task TaskFailed(TaskId task, int attempt, FailureInfo failure)
    {
        if (attempt != S.Attempt || !_subtasks.TryGetValue(task, out var record) || S.State.IsTerminal())
        {
            return;
        }

        record.State = TaskState.Failed;
        if (S.RestoredFromInitial && failure.ExceptionType is { } type
            && (type == typeof(CorruptCheckpointException).FullName || type == typeof(State.IncompatibleStateException).FullName))
        {
            // The savepoint the job was submitted with is damaged or unreadable here: every restart would read it
            // again, so the job fails now, saying which savepoint and why.
            await FailAsync(failure with
            {
                Message = $"The job cannot start from '{S.InitialRestoreLocation?.Directory}': {failure.Message}",
                NotRestartedBecause = "restarting would read the same savepoint again; submit the job from another savepoint or without one",
            });
            return;
        }

        if (failure.ExceptionType == typeof(CorruptCheckpointException).FullName && S.RestoredFrom is { } restoredFrom && HasCheckpointing)
        {
            // The checkpoint this attempt restored from is damaged: never try it again; recovery falls back to an older one.
            await BestEffortAsync(() => Coordinator.MarkUnrestorable(restoredFrom, failure.Message));
        }

        await HandleFailureAsync(attempt, failure);
    }

    public Task CheckpointFailureThresholdExceeded(int attempt, string reason) =>
        HandleFailureAsync(attempt, new FailureInfo { Message = reason, ExceptionType = "CheckpointFailureThresholdExceeded" });

    public async Task OnSiloDown(string silo)
    {
        if (S.Graph is null || S.State.IsTerminal() || _deployedAttempt != S.Attempt)
        {
            return;
        }

        var lost = _subtasks.Where(s => s.Value.Silo == silo).Select(s => s.Key).ToList();
        if (lost.Count == 0)
        {
            // The coordinator may have been there: activating it again re-arms its trigger schedule now, not at the next heartbeat.
            if (HasCheckpointing && S.State == JobState.Running)
            {
                await BestEffortAsync(() => Coordinator.EnsureScheduled(S.Attempt));
            }

            return;
        }

        await HandleFailureAsync(S.Attempt, new FailureInfo
            {
                Message = $"Silo {silo} left the cluster; {lost.Count} subtask(s) ran there ({string.Join(", ", lost.Take(5))}).",
                ExceptionType = "SiloLost",
            });
    }

    public Task EnsureRecovered() => Task.CompletedTask; // Activation alone starts the recovery (see OnActivateAsync).

    private ICheckpointCoordinatorControl Coordinator => GrainFactory.GetGrain<ICheckpointCoordinatorControl>(JobId);

    private async Task DeployAttemptAsync(int attempt)
    {
        var settings = options.Value;
        try
        {
            CheckpointMetadata? restore = null;
            SnapshotLocation? restoreLocation = null;
            TaskCheckpointSettings? taskCheckpointing = null;
            if (S.Graph!.Checkpointing is { } checkpointing)
            {
                var (kind, directory) = storageFactory.Resolve(checkpointing);
                taskCheckpointing = new TaskCheckpointSettings(checkpointing.Mode, kind, directory, checkpointing.Incremental ?? settings.RocksDb.IncrementalCheckpoints);
                if (attempt > 1)
                {
                    var point = await Coordinator.LatestRestorable(checkpointing);
                    if (point.NoneRestorable is { } why)
                    {
                        // Never an empty start for a job with completed checkpoints: its sources would replay from the beginning.
                        await FailAsync(new FailureInfo
                        {
                            Message = $"Attempt {attempt} cannot restore: {why}.",
                            ExceptionType = "NoRestorableCheckpoint",
                            NotRestartedBecause = "every restart would start from empty state",
                        });
                        return;
                    }

                    restore = point.Checkpoint;
                }
            }

            if (restore is null && S.InitialRestore is { } initial)
            {
                // Until the job has a checkpoint of its own, every attempt starts from the savepoint it was submitted with.
                restore = initial;
                restoreLocation = S.InitialRestoreLocation;
            }

            S.RestoredFrom = restore?.CheckpointId;
            S.RestoredFromInitial = restoreLocation is not null;
            InitializeSubtasks();
            await ForEachSubtaskAsync(async (grain, id) =>
            {
                var deployment = _plan!.Deployment(id, attempt, settings.BatchSize, settings.ChannelWindow) with
                {
                    Checkpointing = taskCheckpointing,
                    Restore = restore is null ? null : RestoreFor(id, restore),
                    RestoredFrom = restore?.CheckpointId,
                    RestoreLocation = restoreLocation,
                    StateBackend = S.Graph.StateBackend ?? settings.DefaultStateBackend,
                };
                var deployed = await grain.Deploy(deployment);
                _subtasks[id].Silo = deployed.Silo;
            });
            _deployedAttempt = attempt;
            await ForEachSubtaskAsync((grain, _) => grain.Start(attempt));
            foreach (var record in _subtasks.Values.Where(r => r.State == TaskState.Created))
            {
                // Running once it reports that its state is restored (TaskInitialized).
                record.State = TaskState.Initializing;
            }

            if (S.Graph.Checkpointing is { } settingsOfJob)
            {
                await Coordinator.Start(new CoordinatorStart
                {
                    Settings = settingsOfJob,
                    Attempt = attempt,
                    Subtasks = [.. _subtasks.Keys.Select(id => (id, _plan!.Tasks[id.TaskIndex].Name))],
                    MaxParallelism = S.Graph.MaxParallelism,
                    JobName = S.Graph.Name,
                    StateBackend = S.Graph.StateBackend ?? settings.DefaultStateBackend,
                });
                if (restore is not null && restoreLocation is null)
                {
                    await Coordinator.RecordRestore(restore.CheckpointId);
                }
            }

            if (attempt == S.Attempt && !S.State.IsTerminal())
            {
                LogRunning(JobId, attempt, restore is null ? "a fresh start" : restoreLocation is null ? $"checkpoint {restore.CheckpointId}" : $"'{restoreLocation.Directory}'");
                await SetStateAsync(JobState.Running);
            }
        }
        catch (Exception ex)
        {
            LogDeployFailed(ex, JobId, attempt);
            await HandleFailureAsync(attempt, new FailureInfo
            {
                Message = $"Deploying attempt {attempt} of the job failed: {ex.Message}",
                ExceptionType = ex.GetType().FullName,
                StackTrace = ex.StackTrace,
            });
        }
    }

    /// <summary>The state each operator of a subtask starts from: source offsets by subtask, keyed state by key group overlap.</summary>
    private List<OperatorRestore> RestoreFor(TaskId id, CheckpointMetadata checkpoint)
    {
        var task = _plan!.Tasks[id.TaskIndex];
        var restores = new List<OperatorRestore>();
        foreach (var vertex in task.Chain)
        {
            var snapshots = checkpoint.Subtasks.SelectMany(s => s.Operators.Select(o => (Subtask: s, Operator: o))).Where(x => x.Operator.OperatorUid == vertex.Uid).ToList();
            if (snapshots.Count == 0)
            {
                continue;
            }

            var offset = snapshots.FirstOrDefault(x => x.Subtask.SubtaskIndex == id.SubtaskIndex && x.Operator.SourceOffset is not null).Operator?.SourceOffset;
            var range = task.IsKeyed ? State.KeyGroupAssignment.RangeForOperator(S.Graph!.MaxParallelism, task.Parallelism, id.SubtaskIndex) : default;
            var keyed = task.IsKeyed && vertex == task.Head
                ? snapshots.Select(x => x.Operator.KeyedState).OfType<KeyedStateSnapshot>().Where(k => k.KeyGroupEnd >= range.Start && k.KeyGroupStart <= range.End).ToList()
                : [];

            // A sink's committables go to the subtask of the same index; after a change of parallelism, subtask i takes
            // those of every former subtask j with j mod p = i, so each is committed again exactly by one subtask.
            var committables = snapshots
                .Where(x => x.Operator.Committables is { Count: > 0 } && x.Subtask.SubtaskIndex % task.Parallelism == id.SubtaskIndex)
                .SelectMany(x => x.Operator.Committables!).OrderBy(c => c.CheckpointId).ToList();

            // Split positions are the union over the source's subtasks (Flink's union redistribution): a reader picks its own.
            Dictionary<string, string>? positions = null;
            foreach (var split in snapshots.Where(x => x.Operator.SplitPositions is not null).SelectMany(x => x.Operator.SplitPositions!))
            {
                (positions ??= new(StringComparer.Ordinal))[split.Key] = split.Value;
            }

            restores.Add(new OperatorRestore(vertex.Uid, offset, keyed, committables.Count > 0 ? committables : null, positions));
        }

        return restores;
    }

    private async Task HandleFailureAsync(int attempt, FailureInfo failure)
    {
        if (attempt != S.Attempt || S.Graph is null || S.State.IsTerminal() || S.State == JobState.Cancelling)
        {
            return;
        }

        _restartTimer?.Dispose();
        _restartTimer = null;
        StopFinishTimer();
        // Flink's defaults: exponential delay with checkpoints; without them a restart would replay the sources from
        // the start with empty state, so the job does not restart unless it asks to.
        var strategy = S.Graph.RestartStrategy ?? (HasCheckpointing ? new RestartStrategy() : RestartStrategy.NoRestart);
        var now = DateTimeOffset.UtcNow;
        var (restart, delay, reason) = RestartPolicy.Decide(strategy, S.History, now);
        LogFailure(JobId, attempt, failure.Describe(), restart, delay);
        var failed = attempt;
        if (!restart)
        {
            await FailAsync(failure with { NotRestartedBecause = reason });
            return;
        }

        S.Attempt++;
        S.History.Restarts++;
        metrics.Restarts.Add(1, Diagnostics.StreamingMetrics.JobTags(JobId, S.Graph?.Name));
        S.History.LastRestartAt = now;
        S.RestartCauses.Insert(0, failure);
        if (S.RestartCauses.Count > MaxRestartCauses)
        {
            S.RestartCauses.RemoveRange(MaxRestartCauses, S.RestartCauses.Count - MaxRestartCauses);
        }

        // Arm the restart before anything that may fail (persisting, or calling a coordinator or subtask whose silo
        // may be the one that died): a restart that is never scheduled would leave the job RESTARTING forever.
        var next = S.Attempt;
        _restartTimer = this.RegisterGrainTimer(
            _ => RestartNowAsync(next),
            new GrainTimerCreationOptions { DueTime = delay, Period = Timeout.InfiniteTimeSpan });
        await SetStateAsync(JobState.Restarting);

        if (HasCheckpointing)
        {
            await BestEffortAsync(() => Coordinator.Suspend($"the job is restarting after: {failure.Describe()}"));
        }

        // Stop what is left of the failed attempt; its messages are refused by the next attempt's subtasks anyway.
        await ForEachSubtaskAsync((grain, _) => grain.Cancel(failed), ignoreErrors: true);
    }

    // Unknown counts as failed: a coordinator that cannot be asked is most likely the one lost with a stop in progress,
    // and a restart from the latest checkpoint keeps the state exactly-once, where finishing would delete that checkpoint.
    private async Task<StopOutcome> StopOutcomeAsync(int attempt)
    {
        try
        {
            return await Coordinator.GetStopOutcome(attempt);
        }
        catch (Exception ex)
        {
            LogCoordinatorCallFailed(ex, JobId);
            return new StopOutcome(
                StopStatus.Failed,
                $"the checkpoint coordinator could not confirm that no stop with savepoint failed ({ex.Message}), so the job restarts from its latest checkpoint rather than finish");
        }
    }

    private async Task BestEffortAsync(Func<Task> call)
    {
        try
        {
            await call();
        }
        catch (Exception ex)
        {
            LogCoordinatorCallFailed(ex, JobId);
        }
    }

    private async Task RestartNowAsync(int attempt)
    {
        _restartTimer?.Dispose();
        _restartTimer = null;
        if (attempt == S.Attempt && S.State == JobState.Restarting)
        {
            await DeployAttemptAsync(attempt);
        }
    }

    private async Task FailAsync(FailureInfo failure)
    {
        S.Failure = failure;
        LogFailed(JobId, failure.Describe());
        await ForEachSubtaskAsync((grain, _) => grain.Cancel(S.Attempt), ignoreErrors: true);
        await EndAsync(JobState.Failed);
    }

    private async Task EndAsync(JobState final)
    {
        _restartTimer?.Dispose();
        _restartTimer = null;
        StopFinishTimer();
        S.EndedAt = DateTimeOffset.UtcNow;
        _ending = true;
        try
        {
            // The state first: were this silo to die now, a new activation must not restart the job.
            await SetStateAsync(final);
            LogEnded(JobId, final);
            if (HasCheckpointing)
            {
                await BestEffortAsync(() => Coordinator.Shutdown(final));
            }

            await ForEachSubtaskAsync((grain, _) => grain.Release(S.Attempt), ignoreErrors: true);
        }
        finally
        {
            _ending = false;
            _terminal.TrySetResult();
        }
    }

    private void StopFinishTimer()
    {
        _finishTimer?.Dispose();
        _finishTimer = null;
    }

    private async Task SetStateAsync(JobState value)
    {
        S.State = value;
        await state.WriteStateAsync();
        if (value.IsTerminal() && !_ending)
        {
            _terminal.TrySetResult();
        }

        await RecordInRegistryAsync();
    }

    private void InitializeSubtasks()
    {
        _subtasks.Clear();
        foreach (var id in _plan!.Subtasks(JobId))
        {
            _subtasks[id] = new SubtaskRecord(_plan.Tasks[id.TaskIndex]);
        }
    }

    private async Task ForEachSubtaskAsync(Func<IStreamTaskGrain, TaskId, Task> action, bool ignoreErrors = false)
    {
        var calls = _subtasks.Keys.ToList().Select(async id =>
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
                Name = S.Graph?.Name ?? "",
                State = S.State,
                SubmittedAt = S.SubmittedAt,
                EndedAt = S.EndedAt,
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
        Name = S.Graph?.Name ?? "",
        State = S.State,
        Attempt = S.Attempt,
        SubmittedAt = S.SubmittedAt,
        EndedAt = S.EndedAt,
        Failure = S.Failure,
        MaxParallelism = S.Graph?.MaxParallelism ?? 0,
        Restarts = S.History.Restarts,
        RestartCauses = [.. S.RestartCauses],
        JobManagerSilo = silo.SiloAddress.ToString(),
        RestoredFromCheckpoint = S.RestoredFrom,
        Tasks = [.. _subtasks.OrderBy(s => s.Key.TaskIndex).ThenBy(s => s.Key.SubtaskIndex).Select(s =>
        {
            var keyGroups = s.Value.Task.IsKeyed
                ? State.KeyGroupAssignment.RangeForOperator(S.Graph!.MaxParallelism, s.Value.Task.Parallelism, s.Key.SubtaskIndex)
                : (State.KeyGroupRange?)null;
            return new TaskStatusInfo
            {
                TaskName = s.Value.Task.Name,
                OperatorUids = [.. s.Value.Task.Chain.Select(v => v.Uid)],
                SubtaskIndex = s.Key.SubtaskIndex,
                Parallelism = s.Value.Task.Parallelism,
                State = s.Value.State,
                Silo = s.Value.Silo,
                KeyGroupStart = keyGroups?.Start,
                KeyGroupEnd = keyGroups?.End,
                RecordsIn = s.Value.Metrics?.RecordsIn ?? 0,
                RecordsOut = s.Value.Metrics?.RecordsOut ?? 0,
                BackPressuredTimeMsPerSecond = s.Value.BackPressuredTimeMsPerSecond,
            };
        })],
    };

    private sealed class SubtaskRecord(PlannedTask task)
    {
        public PlannedTask Task { get; } = task;

        public TaskState State { get; set; } = TaskState.Created;

        public string? Silo { get; set; }

        public TaskMetrics? Metrics { get; set; }

        /// <summary>The rate of back-pressured time between the last two heartbeats.</summary>
        public double? BackPressuredTimeMsPerSecond { get; private set; }

        private long _reportedAt;

        /// <summary>Takes the counters a heartbeat brought, and the back-pressure rate since the previous one.</summary>
        public void Report(TaskMetrics metrics)
        {
            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            if (Metrics is { } previous && _reportedAt != 0)
            {
                var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(_reportedAt, now).TotalMilliseconds;
                if (elapsed > 0)
                {
                    BackPressuredTimeMsPerSecond = Math.Clamp((metrics.BackPressuredMilliseconds - previous.BackPressuredMilliseconds) / elapsed * 1_000, 0, 1_000);
                }
            }

            Metrics = metrics;
            _reportedAt = now;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} attempt {Attempt}: subtasks failed the heartbeat: {Lost}")]
    private partial void LogSubtasksLost(string jobId, int attempt, string lost);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} ('{Name}') rejected: {Count} problem(s)")]
    private partial void LogRejected(string jobId, string name, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} ('{Name}') submitted: {Tasks} tasks, {Subtasks} subtasks")]
    private partial void LogSubmitted(string jobId, string name, int tasks, int subtasks);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} attempt {Attempt} is running from {StartingPoint}")]
    private partial void LogRunning(string jobId, int attempt, string startingPoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Deploying attempt {Attempt} of job {JobId} failed")]
    private partial void LogDeployFailed(Exception exception, string jobId, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} attempt {Attempt} failed: {Reason}; restart: {Restart} after {Delay}")]
    private partial void LogFailure(string jobId, int attempt, string reason, bool restart, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} failed: {Reason}")]
    private partial void LogFailed(string jobId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId}: every subtask of attempt {Attempt} finished; waiting for its stop with savepoint to complete before finishing")]
    private partial void LogWaitingForStop(string jobId, int attempt);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} is {State}")]
    private partial void LogEnded(string jobId, JobState state);

    [LoggerMessage(Level = LogLevel.Debug, Message = "A call to task {Task} failed")]
    private partial void LogTaskCallFailed(Exception exception, TaskId task);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A call from job {JobId}'s job manager to its checkpoint coordinator failed")]
    private partial void LogCoordinatorCallFailed(Exception exception, string jobId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recording job {JobId} in the job registry failed")]
    private partial void LogRegistryFailed(Exception exception, string jobId);
}
