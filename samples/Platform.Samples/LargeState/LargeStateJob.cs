using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Functions;
using Platform.Graph;
using Platform.State;

namespace Platform.Samples.LargeState;

/// <summary>Keys a visit by its key.</summary>
[GenerateSerializer, Alias("samples.LargeState.VisitKey")]
public sealed class VisitKey : IKeySelector<KeyVisit, long>
{
    /// <inheritdoc />
    public long GetKey(KeyVisit value) => value.Key;
}

/// <summary>Keys a digest by its bucket.</summary>
[GenerateSerializer, Alias("samples.LargeState.DigestBucket")]
public sealed class DigestBucket : IKeySelector<KeyDigest, int>
{
    /// <summary>How many buckets.</summary>
    [Id(0)] public int Buckets { get; set; } = 16;

    /// <inheritdoc />
    public int GetKey(KeyDigest value) => LargeStateData.BucketOf(value.Key, Buckets);
}

/// <summary>
/// Keeps a <see cref="KeyEntry"/> per key in a <see cref="IValueState{T}"/>: each visit replaces the payload, counts the
/// visit and chains the checksum; the last visit emits the key's <see cref="KeyDigest"/>. A visit that does not follow
/// the previous one (state lost or applied twice) fails the job, so wrong state cannot pass unnoticed.
/// </summary>
[GenerateSerializer, Alias("samples.LargeState.KeepLargeState")]
public sealed class KeepLargeState : KeyedProcessFunction<long, KeyVisit, KeyDigest>
{
    [NonSerialized] private IValueState<KeyEntry?>? _entry;
    [NonSerialized] private long _processed;

    /// <summary>The number of visits per key; the last one emits the digest.</summary>
    [Id(0)] public int Visits { get; set; } = 2;

    /// <summary>
    /// A file on the silo's file system: when a subtask finds it (it looks every 256 records), it deletes it and throws,
    /// once, so that a test in another process can make the job fail at a moment it chooses.
    /// </summary>
    [Id(1)] public string? FailOnceMarkerFile { get; set; }

    /// <inheritdoc />
    public override void Open(IRuntimeContext context) => _entry = context.GetState(new ValueStateDescriptor<KeyEntry?>("entry"));

    /// <inheritdoc />
    public override void ProcessElement(KeyVisit value, IKeyedContext<long> context, ICollector<KeyDigest> output)
    {
        if (FailOnceMarkerFile is { } marker && _processed++ % 256 == 0 && TryClaim(marker))
        {
            throw new InvalidOperationException($"Injected failure: the marker file '{marker}' was present.");
        }

        var previous = _entry!.Value;
        var visits = previous?.Visits ?? 0;
        if (value.Visit != visits)
        {
            throw new InvalidOperationException($"Key {value.Key}: visit {value.Visit} arrived, but the state holds {visits} visits.");
        }

        var entry = new KeyEntry(visits + 1, LargeStateData.ChainChecksum(previous?.Checksum ?? LargeStateData.InitialChecksum(value.Key), value.Payload), value.Payload);
        _entry.Update(entry);
        if (entry.Visits == Visits)
        {
            output.Collect(new KeyDigest(value.Key, entry.Visits, LargeStateData.Digest(value.Key, entry)));
        }
    }

    // Renaming is atomic: of several subtasks that see the marker, exactly one claims it.
    private static bool TryClaim(string marker)
    {
        var claimed = $"{marker}.claimed-{Guid.NewGuid():N}";
        try
        {
            File.Move(marker, claimed);
        }
        catch (IOException)
        {
            return false;
        }

        File.Delete(claimed);
        return true;
    }
}

/// <summary>Sums the digests of a bucket's keys and emits the bucket's <see cref="BucketSummary"/> once every key of it arrived.</summary>
[GenerateSerializer, Alias("samples.LargeState.SummarizeBuckets")]
public sealed class SummarizeBuckets : KeyedProcessFunction<int, KeyDigest, BucketSummary>
{
    [NonSerialized] private IValueState<BucketSummary?>? _summary;

    /// <summary>How many distinct keys the job visits.</summary>
    [Id(0)] public long Keys { get; set; }

    /// <summary>How many buckets.</summary>
    [Id(1)] public int Buckets { get; set; } = 16;

    /// <inheritdoc />
    public override void Open(IRuntimeContext context) => _summary = context.GetState(new ValueStateDescriptor<BucketSummary?>("summary"));

    /// <inheritdoc />
    public override void ProcessElement(KeyDigest value, IKeyedContext<int> context, ICollector<BucketSummary> output)
    {
        var bucket = context.CurrentKey;
        var previous = _summary!.Value ?? new BucketSummary(bucket, 0, 0, 0);
        var summary = previous with { Keys = previous.Keys + 1, Visits = previous.Visits + value.Visits, DigestSum = unchecked(previous.DigestSum + value.Digest) };
        _summary.Update(summary);
        if (summary.Keys == LargeStateData.KeysInBucket(Keys, Buckets, bucket))
        {
            output.Collect(summary);
        }
    }
}

/// <summary>The settings of a <see cref="LargeStateJob"/>.</summary>
public sealed record LargeStateJobSettings
{
    /// <summary>How many distinct keys (each holds about <see cref="PayloadSize"/> bytes of state).</summary>
    public long Keys { get; init; } = 100_000;

    /// <summary>How many times each key is visited.</summary>
    public int Visits { get; init; } = 2;

    /// <summary>The payload size in bytes.</summary>
    public int PayloadSize { get; init; } = 1024;

    /// <summary>How many buckets the result is summarized in.</summary>
    public int Buckets { get; init; } = 16;

    /// <summary>The parallelism of every operator.</summary>
    public int Parallelism { get; init; } = 1;

    /// <summary>See <see cref="KeyVisitSource.HoldFile"/>.</summary>
    public string? HoldFile { get; init; }

    /// <summary>See <see cref="KeepLargeState.FailOnceMarkerFile"/>.</summary>
    public string? FailOnceMarkerFile { get; init; }

    /// <summary>The job's checkpointing.</summary>
    public CheckpointingSettings? Checkpointing { get; init; }

    /// <summary>The job's restart strategy.</summary>
    public RestartStrategy? RestartStrategy { get; init; }
}

/// <summary>
/// A job whose keyed state is as large as you ask, on the RocksDB backend: visits → KeyBy(key) → keep the latest
/// payload per key → KeyBy(bucket) → sum the final digests per bucket → collect sink (one summary per bucket).
/// </summary>
public static class LargeStateJob
{
    /// <summary>The uid of the collect sink holding the <see cref="BucketSummary"/> records.</summary>
    public const string SummarySinkUid = "bucket-summaries";

    /// <summary>The uid of the operator holding the large state.</summary>
    public const string StateOperatorUid = "keep-large-state";

    /// <summary>Builds the job.</summary>
    public static StreamJobBuilder Build(LargeStateJobSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var job = new StreamJobBuilder("large-state")
        {
            DefaultParallelism = settings.Parallelism,
            StateBackend = StateBackendKind.RocksDb,
            Checkpointing = settings.Checkpointing,
            RestartStrategy = settings.RestartStrategy,
        };
        job.AddSource(new KeyVisitSource { Keys = settings.Keys, Visits = settings.Visits, PayloadSize = settings.PayloadSize, HoldFile = settings.HoldFile }, "visits").Uid("visits")
            .KeyBy(new VisitKey())
            .Process(new KeepLargeState { Visits = settings.Visits, FailOnceMarkerFile = settings.FailOnceMarkerFile }, "keep-large-state").Uid(StateOperatorUid)
            .KeyBy(new DigestBucket { Buckets = settings.Buckets })
            .Process(new SummarizeBuckets { Keys = settings.Keys, Buckets = settings.Buckets }, "summarize").Uid("summarize")
            .SinkTo(new CollectSink<BucketSummary>(), "collect").Uid(SummarySinkUid);
        return job;
    }
}
