using System.Diagnostics;
using Platform.Tasks;
using Platform.Tasks.Network;

namespace Platform.Diagnostics;

/// <summary>
/// One subtask's view of <see cref="StreamingMetrics"/>: its tags, built once, and the counters' values already
/// published. The hot path only bumps plain fields (<see cref="TaskCounters"/>, the channels' own counts);
/// <see cref="Publish"/> adds what changed since its last call, once per batch step. Runs on the task grain's scheduler.
/// </summary>
internal sealed class SubtaskMetrics
{
    private readonly StreamingMetrics _metrics;
    private readonly TagList _tags;
    private long _recordsIn;
    private long _recordsOut;
    private long _batches;
    private long _backpressuredTicks;
    private long _deadLettered;

    public SubtaskMetrics(StreamingMetrics metrics, TaskDeployment deployment)
    {
        _metrics = metrics;
        _tags = StreamingMetrics.JobTags(deployment.Id.JobId, deployment.JobName);
        _tags.Add(PlatformTelemetry.Tags.TaskIndex, deployment.Id.TaskIndex);
        _tags.Add(PlatformTelemetry.Tags.TaskName, deployment.TaskName);
        _tags.Add(PlatformTelemetry.Tags.SubtaskIndex, deployment.Id.SubtaskIndex);
    }

    /// <summary>The subtask's tags (job, task, subtask index), also the attributes of its spans.</summary>
    public TagList Tags => _tags;

    /// <summary>Adds the records, batches, time blocked on credit and dead letters counted since the last call.</summary>
    public void Publish(OperatorChain chain)
    {
        Add(_metrics.RecordsIn, chain.Counters.RecordsIn, ref _recordsIn);
        Add(_metrics.RecordsOut, chain.Counters.RecordsOut, ref _recordsOut);
        long batches = 0, blocked = 0;
        foreach (var channel in chain.OutputChannels)
        {
            batches += channel.NextSequence;
            blocked += channel.BackpressuredTicks;
        }

        Add(_metrics.BatchesSent, batches, ref _batches);
        if (blocked > _backpressuredTicks)
        {
            _metrics.BackpressuredTime.Add(Stopwatch.GetElapsedTime(0, blocked - _backpressuredTicks).TotalMilliseconds, _tags);
            _backpressuredTicks = blocked;
        }

        Add(_metrics.RecordsDeadLettered, chain.Poison?.Skipped ?? 0, ref _deadLettered);
    }

    /// <summary>Records the synchronous part and the alignment of one checkpoint.</summary>
    public void RecordSnapshot(TimeSpan sync, TimeSpan alignment)
    {
        _metrics.SyncDuration.Record(sync.TotalMilliseconds, _tags);
        _metrics.AlignmentDuration.Record(alignment.TotalMilliseconds, _tags);
    }

    /// <summary>Records the asynchronous part of one checkpoint.</summary>
    public void RecordUpload(TimeSpan duration) => _metrics.AsyncDuration.Record(duration.TotalMilliseconds, _tags);

    /// <summary>Records a restore of the subtask's state.</summary>
    public void RecordRestore(TimeSpan duration) => _metrics.RestoreDuration.Record(duration.TotalMilliseconds, _tags);

    private void Add(System.Diagnostics.Metrics.Counter<long> counter, long value, ref long published)
    {
        if (value > published)
        {
            counter.Add(value - published, _tags);
            published = value;
        }
    }
}
