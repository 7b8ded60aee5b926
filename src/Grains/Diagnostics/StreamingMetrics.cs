using System.Diagnostics;
using System.Diagnostics.Metrics;
using Platform.Checkpointing;

namespace Platform.Diagnostics;

/// <summary>
/// The platform's instruments on the meter <see cref="PlatformTelemetry.MeterName"/>, created through the silo's
/// <see cref="IMeterFactory"/> (one set per service provider, disposed with it), named after Flink's metrics where the
/// concept is Flink's. Tags are bounded: job, task, subtask index and failure reason, never a checkpoint id. Hot paths
/// add deltas per batch, never per record (<see cref="SubtaskMetrics"/>).
/// </summary>
internal sealed class StreamingMetrics
{
    public StreamingMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(new MeterOptions(PlatformTelemetry.MeterName) { Version = "1.0" });

        CheckpointsCompleted = meter.CreateCounter<long>("platform.checkpoint.completed", "{checkpoint}", "Completed checkpoints (Flink: numberOfCompletedCheckpoints)");
        CheckpointsFailed = meter.CreateCounter<long>("platform.checkpoint.failed", "{checkpoint}", "Failed checkpoints (Flink: numberOfFailedCheckpoints)");
        CheckpointsInProgress = meter.CreateUpDownCounter<long>("platform.checkpoint.in_progress", "{checkpoint}", "Checkpoints in progress (Flink: numberOfInProgressCheckpoints)");
        LastCheckpointDuration = meter.CreateGauge<double>("platform.checkpoint.last_duration", "ms", "Trigger to completion of the last completed checkpoint (Flink: lastCheckpointDuration)");
        LastCheckpointSize = meter.CreateGauge<long>("platform.checkpoint.last_size", "By", "Bytes the last completed checkpoint wrote (Flink: lastCheckpointSize)");
        LastCheckpointFullSize = meter.CreateGauge<long>("platform.checkpoint.last_full_size", "By", "Full state size of the last completed checkpoint (Flink: lastCheckpointFullSize)");
        CheckpointDuration = meter.CreateHistogram<double>("platform.checkpoint.duration", "ms", "Trigger to completion of completed checkpoints");
        AlignmentDuration = meter.CreateHistogram<double>("platform.checkpoint.alignment", "ms", "Barrier alignment per subtask (Flink: checkpointAlignmentTime)");
        SyncDuration = meter.CreateHistogram<double>("platform.checkpoint.sync", "ms", "Synchronous snapshot part per subtask, during which processing pauses (Flink: sync duration)");
        AsyncDuration = meter.CreateHistogram<double>("platform.checkpoint.async", "ms", "Asynchronous snapshot part (upload) per subtask (Flink: async duration)");
        RecordsIn = meter.CreateCounter<long>("platform.task.records_in", "{record}", "Records taken in by a subtask; a source's records read (Flink: numRecordsIn)");
        RecordsOut = meter.CreateCounter<long>("platform.task.records_out", "{record}", "Records a subtask emitted to its output channels (Flink: numRecordsOut)");
        OperatorRecordsIn = meter.CreateCounter<long>("platform.operator.records_in", "{record}", "Records one chained operator took in; a source's records read (Flink: operator numRecordsIn)");
        OperatorRecordsOut = meter.CreateCounter<long>("platform.operator.records_out", "{record}", "Records one chained operator emitted to the next operator or the task's outputs (Flink: operator numRecordsOut)");
        BackpressuredTime = meter.CreateCounter<double>("platform.task.backpressured_time", "ms", "Time a subtask waited for credit on its outputs; its rate is Flink's backPressuredTimeMsPerSecond");
        BatchesSent = meter.CreateCounter<long>("platform.task.batches_sent", "{batch}", "Batches a subtask sent on its output channels (Flink: numBuffersOut)");
        RecordsDeadLettered = meter.CreateCounter<long>("platform.task.records_dead_lettered", "{record}", "Poison records skipped into the dead-letter output");
        LateRecordsDropped = meter.CreateCounter<long>("platform.window.late_records_dropped", "{record}", "Records a window dropped for arriving after its allowed lateness, with no late-data side output (Flink: numLateRecordsDropped)");
        RestoreDuration = meter.CreateHistogram<double>("platform.task.restore_duration", "ms", "Time a subtask took to restore its state (Flink: per-task restore in initializing)");
        Restarts = meter.CreateCounter<long>("platform.job.restarts", "{restart}", "Job restarts (Flink: numRestarts)");
    }

    public Counter<long> CheckpointsCompleted { get; }

    public Counter<long> CheckpointsFailed { get; }

    public UpDownCounter<long> CheckpointsInProgress { get; }

    public Gauge<double> LastCheckpointDuration { get; }

    public Gauge<long> LastCheckpointSize { get; }

    public Gauge<long> LastCheckpointFullSize { get; }

    public Histogram<double> CheckpointDuration { get; }

    public Histogram<double> AlignmentDuration { get; }

    public Histogram<double> SyncDuration { get; }

    public Histogram<double> AsyncDuration { get; }

    public Counter<long> RecordsIn { get; }

    public Counter<long> RecordsOut { get; }

    public Counter<long> OperatorRecordsIn { get; }

    public Counter<long> OperatorRecordsOut { get; }

    public Counter<double> BackpressuredTime { get; }

    public Counter<long> BatchesSent { get; }

    public Counter<long> RecordsDeadLettered { get; }

    public Counter<long> LateRecordsDropped { get; }

    public Histogram<double> RestoreDuration { get; }

    public Counter<long> Restarts { get; }

    /// <summary>The tags of a job's metrics.</summary>
    public static TagList JobTags(string jobId, string? jobName) => new()
    {
        { PlatformTelemetry.Tags.JobId, jobId },
        { PlatformTelemetry.Tags.JobName, jobName ?? "" },
    };

    /// <summary>The tags of a job's failed-checkpoint count.</summary>
    public static TagList FailureTags(string jobId, string? jobName, CheckpointFailureReason reason)
    {
        var tags = JobTags(jobId, jobName);
        tags.Add(PlatformTelemetry.Tags.FailureReason, reason.ToString());
        return tags;
    }
}
