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
    private long _lateDropped;
    private readonly TagList[] _operatorTags;
    private readonly long[] _operatorIn;
    private readonly long[] _operatorOut;

    public SubtaskMetrics(StreamingMetrics metrics, TaskDeployment deployment)
    {
        _metrics = metrics;
        _tags = StreamingMetrics.JobTags(deployment.Id.JobId, deployment.JobName);
        _tags.Add(PlatformTelemetry.Tags.TaskIndex, deployment.Id.TaskIndex);
        _tags.Add(PlatformTelemetry.Tags.TaskName, deployment.TaskName);
        _tags.Add(PlatformTelemetry.Tags.SubtaskIndex, deployment.Id.SubtaskIndex);
        _operatorTags = new TagList[deployment.Chain.Count];
        for (var i = 0; i < _operatorTags.Length; i++)
        {
            var tags = _tags;
            tags.Add(PlatformTelemetry.Tags.OperatorName, deployment.Chain[i].Name);
            tags.Add(PlatformTelemetry.Tags.OperatorUid, deployment.Chain[i].Uid);
            _operatorTags[i] = tags;
        }

        _operatorIn = new long[_operatorTags.Length];
        _operatorOut = new long[_operatorTags.Length];
    }

    /// <summary>The subtask's tags (job, task, subtask index), also the attributes of its spans.</summary>
    public TagList Tags => _tags;

    /// <summary>Adds the records, batches, time blocked on credit and dead letters counted since the last call.</summary>
    public void Publish(OperatorChain chain)
    {
        Add(_metrics.RecordsIn, chain.Counters.RecordsIn, ref _recordsIn);
        Add(_metrics.RecordsOut, chain.Counters.RecordsOut, ref _recordsOut);
        for (var i = 0; i < _operatorTags.Length && i < chain.OperatorOutputs.Count; i++)
        {
            // Operator i took in what operator i - 1 emitted; the head, what the task took in.
            var taken = i == 0 ? chain.Counters.RecordsIn : chain.OperatorOutputs[i - 1]?.RecordsOut ?? 0;
            Add(_metrics.OperatorRecordsIn, taken, ref _operatorIn[i], _operatorTags[i]);
            if (chain.OperatorOutputs[i] is { } emitted)
            {
                Add(_metrics.OperatorRecordsOut, emitted.RecordsOut, ref _operatorOut[i], _operatorTags[i]);
            }
        }

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
        if (chain.LateRecordCounters.Count > 0)
        {
            long late = 0;
            for (var i = 0; i < chain.LateRecordCounters.Count; i++)
            {
                late += chain.LateRecordCounters[i].LateRecordsDropped;
            }

            Add(_metrics.LateRecordsDropped, late, ref _lateDropped);
        }
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

    private void Add(System.Diagnostics.Metrics.Counter<long> counter, long value, ref long published) => Add(counter, value, ref published, _tags);

    private static void Add(System.Diagnostics.Metrics.Counter<long> counter, long value, ref long published, in TagList tags)
    {
        if (value > published)
        {
            counter.Add(value - published, tags);
            published = value;
        }
    }
}
