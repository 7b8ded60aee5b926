using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Platform.Diagnostics;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// Listens, in this process (where test clusters run their silos), to the platform's activity source and meter and
/// keeps its spans as they stop and every measurement of its instruments with its tags; queries pick one job's. Start
/// it before submitting the job (the job's id is known only then).
/// </summary>
public sealed class TelemetryRecorder : IDisposable
{
    private readonly ActivityListener _activities;
    private readonly MeterListener _meters = new();
    private readonly ConcurrentQueue<Activity> _spans = new();
    private readonly ConcurrentQueue<Measurement> _measurements = new();

    public TelemetryRecorder()
    {
        _activities = new ActivityListener
        {
            ShouldListenTo = source => source.Name == PlatformTelemetry.CheckpointsActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _spans.Enqueue,
        };
        ActivitySource.AddActivityListener(_activities);
        _meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == PlatformTelemetry.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _meters.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _meters.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _meters.Start();
    }

    /// <summary>The job's spans that ended so far (a span of a child belongs to the job through its trace).</summary>
    public IReadOnlyList<Activity> SpansOf(string jobId)
    {
        var all = _spans.ToList();
        var traces = all.Where(a => Equals(a.GetTagItem(PlatformTelemetry.Tags.JobId), jobId)).Select(a => a.TraceId).ToHashSet();
        return [.. all.Where(a => traces.Contains(a.TraceId))];
    }

    /// <summary>The job's measurements of one instrument so far.</summary>
    public IReadOnlyList<Measurement> Of(string instrument, string jobId) =>
        [.. _measurements.Where(m => m.Instrument == instrument && Equals(m.Tags.GetValueOrDefault(PlatformTelemetry.Tags.JobId), jobId))];

    public void Dispose()
    {
        _activities.Dispose();
        _meters.Dispose();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var dictionary = new Dictionary<string, object?>();
        foreach (var tag in tags)
        {
            dictionary[tag.Key] = tag.Value;
        }

        _measurements.Enqueue(new Measurement(instrument.Name, value, dictionary));
    }

    /// <summary>One measurement with its tags.</summary>
    public sealed record Measurement(string Instrument, double Value, IReadOnlyDictionary<string, object?> Tags)
    {
        public int? TaskIndex => Tags.GetValueOrDefault(PlatformTelemetry.Tags.TaskIndex) as int?;

        public int? SubtaskIndex => Tags.GetValueOrDefault(PlatformTelemetry.Tags.SubtaskIndex) as int?;
    }
}
