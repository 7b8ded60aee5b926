using System.Text.Json.Serialization;

namespace Platform.Silo.Rest;

// The REST API's documents, named as Flink's REST API names them (https://nightlies.apache.org/flink/flink-docs-stable/docs/ops/rest_api/),
// so that tools written against Flink read them. Times are milliseconds since the Unix epoch, durations milliseconds,
// sizes bytes.

/// <summary>An error: what is wrong and what to do, one line each (Flink's error body).</summary>
public sealed record ErrorResponse([property: JsonPropertyName("errors")] IReadOnlyList<string> Errors);

/// <summary><c>GET /config</c>: what the web UI needs to know of the cluster.</summary>
public sealed record DashboardConfiguration(
    [property: JsonPropertyName("refresh-interval")] int RefreshInterval,
    [property: JsonPropertyName("timezone-name")] string TimezoneName,
    [property: JsonPropertyName("timezone-offset")] long TimezoneOffset,
    [property: JsonPropertyName("flink-version")] string Version,
    [property: JsonPropertyName("flink-revision")] string Revision,
    [property: JsonPropertyName("features")] DashboardFeatures Features);

/// <summary>Which actions the web UI offers.</summary>
public sealed record DashboardFeatures(
    [property: JsonPropertyName("web-submit")] bool Submit,
    [property: JsonPropertyName("web-cancel")] bool Cancel,
    [property: JsonPropertyName("web-history")] bool History);

/// <summary><c>GET /overview</c>: the cluster at a glance (silos stand for Flink's task managers).</summary>
public sealed record ClusterOverview(
    [property: JsonPropertyName("taskmanagers")] int TaskManagers,
    [property: JsonPropertyName("jobs-running")] int JobsRunning,
    [property: JsonPropertyName("jobs-finished")] int JobsFinished,
    [property: JsonPropertyName("jobs-cancelled")] int JobsCancelled,
    [property: JsonPropertyName("jobs-failed")] int JobsFailed,
    [property: JsonPropertyName("flink-version")] string Version);

/// <summary><c>GET /jobs</c>: every job's id and status.</summary>
public sealed record JobIdsWithStatus([property: JsonPropertyName("jobs")] IReadOnlyList<JobIdWithStatus> Jobs);

/// <summary>A job's id and status.</summary>
public sealed record JobIdWithStatus([property: JsonPropertyName("id")] string Id, [property: JsonPropertyName("status")] string Status);

/// <summary><c>GET /jobs/overview</c>: every job with its times and subtask counts.</summary>
public sealed record MultipleJobsDetails([property: JsonPropertyName("jobs")] IReadOnlyList<JobOverview> Jobs);

/// <summary>One job in <c>GET /jobs/overview</c>.</summary>
public sealed record JobOverview(
    [property: JsonPropertyName("jid")] string Id,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("start-time")] long StartTime,
    [property: JsonPropertyName("end-time")] long EndTime,
    [property: JsonPropertyName("duration")] long Duration,
    [property: JsonPropertyName("last-modification")] long LastModification,
    [property: JsonPropertyName("tasks")] IReadOnlyDictionary<string, int> Tasks);

/// <summary><c>GET /jobs/{jobId}</c>: a job, its vertices (tasks of chained operators) and its plan.</summary>
public sealed record JobDetails(
    [property: JsonPropertyName("jid")] string Id,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("isStoppable")] bool IsStoppable,
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("start-time")] long StartTime,
    [property: JsonPropertyName("end-time")] long EndTime,
    [property: JsonPropertyName("duration")] long Duration,
    [property: JsonPropertyName("maxParallelism")] int MaxParallelism,
    [property: JsonPropertyName("now")] long Now,
    [property: JsonPropertyName("attempt")] int Attempt,
    [property: JsonPropertyName("restarts")] int Restarts,
    [property: JsonPropertyName("failure")] string? Failure,
    [property: JsonPropertyName("vertices")] IReadOnlyList<JobVertexDetails> Vertices,
    [property: JsonPropertyName("status-counts")] IReadOnlyDictionary<string, int> StatusCounts,
    [property: JsonPropertyName("plan")] JobPlan Plan);

/// <summary>A vertex of <see cref="JobDetails"/>: one task, its subtasks' states, records and back pressure.</summary>
public sealed record JobVertexDetails(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("operators")] IReadOnlyList<string> Operators,
    [property: JsonPropertyName("maxParallelism")] int MaxParallelism,
    [property: JsonPropertyName("parallelism")] int Parallelism,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("tasks")] IReadOnlyDictionary<string, int> Tasks,
    [property: JsonPropertyName("metrics")] VertexMetrics Metrics,
    [property: JsonPropertyName("backpressure-level")] string BackpressureLevel,
    [property: JsonPropertyName("subtasks")] IReadOnlyList<SubtaskDetails> Subtasks);

/// <summary>A vertex's record counts, summed over its subtasks.</summary>
public sealed record VertexMetrics(
    [property: JsonPropertyName("read-records")] long ReadRecords,
    [property: JsonPropertyName("write-records")] long WriteRecords,
    [property: JsonPropertyName("backPressuredTimeMsPerSecond")] double? BackPressuredTimeMsPerSecond);

/// <summary>One subtask of a vertex.</summary>
public sealed record SubtaskDetails(
    [property: JsonPropertyName("subtask")] int Subtask,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("host")] string? Host,
    [property: JsonPropertyName("key-groups")] string? KeyGroups,
    [property: JsonPropertyName("read-records")] long ReadRecords,
    [property: JsonPropertyName("write-records")] long WriteRecords,
    [property: JsonPropertyName("backPressuredTimeMsPerSecond")] double? BackPressuredTimeMsPerSecond,
    [property: JsonPropertyName("backpressure-level")] string BackpressureLevel);

/// <summary>The job's plan: its nodes and the edges between them.</summary>
public sealed record JobPlan(
    [property: JsonPropertyName("jid")] string Id,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("nodes")] IReadOnlyList<JobPlanNode> Nodes);

/// <summary>A node of the plan, with its inputs.</summary>
public sealed record JobPlanNode(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("parallelism")] int Parallelism,
    [property: JsonPropertyName("operator")] string Operator,
    [property: JsonPropertyName("description")] string Description,
    [property: JsonPropertyName("inputs")] IReadOnlyList<JobPlanInput> Inputs);

/// <summary>An input of a plan node: the upstream node and how records are distributed (FORWARD, HASH, REBALANCE).</summary>
public sealed record JobPlanInput(
    [property: JsonPropertyName("num")] int Number,
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("ship_strategy")] string ShipStrategy,
    [property: JsonPropertyName("exchange")] string Exchange);

/// <summary><c>GET /jobs/{jobId}/vertices/{vertexId}/backpressure</c>: the vertex's back pressure per subtask.</summary>
public sealed record JobVertexBackPressure(
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("backpressure-level")] string BackpressureLevel,
    [property: JsonPropertyName("end-timestamp")] long EndTimestamp,
    [property: JsonPropertyName("subtasks")] IReadOnlyList<SubtaskBackPressure> Subtasks);

/// <summary>One subtask's back pressure: the share of time it waited for credit (0 to 1) and its level.</summary>
public sealed record SubtaskBackPressure(
    [property: JsonPropertyName("subtask")] int Subtask,
    [property: JsonPropertyName("backpressure-level")] string BackpressureLevel,
    [property: JsonPropertyName("ratio")] double Ratio);

/// <summary><c>GET /jobs/{jobId}/checkpoints</c>: counts, summary, latest and history.</summary>
public sealed record CheckpointingStatistics(
    [property: JsonPropertyName("counts")] CheckpointCounts Counts,
    [property: JsonPropertyName("summary")] CheckpointSummary Summary,
    [property: JsonPropertyName("latest")] LatestCheckpoints Latest,
    [property: JsonPropertyName("history")] IReadOnlyList<CheckpointStatisticsEntry> History);

/// <summary>How many checkpoints were restored, triggered, are in progress, completed and failed.</summary>
public sealed record CheckpointCounts(
    [property: JsonPropertyName("restored")] long Restored,
    [property: JsonPropertyName("total")] long Total,
    [property: JsonPropertyName("in_progress")] long InProgress,
    [property: JsonPropertyName("completed")] long Completed,
    [property: JsonPropertyName("failed")] long Failed);

/// <summary>Minimum, maximum, average and percentiles of a quantity (Flink's StatsSummaryDto).</summary>
public sealed record StatsSummary(
    [property: JsonPropertyName("min")] long Min,
    [property: JsonPropertyName("max")] long Max,
    [property: JsonPropertyName("avg")] long Average,
    [property: JsonPropertyName("p50")] double P50,
    [property: JsonPropertyName("p90")] double P90,
    [property: JsonPropertyName("p95")] double P95,
    [property: JsonPropertyName("p99")] double P99,
    [property: JsonPropertyName("p999")] double P999);

/// <summary>
/// The summary over the completed checkpoints in the history: sizes, end-to-end duration, and (beyond Flink's) the
/// longest subtask alignment of each checkpoint.
/// </summary>
public sealed record CheckpointSummary(
    [property: JsonPropertyName("checkpointed_size")] StatsSummary CheckpointedSize,
    [property: JsonPropertyName("state_size")] StatsSummary StateSize,
    [property: JsonPropertyName("end_to_end_duration")] StatsSummary EndToEndDuration,
    [property: JsonPropertyName("alignment_duration")] StatsSummary AlignmentDuration,
    [property: JsonPropertyName("alignment_buffered")] StatsSummary AlignmentBuffered,
    [property: JsonPropertyName("processed_data")] StatsSummary ProcessedData,
    [property: JsonPropertyName("persisted_data")] StatsSummary PersistedData);

/// <summary>The latest completed checkpoint, savepoint, failed checkpoint and restore.</summary>
public sealed record LatestCheckpoints(
    [property: JsonPropertyName("completed")] CheckpointStatisticsEntry? Completed,
    [property: JsonPropertyName("savepoint")] CheckpointStatisticsEntry? Savepoint,
    [property: JsonPropertyName("failed")] CheckpointStatisticsEntry? Failed,
    [property: JsonPropertyName("restored")] RestoredCheckpoint? Restored);

/// <summary>The checkpoint the job was last restored from.</summary>
public sealed record RestoredCheckpoint(
    [property: JsonPropertyName("id")] long Id,
    [property: JsonPropertyName("is_savepoint")] bool IsSavepoint,
    [property: JsonPropertyName("external_path")] string? ExternalPath);

/// <summary>One checkpoint in the history (with <see cref="Tasks"/> filled in <c>GET .../checkpoints/details/{id}</c>).</summary>
public sealed record CheckpointStatisticsEntry(
    [property: JsonPropertyName("className")] string ClassName,
    [property: JsonPropertyName("id")] long Id,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("is_savepoint")] bool IsSavepoint,
    [property: JsonPropertyName("savepointFormat")] string? SavepointFormat,
    [property: JsonPropertyName("trigger_timestamp")] long TriggerTimestamp,
    [property: JsonPropertyName("latest_ack_timestamp")] long LatestAckTimestamp,
    [property: JsonPropertyName("checkpointed_size")] long CheckpointedSize,
    [property: JsonPropertyName("state_size")] long StateSize,
    [property: JsonPropertyName("end_to_end_duration")] long EndToEndDuration,
    [property: JsonPropertyName("alignment_buffered")] long AlignmentBuffered,
    [property: JsonPropertyName("processed_data")] long ProcessedData,
    [property: JsonPropertyName("persisted_data")] long PersistedData,
    [property: JsonPropertyName("num_subtasks")] int NumSubtasks,
    [property: JsonPropertyName("num_acknowledged_subtasks")] int NumAcknowledgedSubtasks,
    [property: JsonPropertyName("checkpoint_type")] string CheckpointType,
    [property: JsonPropertyName("external_path")] string? ExternalPath,
    [property: JsonPropertyName("discarded")] bool Discarded,
    [property: JsonPropertyName("failure_timestamp")] long? FailureTimestamp,
    [property: JsonPropertyName("failure_message")] string? FailureMessage,
    [property: JsonPropertyName("tasks")] IReadOnlyDictionary<string, TaskCheckpointStatistics> Tasks);

/// <summary>One task's part of a checkpoint.</summary>
public sealed record TaskCheckpointStatistics(
    [property: JsonPropertyName("id")] long Id,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("latest_ack_timestamp")] long LatestAckTimestamp,
    [property: JsonPropertyName("checkpointed_size")] long CheckpointedSize,
    [property: JsonPropertyName("state_size")] long StateSize,
    [property: JsonPropertyName("end_to_end_duration")] long EndToEndDuration,
    [property: JsonPropertyName("alignment_buffered")] long AlignmentBuffered,
    [property: JsonPropertyName("num_subtasks")] int NumSubtasks,
    [property: JsonPropertyName("num_acknowledged_subtasks")] int NumAcknowledgedSubtasks);

/// <summary><c>GET .../checkpoints/details/{id}/subtasks/{vertexId}</c>: one task's subtasks in a checkpoint.</summary>
public sealed record TaskCheckpointStatisticsWithSubtaskDetails(
    [property: JsonPropertyName("id")] long Id,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("latest_ack_timestamp")] long LatestAckTimestamp,
    [property: JsonPropertyName("checkpointed_size")] long CheckpointedSize,
    [property: JsonPropertyName("state_size")] long StateSize,
    [property: JsonPropertyName("end_to_end_duration")] long EndToEndDuration,
    [property: JsonPropertyName("num_subtasks")] int NumSubtasks,
    [property: JsonPropertyName("num_acknowledged_subtasks")] int NumAcknowledgedSubtasks,
    [property: JsonPropertyName("summary")] TaskCheckpointSummary Summary,
    [property: JsonPropertyName("subtasks")] IReadOnlyList<SubtaskCheckpointStatistics> Subtasks);

/// <summary>The summary of a task's subtasks in a checkpoint.</summary>
public sealed record TaskCheckpointSummary(
    [property: JsonPropertyName("checkpointed_size")] StatsSummary CheckpointedSize,
    [property: JsonPropertyName("state_size")] StatsSummary StateSize,
    [property: JsonPropertyName("end_to_end_duration")] StatsSummary EndToEndDuration,
    [property: JsonPropertyName("checkpoint_duration")] CheckpointDurationSummary CheckpointDuration,
    [property: JsonPropertyName("alignment")] AlignmentSummary Alignment);

/// <summary>Summaries of the synchronous and asynchronous parts.</summary>
public sealed record CheckpointDurationSummary([property: JsonPropertyName("sync")] StatsSummary Sync, [property: JsonPropertyName("async")] StatsSummary Async);

/// <summary>The summary of barrier alignment.</summary>
public sealed record AlignmentSummary([property: JsonPropertyName("buffered")] StatsSummary Buffered, [property: JsonPropertyName("duration")] StatsSummary Duration);

/// <summary>One subtask in a checkpoint: its acknowledgement, synchronous and asynchronous parts, alignment and size.</summary>
public sealed record SubtaskCheckpointStatistics(
    [property: JsonPropertyName("index")] int Index,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("ack_timestamp")] long? AckTimestamp,
    [property: JsonPropertyName("end_to_end_duration")] long? EndToEndDuration,
    [property: JsonPropertyName("state_size")] long? StateSize,
    [property: JsonPropertyName("checkpointed_size")] long? CheckpointedSize,
    [property: JsonPropertyName("checkpoint")] SubtaskCheckpointDuration? Checkpoint,
    [property: JsonPropertyName("alignment")] SubtaskAlignment? Alignment,
    [property: JsonPropertyName("finished")] bool Finished);

/// <summary>The synchronous and asynchronous parts of a subtask's checkpoint, in milliseconds.</summary>
public sealed record SubtaskCheckpointDuration([property: JsonPropertyName("sync")] long Sync, [property: JsonPropertyName("async")] long Async);

/// <summary>A subtask's barrier alignment.</summary>
public sealed record SubtaskAlignment([property: JsonPropertyName("buffered")] long Buffered, [property: JsonPropertyName("duration")] long Duration);

/// <summary><c>GET /jobs/{jobId}/checkpoints/config</c>: the job's checkpointing settings.</summary>
public sealed record CheckpointConfigInfo(
    [property: JsonPropertyName("mode")] string Mode,
    [property: JsonPropertyName("interval")] long Interval,
    [property: JsonPropertyName("timeout")] long Timeout,
    [property: JsonPropertyName("min_pause")] long MinPause,
    [property: JsonPropertyName("max_concurrent")] int MaxConcurrent,
    [property: JsonPropertyName("externalization")] ExternalizedCheckpointInfo Externalization,
    [property: JsonPropertyName("state_backend")] string StateBackend,
    [property: JsonPropertyName("checkpoint_storage")] string CheckpointStorage,
    [property: JsonPropertyName("unaligned_checkpoints")] bool UnalignedCheckpoints,
    [property: JsonPropertyName("tolerable_failed_checkpoints")] int TolerableFailedCheckpoints,
    [property: JsonPropertyName("checkpoints_after_tasks_finish")] bool CheckpointsAfterTasksFinish,
    [property: JsonPropertyName("retained_checkpoints")] int RetainedCheckpoints,
    [property: JsonPropertyName("incremental")] bool? Incremental);

/// <summary>Whether checkpoints outlive the job (Flink's externalized checkpoints).</summary>
public sealed record ExternalizedCheckpointInfo(
    [property: JsonPropertyName("enabled")] bool Enabled,
    [property: JsonPropertyName("delete_on_cancellation")] bool DeleteOnCancellation);

/// <summary><c>POST /jobs/{jobId}/savepoints</c>: where to and in which format; <c>cancel-job</c> cancels after it.</summary>
public sealed record SavepointTriggerRequestBody(
    [property: JsonPropertyName("target-directory")] string? TargetDirectory,
    [property: JsonPropertyName("cancel-job")] bool CancelJob,
    [property: JsonPropertyName("formatType")] string? FormatType,
    [property: JsonPropertyName("triggerId")] string? TriggerId);

/// <summary><c>POST /jobs/{jobId}/stop</c>: stop with a savepoint; <c>drain</c> reads bounded sources to their end first.</summary>
public sealed record StopWithSavepointRequestBody(
    [property: JsonPropertyName("targetDirectory")] string? TargetDirectory,
    [property: JsonPropertyName("drain")] bool Drain,
    [property: JsonPropertyName("formatType")] string? FormatType,
    [property: JsonPropertyName("triggerId")] string? TriggerId);

/// <summary>An asynchronous operation started: its trigger id.</summary>
public sealed record TriggerResponse([property: JsonPropertyName("request-id")] string RequestId);

/// <summary><c>GET /jobs/{jobId}/savepoints/{triggerId}</c>: IN_PROGRESS or COMPLETED, with the location or the failure.</summary>
public sealed record AsynchronousOperationResult(
    [property: JsonPropertyName("status")] QueueStatus Status,
    [property: JsonPropertyName("operation")] SavepointOperation? Operation);

/// <summary>The state of an asynchronous operation.</summary>
public sealed record QueueStatus([property: JsonPropertyName("id")] string Id);

/// <summary>A finished savepoint: its location, or why it failed.</summary>
public sealed record SavepointOperation(
    [property: JsonPropertyName("location")] string? Location,
    [property: JsonPropertyName("failure-cause")] FailureCause? FailureCause);

/// <summary>Why an operation failed.</summary>
public sealed record FailureCause([property: JsonPropertyName("class")] string Class, [property: JsonPropertyName("stack-trace")] string StackTrace);

/// <summary>
/// <c>POST /jobs</c>: start a job of the silos' catalog by name (where Flink runs an uploaded jar), with its arguments
/// as text, an optional parallelism, and an optional savepoint or retained checkpoint to start from.
/// </summary>
public sealed record JobRunRequestBody(
    [property: JsonPropertyName("job")] string? Job,
    [property: JsonPropertyName("arguments")] IReadOnlyDictionary<string, string>? Arguments,
    [property: JsonPropertyName("parallelism")] int? Parallelism,
    [property: JsonPropertyName("savepointPath")] string? SavepointPath,
    [property: JsonPropertyName("allowNonRestoredState")] bool AllowNonRestoredState);

/// <summary>A job started: its id.</summary>
public sealed record JobRunResponseBody([property: JsonPropertyName("jobid")] string JobId);

/// <summary><c>GET /catalog</c>: the jobs the silos can start by name, with their arguments.</summary>
public sealed record CatalogResponse([property: JsonPropertyName("jobs")] IReadOnlyList<Catalog.JobCatalogEntry> Jobs);
