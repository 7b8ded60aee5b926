using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Platform.Catalog;
using Platform.Checkpointing;
using Platform.Client;
using Platform.Runtime;

namespace Platform.Silo.Rest;

/// <summary>
/// Flink's REST API on the silo host (https://nightlies.apache.org/flink/flink-docs-stable/docs/ops/rest_api/): the same
/// resources, names and meanings, over <see cref="PlatformClient"/>. A vertex is a task (a chain of operators), its id
/// the task's index in the plan. Jobs start from the silos' catalog by name (<c>POST /jobs</c>) where Flink runs jars.
/// </summary>
public static partial class FlinkRestApi
{
    /// <summary>The policy that guards the endpoints that change anything (see <see cref="HttpSecurity"/>).</summary>
    public const string AdminPolicy = "platform-admin";

    /// <summary>
    /// Adds what the REST API needs: <see cref="PlatformClient"/> (<c>AddPlatformClient</c>, the CLI's setup), enums as
    /// names in JSON, and its OpenAPI document (<c>/openapi/v1.json</c>).
    /// </summary>
    public static IServiceCollection AddFlinkRestApi(this IServiceCollection services)
    {
        services.AddPlatformClient();
        services.ConfigureHttpJsonOptions(options => options.SerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter()));
        services.AddOpenApi(options => options.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "Stream platform REST API";
            document.Info.Description = "Flink's REST API (jobs, checkpoints, savepoints, stop, cancel) on the silo host, and catalog jobs started by name.";
            return Task.CompletedTask;
        }));
        return services;
    }

    /// <summary>Maps the REST API's endpoints; the mutating ones require <see cref="AdminPolicy"/>.</summary>
    public static IEndpointRouteBuilder MapFlinkRestApi(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var api = endpoints.MapGroup("").WithTags("Flink REST API").AddEndpointFilter(RefusalsAsErrors);
        api.MapGet("/config", GetConfig).WithSummary("The web UI's configuration.");
        api.MapGet("/overview", GetOverviewAsync).WithSummary("The cluster's silos and job counts.");
        api.MapGet("/catalog", GetCatalogAsync).WithSummary("The jobs the silos can start by name, with their arguments.");
        api.MapGet("/jobs", ListJobsAsync).WithSummary("Every job's id and status.");
        api.MapGet("/jobs/overview", JobsOverviewAsync).WithSummary("Every job with its times and subtask counts.");
        api.MapGet("/jobs/{jobId}", GetJobAsync).WithSummary("A job: state, vertices with parallelism, records and back pressure, and plan.");
        api.MapGet("/jobs/{jobId}/vertices/{vertexId}/backpressure", GetBackPressureAsync).WithSummary("A vertex's back pressure per subtask.");
        api.MapGet("/jobs/{jobId}/checkpoints", GetCheckpointsAsync).WithSummary("Checkpoint counts, summary, latest and history.");
        api.MapGet("/jobs/{jobId}/checkpoints/config", GetCheckpointConfigAsync).WithSummary("The job's checkpointing settings.");
        api.MapGet("/jobs/{jobId}/checkpoints/details/{checkpointId}", GetCheckpointDetailsAsync).WithSummary("One checkpoint, per task.");
        api.MapGet("/jobs/{jobId}/checkpoints/details/{checkpointId}/subtasks/{vertexId}", GetCheckpointSubtasksAsync).WithSummary("One task's subtasks in a checkpoint: sync, async, alignment, size.");
        api.MapGet("/jobs/{jobId}/savepoints/{triggerId}", GetSavepointAsync).WithSummary("A savepoint or stop started with a trigger id: IN_PROGRESS or COMPLETED.");
        api.MapPost("/jobs", RunJobAsync).WithSummary("Starts a catalog job by name with arguments.").RequireAuthorization(AdminPolicy);
        api.MapPost("/jobs/{jobId}/savepoints", TriggerSavepointAsync).WithSummary("Triggers a savepoint; returns its trigger id.").RequireAuthorization(AdminPolicy);
        api.MapPost("/jobs/{jobId}/stop", StopWithSavepointAsync).WithSummary("Stops the job with a savepoint; returns its trigger id.").RequireAuthorization(AdminPolicy);
        api.MapPatch("/jobs/{jobId}", CancelJobAsync).WithSummary("Cancels the job (mode=cancel).").RequireAuthorization(AdminPolicy);
        return endpoints;
    }

    // What the platform refuses with a message (a target outside the savepoint root, a job not running, ...) is the
    // caller's to fix: 400 or 409 with the message, never a 500 with a stack trace.
    private static async ValueTask<object?> RefusalsAsErrors(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        try
        {
            return await next(context);
        }
        catch (ArgumentException ex)
        {
            return TypedResults.BadRequest(new ErrorResponse([ex.Message]));
        }
        catch (InvalidOperationException ex)
        {
            return TypedResults.Conflict(new ErrorResponse([ex.Message]));
        }
        catch (TimeoutException ex)
        {
            return TypedResults.Json(new ErrorResponse([$"The cluster did not answer in time ({ex.Message}); try again."]), statusCode: StatusCodes.Status503ServiceUnavailable);
        }
    }

    private static string Version => typeof(FlinkRestApi).Assembly.GetName().Version?.ToString() ?? "unknown";

    private static DashboardConfiguration GetConfig() => new(
        RefreshInterval: 3000,
        TimezoneName: TimeZoneInfo.Local.Id,
        TimezoneOffset: (long)TimeZoneInfo.Local.GetUtcOffset(DateTime.UtcNow).TotalMilliseconds,
        Version: Version,
        Revision: "platform",
        Features: new DashboardFeatures(Submit: true, Cancel: true, History: false));

    private static async Task<ClusterOverview> GetOverviewAsync(PlatformClient platform, IGrainFactory grains)
    {
        var hosts = await grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true);
        var jobs = await platform.ListJobsAsync();
        return new ClusterOverview(
            hosts.Count,
            jobs.Count(j => !j.State.IsTerminal()),
            jobs.Count(j => j.State == JobState.Finished),
            jobs.Count(j => j.State == JobState.Canceled),
            jobs.Count(j => j.State == JobState.Failed),
            Version);
    }

    private static async Task<CatalogResponse> GetCatalogAsync(PlatformClient platform) => new(await platform.GetCatalogAsync());

    private static async Task<JobIdsWithStatus> ListJobsAsync(PlatformClient platform) =>
        new([.. (await platform.ListJobsAsync()).Select(j => new JobIdWithStatus(j.JobId, Name(j.State)))]);

    private static async Task<MultipleJobsDetails> JobsOverviewAsync(PlatformClient platform)
    {
        var jobs = await platform.ListJobsAsync();
        var statuses = await Task.WhenAll(jobs.Select(j => platform.GetStatusAsync(j.JobId)));
        var now = DateTimeOffset.UtcNow;
        return new([.. statuses.Select(s => new JobOverview(
            s.JobId,
            s.Name,
            Name(s.State),
            s.SubmittedAt.ToUnixTimeMilliseconds(),
            s.EndedAt?.ToUnixTimeMilliseconds() ?? -1,
            Milliseconds((s.EndedAt ?? now) - s.SubmittedAt),
            (s.EndedAt ?? now).ToUnixTimeMilliseconds(),
            TaskCounts(s.Tasks)))]);
    }

    private static async Task<Results<Ok<JobDetails>, NotFound<ErrorResponse>>> GetJobAsync(string jobId, PlatformClient platform)
    {
        if (await FindJobAsync(platform, jobId) is not { } job)
        {
            return JobNotFound(jobId);
        }

        var (status, plan) = job;
        var now = DateTimeOffset.UtcNow;
        var vertices = plan.Tasks.Select(task =>
        {
            var subtasks = status.Tasks.Where(t => t.TaskName == task.Name && t.Parallelism == task.Parallelism).OrderBy(t => t.SubtaskIndex).ToList();
            var rates = subtasks.Select(t => t.BackPressuredTimeMsPerSecond).OfType<double>().ToList();
            return new JobVertexDetails(
                VertexId(task.Index),
                task.Name,
                task.Operators,
                plan.MaxParallelism,
                task.Parallelism,
                VertexStatus(subtasks),
                TaskCounts(subtasks),
                new VertexMetrics(subtasks.Sum(t => t.RecordsIn), subtasks.Sum(t => t.RecordsOut), rates.Count > 0 ? rates.Max() : null),
                BackpressureLevel(rates.Count > 0 ? rates.Max() : null),
                [.. subtasks.Select(t => new SubtaskDetails(
                    t.SubtaskIndex,
                    Name(t.State),
                    t.Silo,
                    t.KeyGroupStart is { } first ? $"{first}-{t.KeyGroupEnd}" : null,
                    t.RecordsIn,
                    t.RecordsOut,
                    t.BackPressuredTimeMsPerSecond,
                    BackpressureLevel(t.BackPressuredTimeMsPerSecond)))]);
        }).ToList();
        var nodes = plan.Tasks.Select(task => new JobPlanNode(
            VertexId(task.Index),
            task.Parallelism,
            task.Kind.ToString(),
            task.Name,
            [.. plan.Edges.Where(e => e.TargetTask == task.Index).Select((e, i) => new JobPlanInput(i, VertexId(e.SourceTask), ShipStrategy(e.Partitioning), "pipelined_bounded"))])).ToList();
        return TypedResults.Ok(new JobDetails(
            status.JobId,
            status.Name,
            IsStoppable: status.State == JobState.Running && plan.Checkpointing is not null,
            Name(status.State),
            status.SubmittedAt.ToUnixTimeMilliseconds(),
            status.EndedAt?.ToUnixTimeMilliseconds() ?? -1,
            Milliseconds((status.EndedAt ?? now) - status.SubmittedAt),
            plan.MaxParallelism,
            now.ToUnixTimeMilliseconds(),
            status.Attempt,
            status.Restarts,
            status.Failure?.Describe(),
            vertices,
            TaskCounts(status.Tasks),
            new JobPlan(status.JobId, status.Name, "STREAMING", nodes)));
    }

    private static async Task<Results<Ok<JobVertexBackPressure>, NotFound<ErrorResponse>>> GetBackPressureAsync(string jobId, string vertexId, PlatformClient platform)
    {
        if (await FindJobAsync(platform, jobId) is not { } job)
        {
            return JobNotFound(jobId);
        }

        if (FindVertex(job.Plan, vertexId) is not { } task)
        {
            return VertexNotFound(jobId, vertexId, job.Plan);
        }

        var subtasks = job.Status.Tasks.Where(t => t.TaskName == task.Name).OrderBy(t => t.SubtaskIndex).ToList();
        var worst = subtasks.Select(t => t.BackPressuredTimeMsPerSecond).OfType<double>().DefaultIfEmpty(0).Max();
        return TypedResults.Ok(new JobVertexBackPressure(
            "ok",
            BackpressureLevel(worst),
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            [.. subtasks.Select(t => new SubtaskBackPressure(t.SubtaskIndex, BackpressureLevel(t.BackPressuredTimeMsPerSecond ?? 0), (t.BackPressuredTimeMsPerSecond ?? 0) / 1_000))]));
    }

    private static async Task<Results<Ok<CheckpointingStatistics>, NotFound<ErrorResponse>>> GetCheckpointsAsync(string jobId, PlatformClient platform)
    {
        if (await FindJobAsync(platform, jobId) is not { } job)
        {
            return JobNotFound(jobId);
        }

        var statistics = await platform.GetCheckpointStatisticsAsync(jobId);
        var completed = statistics.History.Where(h => h.Status == CheckpointStatus.Completed && h.SavepointPath is null).ToList();
        var latestSavepoint = statistics.History.FirstOrDefault(h => h.Status == CheckpointStatus.Completed && h.SavepointPath is not null);
        var restoredPath = statistics.LatestRestoredId is { } restoredId ? statistics.History.FirstOrDefault(h => h.Id == restoredId)?.SavepointPath : null;
        var restored = statistics.LatestRestoredId is { } id ? new RestoredCheckpoint(id, restoredPath is not null, restoredPath) : null;
        return TypedResults.Ok(new CheckpointingStatistics(
            new CheckpointCounts(statistics.Restored, statistics.Completed + statistics.Failed + statistics.InProgress, statistics.InProgress, statistics.Completed, statistics.Failed),
            new CheckpointSummary(
                Summarize(completed.Select(c => c.CheckpointedSize)),
                Summarize(completed.Select(c => c.StateSize)),
                Summarize(completed.Select(c => Milliseconds(c.EndToEndDuration ?? TimeSpan.Zero))),
                Summarize(completed.Select(c => c.Subtasks.Count == 0 ? 0 : c.Subtasks.Max(s => Milliseconds(s.AlignmentDuration)))),
                // Flink's processed/persisted in-flight data (unaligned checkpoints), which this runtime never buffers.
                NoneSummary,
                NoneSummary,
                NoneSummary),
            new LatestCheckpoints(
                statistics.History.FirstOrDefault(h => h.Status == CheckpointStatus.Completed && h.SavepointPath is null) is { } c ? Entry(c, job.Plan, withTasks: false) : null,
                latestSavepoint is null ? null : Entry(latestSavepoint, job.Plan, withTasks: false),
                statistics.LatestFailed is { } f ? Entry(f, job.Plan, withTasks: false) : null,
                restored),
            [.. statistics.History.Select(h => Entry(h, job.Plan, withTasks: false))]));
    }

    private static async Task<Results<Ok<CheckpointConfigInfo>, NotFound<ErrorResponse>>> GetCheckpointConfigAsync(string jobId, PlatformClient platform)
    {
        if (await FindJobAsync(platform, jobId) is not { } job)
        {
            return JobNotFound(jobId);
        }

        if (job.Plan.Checkpointing is not { } settings)
        {
            return TypedResults.NotFound(new ErrorResponse([$"Job '{jobId}' does not checkpoint: it was submitted without checkpointing settings."]));
        }

        return TypedResults.Ok(new CheckpointConfigInfo(
            settings.Mode == CheckpointingMode.ExactlyOnce ? "exactly_once" : "at_least_once",
            settings.Interval is { } interval ? Milliseconds(interval) : long.MaxValue,
            Milliseconds(settings.Timeout),
            Milliseconds(settings.MinPauseBetweenCheckpoints),
            settings.MaxConcurrentCheckpoints,
            new ExternalizedCheckpointInfo(Enabled: true, DeleteOnCancellation: settings.Retention == CheckpointRetention.DeleteOnCancellation),
            job.Plan.StateBackend?.ToString() ?? "silo default",
            settings.Storage?.ToString() ?? "silo default",
            UnalignedCheckpoints: false,
            settings.TolerableFailedCheckpoints,
            CheckpointsAfterTasksFinish: true,
            settings.RetainedCheckpoints,
            settings.Incremental));
    }

    private static async Task<Results<Ok<CheckpointStatisticsEntry>, NotFound<ErrorResponse>>> GetCheckpointDetailsAsync(string jobId, long checkpointId, PlatformClient platform)
    {
        if (await FindJobAsync(platform, jobId) is not { } job)
        {
            return JobNotFound(jobId);
        }

        var statistics = await platform.GetCheckpointStatisticsAsync(jobId);
        return statistics.History.FirstOrDefault(h => h.Id == checkpointId) is { } checkpoint
            ? TypedResults.Ok(Entry(checkpoint, job.Plan, withTasks: true))
            : CheckpointNotFound(jobId, checkpointId, statistics);
    }

    private static async Task<Results<Ok<TaskCheckpointStatisticsWithSubtaskDetails>, NotFound<ErrorResponse>>> GetCheckpointSubtasksAsync(string jobId, long checkpointId, string vertexId, PlatformClient platform)
    {
        if (await FindJobAsync(platform, jobId) is not { } job)
        {
            return JobNotFound(jobId);
        }

        if (FindVertex(job.Plan, vertexId) is not { } task)
        {
            return VertexNotFound(jobId, vertexId, job.Plan);
        }

        var statistics = await platform.GetCheckpointStatisticsAsync(jobId);
        if (statistics.History.FirstOrDefault(h => h.Id == checkpointId) is not { } checkpoint)
        {
            return CheckpointNotFound(jobId, checkpointId, statistics);
        }

        var acknowledged = SubtasksOf(checkpoint, task, job.Plan).ToDictionary(s => s.SubtaskIndex);
        var summary = TaskSummary(checkpoint, task, job.Plan);
        var list = acknowledged.Values.ToList();
        return TypedResults.Ok(new TaskCheckpointStatisticsWithSubtaskDetails(
            checkpoint.Id,
            summary.Status,
            summary.LatestAckTimestamp,
            summary.CheckpointedSize,
            summary.StateSize,
            summary.EndToEndDuration,
            task.Parallelism,
            acknowledged.Count,
            new TaskCheckpointSummary(
                Summarize(list.Select(s => s.CheckpointedSize)),
                Summarize(list.Select(s => s.StateSize)),
                Summarize(list.Select(s => Milliseconds(s.AcknowledgedAt - checkpoint.TriggeredAt))),
                new CheckpointDurationSummary(Summarize(list.Select(s => Milliseconds(s.SyncDuration))), Summarize(list.Select(s => Milliseconds(s.AsyncDuration)))),
                new AlignmentSummary(NoneSummary, Summarize(list.Select(s => Milliseconds(s.AlignmentDuration))))),
            [.. Enumerable.Range(0, task.Parallelism).Select(index => acknowledged.TryGetValue(index, out var s)
                ? new SubtaskCheckpointStatistics(
                    index,
                    "completed",
                    s.AcknowledgedAt.ToUnixTimeMilliseconds(),
                    Milliseconds(s.AcknowledgedAt - checkpoint.TriggeredAt),
                    s.StateSize,
                    s.CheckpointedSize,
                    new SubtaskCheckpointDuration(Milliseconds(s.SyncDuration), Milliseconds(s.AsyncDuration)),
                    new SubtaskAlignment(0, Milliseconds(s.AlignmentDuration)),
                    s.Finished)
                : new SubtaskCheckpointStatistics(index, "pending_or_failed", null, null, null, null, null, null, false))]));
    }

    private static async Task<Results<Ok<AsynchronousOperationResult>, NotFound<ErrorResponse>>> GetSavepointAsync(string jobId, string triggerId, PlatformClient platform)
    {
        if (await FindJobAsync(platform, jobId) is null)
        {
            return JobNotFound(jobId);
        }

        if (await platform.GetSavepointAsync(jobId, triggerId) is not { } savepoint)
        {
            return TypedResults.NotFound(new ErrorResponse([$"Job '{jobId}' has no savepoint with trigger id '{triggerId}': it was never triggered, or is older than the 100 savepoints a job remembers."]));
        }

        return TypedResults.Ok(savepoint.Status switch
        {
            CheckpointStatus.InProgress => new AsynchronousOperationResult(new QueueStatus("IN_PROGRESS"), null),
            CheckpointStatus.Completed => new AsynchronousOperationResult(new QueueStatus("COMPLETED"), new SavepointOperation(savepoint.SavepointPath, null)),
            _ => new AsynchronousOperationResult(new QueueStatus("COMPLETED"), new SavepointOperation(null, new FailureCause(
                savepoint.FailureCause?.ToString() ?? "CheckpointException",
                $"Savepoint {savepoint.Id} failed: {savepoint.FailureReason}"))),
        });
    }

    private static async Task<IResult> TriggerSavepointAsync(string jobId, SavepointTriggerRequestBody? body, PlatformClient platform, ILoggerFactory loggers)
    {
        if (await FindJobAsync(platform, jobId) is null)
        {
            return JobNotFound(jobId);
        }

        body ??= new SavepointTriggerRequestBody(null, false, null, null);
        if (ParseFormat(body.FormatType) is not { } format)
        {
            return BadFormat(body.FormatType);
        }

        var triggerId = await platform.StartSavepointAsync(jobId, new SavepointRequest { TargetDirectory = Blank(body.TargetDirectory), Format = format, RequestId = Blank(body.TriggerId) });
        if (body.CancelJob)
        {
            // Flink's cancel with savepoint: the job is canceled once its savepoint completed (and keeps running if it failed).
            _ = CancelAfterSavepointAsync(platform, jobId, triggerId, loggers.CreateLogger(typeof(FlinkRestApi).FullName!));
        }

        return TypedResults.Accepted($"/jobs/{jobId}/savepoints/{triggerId}", new TriggerResponse(triggerId));
    }

    private static async Task<IResult> StopWithSavepointAsync(string jobId, StopWithSavepointRequestBody? body, PlatformClient platform)
    {
        if (await FindJobAsync(platform, jobId) is null)
        {
            return JobNotFound(jobId);
        }

        body ??= new StopWithSavepointRequestBody(null, false, null, null);
        if (ParseFormat(body.FormatType) is not { } format)
        {
            return BadFormat(body.FormatType);
        }

        var triggerId = await platform.StartSavepointAsync(jobId, new SavepointRequest { TargetDirectory = Blank(body.TargetDirectory), Format = format, RequestId = Blank(body.TriggerId), Stop = true, Drain = body.Drain });
        return TypedResults.Accepted($"/jobs/{jobId}/savepoints/{triggerId}", new TriggerResponse(triggerId));
    }

    private static async Task<IResult> CancelJobAsync(string jobId, string? mode, PlatformClient platform)
    {
        if (mode is not (null or "cancel"))
        {
            return TypedResults.BadRequest(new ErrorResponse([$"mode '{mode}' is not supported; use mode=cancel, or POST /jobs/{jobId}/stop to stop with a savepoint."]));
        }

        if (await FindJobAsync(platform, jobId) is null)
        {
            return JobNotFound(jobId);
        }

        await platform.CancelAsync(jobId);
        return TypedResults.Accepted((string?)null, new { });
    }

    private static async Task<IResult> RunJobAsync(JobRunRequestBody? body, PlatformClient platform)
    {
        if (body is null || string.IsNullOrWhiteSpace(body.Job))
        {
            return TypedResults.BadRequest(new ErrorResponse(["The body names no job: send {\"job\": \"<catalog name>\", \"arguments\": {\"name\": \"value\"}}; GET /catalog lists the jobs."]));
        }

        try
        {
            var restore = string.IsNullOrWhiteSpace(body.SavepointPath) ? null : new RestoreSettings { Path = body.SavepointPath, AllowNonRestoredState = body.AllowNonRestoredState };
            var jobId = await platform.RunAsync(body.Job, body.Arguments ?? new Dictionary<string, string>(), body.Parallelism, restoreFrom: restore);
            return TypedResults.Ok(new JobRunResponseBody(jobId));
        }
        catch (JobNotInCatalogException ex)
        {
            return TypedResults.NotFound(new ErrorResponse([$"No job named '{ex.Name}' is in the catalog; the catalog has: {string.Join(", ", ex.Known)}."]));
        }
        catch (JobArgumentException ex)
        {
            return TypedResults.BadRequest(new ErrorResponse(ex.Problems));
        }
        catch (JobValidationException ex)
        {
            return TypedResults.BadRequest(new ErrorResponse(ex.Problems));
        }
    }

    private static async Task CancelAfterSavepointAsync(PlatformClient platform, string jobId, string triggerId, ILogger logger)
    {
        try
        {
            var deadline = DateTimeOffset.UtcNow + TimeSpan.FromMinutes(30);
            while (DateTimeOffset.UtcNow < deadline)
            {
                var savepoint = await platform.GetSavepointAsync(jobId, triggerId);
                if (savepoint is { Status: CheckpointStatus.Completed })
                {
                    await platform.CancelAsync(jobId);
                    return;
                }

                if (savepoint is null or { Status: CheckpointStatus.Failed })
                {
                    LogCancelSkipped(logger, jobId, triggerId, savepoint?.FailureReason ?? "it is no longer known");
                    return;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(500));
            }
        }
        catch (Exception ex)
        {
            LogCancelFailed(logger, ex, jobId, triggerId);
        }
    }

    private static async Task<(JobStatusInfo Status, JobPlanInfo Plan)?> FindJobAsync(PlatformClient platform, string jobId)
    {
        // The registry knows every submitted job; asking a job manager by an unknown id would only activate an empty one.
        if (!(await platform.ListJobsAsync()).Any(j => j.JobId == jobId))
        {
            return null;
        }

        var plan = await platform.GetPlanAsync(jobId);
        var status = await platform.GetStatusAsync(jobId);
        return plan is null ? null : (status, plan);
    }

    private static TaskPlanInfo? FindVertex(JobPlanInfo plan, string vertexId) =>
        int.TryParse(vertexId, NumberStyles.None, CultureInfo.InvariantCulture, out var index) ? plan.Tasks.FirstOrDefault(t => t.Index == index) : null;

    private static CheckpointStatisticsEntry Entry(CheckpointStats checkpoint, JobPlanInfo plan, bool withTasks)
    {
        var isSavepoint = checkpoint.SavepointPath is not null;
        var lastAck = checkpoint.Subtasks.Count == 0 ? checkpoint.TriggeredAt : checkpoint.Subtasks.Max(s => s.AcknowledgedAt);
        return new CheckpointStatisticsEntry(
            checkpoint.Status switch
            {
                CheckpointStatus.Completed => ".CompletedCheckpointStatistics",
                CheckpointStatus.Failed => ".FailedCheckpointStatistics",
                _ => ".PendingCheckpointStatistics",
            },
            checkpoint.Id,
            Name(checkpoint.Status),
            isSavepoint,
            isSavepoint ? "CANONICAL" : null,
            checkpoint.TriggeredAt.ToUnixTimeMilliseconds(),
            lastAck.ToUnixTimeMilliseconds(),
            checkpoint.CheckpointedSize,
            checkpoint.StateSize,
            Milliseconds(checkpoint.EndToEndDuration ?? (lastAck - checkpoint.TriggeredAt)),
            0,
            0,
            0,
            checkpoint.SubtasksTotal,
            checkpoint.Subtasks.Count,
            isSavepoint ? "SAVEPOINT" : "CHECKPOINT",
            checkpoint.SavepointPath,
            Discarded: false,
            checkpoint.Status == CheckpointStatus.Failed ? (checkpoint.TriggeredAt + (checkpoint.EndToEndDuration ?? TimeSpan.Zero)).ToUnixTimeMilliseconds() : null,
            checkpoint.FailureReason,
            withTasks ? plan.Tasks.ToDictionary(t => VertexId(t.Index), t => TaskSummary(checkpoint, t, plan)) : new Dictionary<string, TaskCheckpointStatistics>());
    }

    private static TaskCheckpointStatistics TaskSummary(CheckpointStats checkpoint, TaskPlanInfo task, JobPlanInfo plan)
    {
        var subtasks = SubtasksOf(checkpoint, task, plan).ToList();
        var lastAck = subtasks.Count == 0 ? checkpoint.TriggeredAt : subtasks.Max(s => s.AcknowledgedAt);
        var status = subtasks.Count == task.Parallelism ? "COMPLETED" : checkpoint.Status == CheckpointStatus.Failed ? "FAILED" : "IN_PROGRESS";
        return new TaskCheckpointStatistics(
            checkpoint.Id,
            status,
            lastAck.ToUnixTimeMilliseconds(),
            subtasks.Sum(s => s.CheckpointedSize),
            subtasks.Sum(s => s.StateSize),
            Milliseconds(lastAck - checkpoint.TriggeredAt),
            0,
            task.Parallelism,
            subtasks.Count);
    }

    // Statistics recorded before subtask statistics kept their task's index match by the task's name.
    private static IEnumerable<SubtaskCheckpointStats> SubtasksOf(CheckpointStats checkpoint, TaskPlanInfo task, JobPlanInfo plan) =>
        checkpoint.Subtasks.Where(s => s.TaskIndex is { } index ? index == task.Index : s.TaskName == task.Name);

    /// <summary>The summary of a figure that is always zero here (in-flight data, which unaligned checkpoints would persist).</summary>
    private static readonly StatsSummary NoneSummary = new(0, 0, 0, 0, 0, 0, 0, 0);

    /// <summary>Minimum, maximum, average and nearest-rank percentiles; all zero for no values.</summary>
    internal static StatsSummary Summarize(IEnumerable<long> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return NoneSummary;
        }

        double Percentile(double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
        return new StatsSummary(sorted[0], sorted[^1], (long)Math.Round(sorted.Average()), Percentile(0.5), Percentile(0.9), Percentile(0.95), Percentile(0.99), Percentile(0.999));
    }

    private static Dictionary<string, int> TaskCounts(IEnumerable<TaskStatusInfo> tasks)
    {
        var counts = Enum.GetValues<TaskState>().ToDictionary(Name, _ => 0);
        foreach (var task in tasks)
        {
            counts[Name(task.State)]++;
        }

        return counts;
    }

    private static string VertexStatus(IReadOnlyList<TaskStatusInfo> subtasks) =>
        subtasks.Count == 0 ? "CREATED"
        : subtasks.Any(t => t.State == TaskState.Failed) ? "FAILED"
        : subtasks.All(t => t.State == subtasks[0].State) ? Name(subtasks[0].State)
        : subtasks.Any(t => t.State == TaskState.Running) ? "RUNNING"
        : Name(subtasks.Min(t => t.State));

    // Flink's thresholds: up to 10 % of the time back-pressured is OK, up to 50 % LOW, above HIGH.
    private static string BackpressureLevel(double? msPerSecond) => msPerSecond switch
    {
        null => "ok",
        <= 100 => "ok",
        <= 500 => "low",
        _ => "high",
    };

    private static string ShipStrategy(Graph.Partitioning partitioning) => partitioning switch
    {
        Graph.Partitioning.Hash => "HASH",
        Graph.Partitioning.Rebalance => "REBALANCE",
        _ => "FORWARD",
    };

    private static SavepointFormat? ParseFormat(string? format) => format?.Trim().ToUpperInvariant() switch
    {
        null or "" or "CANONICAL" => SavepointFormat.Portable,
        "NATIVE" => SavepointFormat.Native,
        _ => null,
    };

    private static BadRequest<ErrorResponse> BadFormat(string? format) =>
        TypedResults.BadRequest(new ErrorResponse([$"formatType '{format}' is not a savepoint format; use CANONICAL (portable between state backends, the default) or NATIVE."]));

    private static string? Blank(string? text) => string.IsNullOrWhiteSpace(text) ? null : text;

    private static string VertexId(int index) => index.ToString(CultureInfo.InvariantCulture);

    private static long Milliseconds(TimeSpan duration) => (long)Math.Round(duration.TotalMilliseconds);

    private static string Name(JobState state) => state.ToString().ToUpperInvariant();

    private static string Name(TaskState state) => state.ToString().ToUpperInvariant();

    private static string Name(CheckpointStatus status) => status switch
    {
        CheckpointStatus.InProgress => "IN_PROGRESS",
        _ => status.ToString().ToUpperInvariant(),
    };

    private static NotFound<ErrorResponse> JobNotFound(string jobId) =>
        TypedResults.NotFound(new ErrorResponse([$"No job with id '{jobId}' is known to the cluster; GET /jobs lists the jobs."]));

    private static NotFound<ErrorResponse> VertexNotFound(string jobId, string vertexId, JobPlanInfo plan) =>
        TypedResults.NotFound(new ErrorResponse([$"Job '{jobId}' has no vertex '{vertexId}'; its vertices are {string.Join(", ", plan.Tasks.Select(t => $"{t.Index} ({t.Name})"))}."]));

    private static NotFound<ErrorResponse> CheckpointNotFound(string jobId, long checkpointId, CheckpointStatistics statistics) =>
        TypedResults.NotFound(new ErrorResponse([$"Job '{jobId}' has no checkpoint {checkpointId} in its history; it keeps {string.Join(", ", statistics.History.Select(h => h.Id))}."]));

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} was not canceled after savepoint {TriggerId}: {Reason}")]
    private static partial void LogCancelSkipped(ILogger logger, string jobId, string triggerId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Canceling job {JobId} after savepoint {TriggerId} failed")]
    private static partial void LogCancelFailed(ILogger logger, Exception exception, string jobId, string triggerId);
}
