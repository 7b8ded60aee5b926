using Platform.Graph;

namespace Platform.Runtime;

/// <summary>The lifecycle of a job (Flink's <c>JobStatus</c>, reduced to the states this platform has).</summary>
[GenerateSerializer, Alias("platform.JobState")]
public enum JobState
{
    /// <summary>Submitted; tasks are being deployed.</summary>
    Created,

    /// <summary>Every task is deployed and running.</summary>
    Running,

    /// <summary>Every source reached its end and every task finished.</summary>
    Finished,

    /// <summary>A task failed; see <see cref="JobStatusInfo.Failure"/>.</summary>
    Failed,

    /// <summary>Cancellation was requested; tasks are stopping.</summary>
    Cancelling,

    /// <summary>A failure happened; the job restarts from its latest completed checkpoint.</summary>
    Restarting,

    /// <summary>The job was cancelled.</summary>
    Canceled,
}

/// <summary>Helpers on <see cref="JobState"/>.</summary>
public static class JobStateExtensions
{
    /// <summary>Whether the job will not change state any more.</summary>
    public static bool IsTerminal(this JobState state) => state is JobState.Finished or JobState.Failed or JobState.Canceled;
}

/// <summary>The lifecycle of one subtask.</summary>
[GenerateSerializer, Alias("platform.TaskState")]
public enum TaskState
{
    /// <summary>Not yet deployed.</summary>
    Created,

    /// <summary>Deployed and processing.</summary>
    Running,

    /// <summary>Its input ended and it flushed everything downstream.</summary>
    Finished,

    /// <summary>It failed.</summary>
    Failed,

    /// <summary>It was cancelled.</summary>
    Canceled,

    /// <summary>Deployed and started, restoring its state and opening its operators (Flink's INITIALIZING); running next.</summary>
    Initializing,
}

/// <summary>Why a job failed: which operator, which subtask, and the exception.</summary>
[GenerateSerializer, Alias("platform.FailureInfo")]
public sealed record FailureInfo
{
    /// <summary>The operator that failed, when the failure came from one.</summary>
    [Id(0)] public string? OperatorName { get; init; }

    /// <summary>The task (a chain of operators) that failed.</summary>
    [Id(1)] public string? TaskName { get; init; }

    /// <summary>The failed subtask's index.</summary>
    [Id(2)] public int? SubtaskIndex { get; init; }

    /// <summary>The exception's type name.</summary>
    [Id(3)] public string? ExceptionType { get; init; }

    /// <summary>The exception's message.</summary>
    [Id(4)] public required string Message { get; init; }

    /// <summary>The exception's stack trace, for diagnosis.</summary>
    [Id(5)] public string? StackTrace { get; init; }

    /// <summary>When the failure happened.</summary>
    [Id(6)] public DateTimeOffset Timestamp { get; init; } = DateTimeOffset.UtcNow;

    /// <summary>Why the job was not restarted after this failure, when it ended the job.</summary>
    [Id(7)] public string? NotRestartedBecause { get; init; }

    /// <summary>A one-line description: operator, subtask, exception type and message.</summary>
    public string Describe()
    {
        var where = OperatorName is not null
            ? $"Operator '{OperatorName}'" + (SubtaskIndex is { } i ? $" (subtask {i})" : "")
            : TaskName is not null ? $"Task '{TaskName}'" : "The job";
        var what = ExceptionType is not null ? $"{ExceptionType}: {Message}" : Message;
        return $"{where} failed: {what}" + (NotRestartedBecause is null ? "" : $" (not restarted: {NotRestartedBecause})");
    }

    /// <inheritdoc />
    public override string ToString() => Describe();
}

/// <summary>The state of one subtask as the job manager last saw it.</summary>
[GenerateSerializer, Alias("platform.TaskStatusInfo")]
public sealed record TaskStatusInfo
{
    /// <summary>The task's name: its operators' names joined by " -> ".</summary>
    [Id(0)] public required string TaskName { get; init; }

    /// <summary>The uids of the operators chained into the task.</summary>
    [Id(1)] public required IReadOnlyList<string> OperatorUids { get; init; }

    /// <summary>The subtask's index.</summary>
    [Id(2)] public required int SubtaskIndex { get; init; }

    /// <summary>The task's parallelism.</summary>
    [Id(3)] public required int Parallelism { get; init; }

    /// <summary>The subtask's state.</summary>
    [Id(4)] public required TaskState State { get; init; }

    /// <summary>The silo the subtask runs on, once deployed.</summary>
    [Id(5)] public string? Silo { get; init; }

    /// <summary>The first key group the subtask owns, for keyed tasks.</summary>
    [Id(6)] public int? KeyGroupStart { get; init; }

    /// <summary>The last key group the subtask owns (inclusive), for keyed tasks.</summary>
    [Id(7)] public int? KeyGroupEnd { get; init; }

    /// <summary>Records the subtask consumed (for sources: read), as of its last report.</summary>
    [Id(8)] public long RecordsIn { get; init; }

    /// <summary>Records the subtask emitted downstream, as of its last report.</summary>
    [Id(9)] public long RecordsOut { get; init; }

    /// <summary>
    /// Milliseconds per second the subtask waited for credit on its outputs between its last two reports (Flink's
    /// <c>backPressuredTimeMsPerSecond</c>, 0 to 1,000); <c>null</c> before two reports.
    /// </summary>
    [Id(10)] public double? BackPressuredTimeMsPerSecond { get; init; }
}

/// <summary>A job's status.</summary>
[GenerateSerializer, Alias("platform.JobStatusInfo")]
public sealed record JobStatusInfo
{
    /// <summary>The job's id.</summary>
    [Id(0)] public required string JobId { get; init; }

    /// <summary>The job's name.</summary>
    [Id(1)] public required string Name { get; init; }

    /// <summary>The job's state.</summary>
    [Id(2)] public required JobState State { get; init; }

    /// <summary>The deployment attempt (increases on every restart).</summary>
    [Id(3)] public int Attempt { get; init; }

    /// <summary>When the job was submitted.</summary>
    [Id(4)] public DateTimeOffset SubmittedAt { get; init; }

    /// <summary>When the job reached a terminal state.</summary>
    [Id(5)] public DateTimeOffset? EndedAt { get; init; }

    /// <summary>Why the job failed, when it did.</summary>
    [Id(6)] public FailureInfo? Failure { get; init; }

    /// <summary>Every subtask.</summary>
    [Id(7)] public IReadOnlyList<TaskStatusInfo> Tasks { get; init; } = [];

    /// <summary>The job's max parallelism (number of key groups).</summary>
    [Id(8)] public int MaxParallelism { get; init; }

    /// <summary>How many times the job restarted.</summary>
    [Id(9)] public int Restarts { get; init; }

    /// <summary>The failures that caused restarts, newest first (the last few).</summary>
    [Id(10)] public IReadOnlyList<FailureInfo> RestartCauses { get; init; } = [];

    /// <summary>The silo hosting the job manager (and, usually, the checkpoint coordinator).</summary>
    [Id(11)] public string? JobManagerSilo { get; init; }

    /// <summary>The checkpoint the current attempt restored from, if any.</summary>
    [Id(12)] public long? RestoredFromCheckpoint { get; init; }
}

/// <summary>A line of the job list.</summary>
[GenerateSerializer, Alias("platform.JobSummary")]
public sealed record JobSummary
{
    /// <summary>The job's id.</summary>
    [Id(0)] public required string JobId { get; init; }

    /// <summary>The job's name.</summary>
    [Id(1)] public required string Name { get; init; }

    /// <summary>The job's state as last reported.</summary>
    [Id(2)] public required JobState State { get; init; }

    /// <summary>When it was submitted.</summary>
    [Id(3)] public DateTimeOffset SubmittedAt { get; init; }

    /// <summary>When it ended.</summary>
    [Id(4)] public DateTimeOffset? EndedAt { get; init; }
}

/// <summary>A job graph was refused; <see cref="Problems"/> lists everything that is wrong with it.</summary>
[GenerateSerializer, Alias("platform.JobValidationException")]
public sealed class JobValidationException : Exception
{
    /// <summary>Creates the exception for <paramref name="jobName"/> with every problem found.</summary>
    public JobValidationException(string jobName, IReadOnlyList<string> problems)
        : base(Format(jobName, problems))
    {
        JobName = jobName;
        Problems = [.. problems];
    }

    /// <summary>The refused job's name.</summary>
    [Id(0)] public string JobName { get; }

    /// <summary>Every problem found, one sentence each.</summary>
    [Id(1)] public List<string> Problems { get; }

    private static string Format(string jobName, IReadOnlyList<string> problems) =>
        $"Job '{jobName}' is invalid ({problems.Count} problem{(problems.Count == 1 ? "" : "s")}):" +
        string.Concat(problems.Select((p, i) => $"{Environment.NewLine}  {i + 1}. {p}"));
}

/// <summary>Runs one job: deploys its tasks, tracks them and reports its status (Flink's JobMaster).</summary>
[Alias("platform.IJobManagerGrain")]
public interface IJobManagerGrain : IGrainWithStringKey
{
    /// <summary>Validates and starts the job; throws <see cref="JobValidationException"/> listing every problem.</summary>
    Task<JobStatusInfo> Submit(JobGraph graph);

    /// <summary>The job's current status.</summary>
    [Orleans.Concurrency.AlwaysInterleave]
    Task<JobStatusInfo> GetStatus();

    /// <summary>Cancels the job.</summary>
    Task<JobStatusInfo> Cancel();

    /// <summary>The job's tasks and edges as it runs; <c>null</c> for a job id never submitted.</summary>
    [Orleans.Concurrency.AlwaysInterleave]
    Task<JobPlanInfo?> GetPlan();

    /// <summary>Waits up to <paramref name="maxWait"/> for a terminal state and returns the status then.</summary>
    [Orleans.Concurrency.AlwaysInterleave]
    Task<JobStatusInfo> WaitForTerminalState(TimeSpan maxWait);
}

/// <summary>A job's tasks (chains of operators, Flink's job vertices) and the edges between them, as it runs.</summary>
[GenerateSerializer, Immutable, Alias("platform.JobPlanInfo")]
public sealed record JobPlanInfo
{
    /// <summary>The tasks, in the order of their indexes (sources first).</summary>
    [Id(0)] public IReadOnlyList<TaskPlanInfo> Tasks { get; init; } = [];

    /// <summary>The edges between tasks.</summary>
    [Id(1)] public IReadOnlyList<TaskEdgeInfo> Edges { get; init; } = [];

    /// <summary>The job's checkpointing settings as submitted; <c>null</c> when it does not checkpoint.</summary>
    [Id(2)] public Checkpointing.CheckpointingSettings? Checkpointing { get; init; }

    /// <summary>The state backend the job asked for; <c>null</c> for the silos' default.</summary>
    [Id(3)] public State.StateBackendKind? StateBackend { get; init; }

    /// <summary>The job's maximum parallelism (its number of key groups).</summary>
    [Id(4)] public int MaxParallelism { get; init; }
}

/// <summary>One task of a running job: the operators chained into it and its parallelism.</summary>
[GenerateSerializer, Immutable, Alias("platform.TaskPlanInfo")]
public sealed record TaskPlanInfo
{
    /// <summary>The task's index in the plan (a stable id for the job's lifetime).</summary>
    [Id(0)] public required int Index { get; init; }

    /// <summary>The task's name: its operators' names joined by " -> ".</summary>
    [Id(1)] public required string Name { get; init; }

    /// <summary>The names of the operators chained into the task, head first.</summary>
    [Id(2)] public IReadOnlyList<string> Operators { get; init; } = [];

    /// <summary>The uids of those operators (what their state is restored by).</summary>
    [Id(3)] public IReadOnlyList<string> OperatorUids { get; init; } = [];

    /// <summary>The task's parallelism.</summary>
    [Id(4)] public required int Parallelism { get; init; }

    /// <summary>What the head operator is (source, keyed process, sink, ...).</summary>
    [Id(5)] public required OperatorKind Kind { get; init; }
}

/// <summary>An edge between two tasks and how it distributes records.</summary>
[GenerateSerializer, Immutable, Alias("platform.TaskEdgeInfo")]
public sealed record TaskEdgeInfo([property: Id(0)] int SourceTask, [property: Id(1)] int TargetTask, [property: Id(2)] Partitioning Partitioning);

/// <summary>Lists the jobs submitted to the cluster.</summary>
[Alias("platform.IJobRegistryGrain")]
public interface IJobRegistryGrain : IGrainWithIntegerKey
{
    /// <summary>Records a job's latest state.</summary>
    Task Record(JobSummary summary);

    /// <summary>Every job, newest first.</summary>
    Task<List<JobSummary>> List();
}
