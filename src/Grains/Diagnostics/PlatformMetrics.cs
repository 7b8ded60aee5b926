using System.Diagnostics.Metrics;

namespace Platform.Diagnostics;

/// <summary>
/// The platform's metrics (meter <c>Platform.Streaming</c>), named after Flink's where the concept is Flink's, for
/// OpenTelemetry or <c>dotnet-counters</c>. Hot paths update them per batch, never per record.
/// </summary>
public static class PlatformMetrics
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Platform.Streaming";

    private static readonly Meter Meter = new(MeterName, "1.0");

    /// <summary>Records taken in by subtasks (sources: read).</summary>
    public static readonly Counter<long> RecordsIn = Meter.CreateCounter<long>("platform.task.records_in", "{record}", "Records taken in by subtasks");

    /// <summary>Poison records skipped into a dead-letter output.</summary>
    public static readonly Counter<long> RecordsDeadLettered = Meter.CreateCounter<long>("platform.task.records_dead_lettered", "{record}", "Poison records skipped into the dead-letter output");

    /// <summary>Batches sent between subtasks.</summary>
    public static readonly Counter<long> BatchesSent = Meter.CreateCounter<long>("platform.task.batches_sent", "{batch}", "Batches sent on channels");

    /// <summary>Completed checkpoints.</summary>
    public static readonly Counter<long> CheckpointsCompleted = Meter.CreateCounter<long>("platform.checkpoint.completed", "{checkpoint}", "Completed checkpoints");

    /// <summary>Failed (declined, expired or aborted) checkpoints.</summary>
    public static readonly Counter<long> CheckpointsFailed = Meter.CreateCounter<long>("platform.checkpoint.failed", "{checkpoint}", "Failed checkpoints");

    /// <summary>End-to-end checkpoint duration (Flink's lastCheckpointDuration).</summary>
    public static readonly Histogram<double> CheckpointDuration = Meter.CreateHistogram<double>("platform.checkpoint.duration", "ms", "From trigger to completion");

    /// <summary>Checkpoint size (Flink's lastCheckpointSize).</summary>
    public static readonly Histogram<long> CheckpointSize = Meter.CreateHistogram<long>("platform.checkpoint.size", "By", "Bytes of state written by a checkpoint");

    /// <summary>Per subtask: time from the first barrier to the last (Flink's checkpointAlignmentTime).</summary>
    public static readonly Histogram<double> AlignmentDuration = Meter.CreateHistogram<double>("platform.checkpoint.alignment", "ms", "Barrier alignment per subtask");

    /// <summary>Per subtask: the synchronous part of a snapshot, during which processing pauses.</summary>
    public static readonly Histogram<double> SyncDuration = Meter.CreateHistogram<double>("platform.checkpoint.sync", "ms", "Synchronous snapshot pause per subtask");

    /// <summary>Job restarts (Flink's numRestarts).</summary>
    public static readonly Counter<long> Restarts = Meter.CreateCounter<long>("platform.job.restarts", "{restart}", "Job restarts");
}
