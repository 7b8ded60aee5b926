namespace Platform.Diagnostics;

/// <summary>
/// The names of the platform's telemetry, one scheme for all of it: the meter <c>Platform.Streaming</c> with instruments
/// <c>platform.checkpoint.*</c>, <c>platform.task.*</c> and <c>platform.job.*</c>; the activity source
/// <c>Platform.Streaming.Checkpoints</c> with spans <c>platform.checkpoint</c>, <c>platform.checkpoint.subtask</c> (and its
/// phases) and <c>platform.restore.subtask</c>; tags <c>job.*</c>, <c>task.*</c>, <c>subtask.index</c>, <c>checkpoint.*</c>.
/// docs/observability.md lists every instrument with its unit, tags and Flink equivalent.
/// </summary>
public static class PlatformTelemetry
{
    /// <summary>The platform's meter (created through <c>IMeterFactory</c>, one per silo's service provider).</summary>
    public const string MeterName = "Platform.Streaming";

    /// <summary>The activity source of checkpoint and restore spans.</summary>
    public const string CheckpointsActivitySourceName = "Platform.Streaming.Checkpoints";

    /// <summary>Orleans' meter.</summary>
    public const string OrleansMeterName = "Microsoft.Orleans";

    /// <summary>Orleans' activity sources (<c>Microsoft.Orleans.Runtime</c>, <c>Microsoft.Orleans.Application</c>).</summary>
    public const string OrleansActivitySources = "Microsoft.Orleans.*";

    /// <summary>Span names.</summary>
    public static class Spans
    {
        /// <summary>One checkpoint or savepoint, from its trigger to its completion or failure (the coordinator's).</summary>
        public const string Checkpoint = "platform.checkpoint";

        /// <summary>One subtask's part of a checkpoint, a child of <see cref="Checkpoint"/>.</summary>
        public const string CheckpointSubtask = "platform.checkpoint.subtask";

        /// <summary>Barrier alignment of a subtask, a child of <see cref="CheckpointSubtask"/>.</summary>
        public const string Alignment = "platform.checkpoint.alignment";

        /// <summary>The synchronous part of a subtask's snapshot, a child of <see cref="CheckpointSubtask"/>.</summary>
        public const string Sync = "platform.checkpoint.sync";

        /// <summary>The asynchronous part (upload) of a subtask's snapshot, a child of <see cref="CheckpointSubtask"/>.</summary>
        public const string Async = "platform.checkpoint.async";

        /// <summary>One subtask restoring its state at the start of an attempt.</summary>
        public const string RestoreSubtask = "platform.restore.subtask";
    }

    /// <summary>Tag (attribute) names of metrics and spans.</summary>
    public static class Tags
    {
        /// <summary>The job's id.</summary>
        public const string JobId = "job.id";

        /// <summary>The job's name.</summary>
        public const string JobName = "job.name";

        /// <summary>The task's index in the job's execution plan (a task is a chain of operators).</summary>
        public const string TaskIndex = "task.index";

        /// <summary>The task's name (its chained operators' names).</summary>
        public const string TaskName = "task.name";

        /// <summary>The subtask's index within its task.</summary>
        public const string SubtaskIndex = "subtask.index";

        /// <summary>A chained operator's name (operator metrics only).</summary>
        public const string OperatorName = "operator.name";

        /// <summary>A chained operator's uid, unique within its job (operator metrics only).</summary>
        public const string OperatorUid = "operator.uid";

        /// <summary>Why a checkpoint failed (a <c>CheckpointFailureReason</c>: bounded).</summary>
        public const string FailureReason = "checkpoint.failure_reason";

        /// <summary>The checkpoint's id (spans only: never a metric tag, its cardinality is unbounded).</summary>
        public const string CheckpointId = "checkpoint.id";

        /// <summary><c>checkpoint</c>, <c>savepoint</c> or <c>stop-with-savepoint</c>.</summary>
        public const string CheckpointKind = "checkpoint.kind";

        /// <summary><c>completed</c> or <c>failed</c>.</summary>
        public const string Outcome = "checkpoint.outcome";
    }
}
