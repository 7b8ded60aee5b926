using System.Collections.Concurrent;
using System.Diagnostics;
using Platform.Benchmarks.StateBackends;
using Platform.Functions;
using Platform.State;

namespace Platform.Benchmarks.Savepoints;

/// <summary>
/// What each sequence number of the savepoints jobs means (the source is <see cref="BigStateSource"/>; key and meaning
/// follow from the number, so a job resumed at the savepoint's offsets continues the same sequence):
/// <list type="bullet">
/// <item><c>s &lt; K</c>: load key index <c>s</c> with version 0;</item>
/// <item><c>K ≤ s &lt; K+U</c>: update every <see cref="BigStateLayout.Step"/>-th key index: it must hold version 0 (a
/// replayed update finds 1), and gets version 1;</item>
/// <item><c>K+U ≤ s &lt; K+2U</c>: check that each updated key holds version 1 (an update lost at the stop left 0);</item>
/// <item>then samples: spread key indexes, each checked against the version it must have.</item>
/// </list>
/// With <c>samplesOnly</c> (jobs resumed from a savepoint taken right after the load) every <c>s ≥ K</c> is a sample
/// that must find version 0.
/// </summary>
public static class SavepointLayout
{
    // Odd and prime: samples visit key indexes spread over the whole range.
    private const ulong SampleStride = 1_000_003;

    /// <summary>What a record does.</summary>
    public enum Kind
    {
        /// <summary>Writes version 0 of an absent key.</summary>
        Load,

        /// <summary>Changes version 0 to version 1.</summary>
        Update,

        /// <summary>Checks that an updated key holds version 1.</summary>
        CheckUpdated,

        /// <summary>Checks a spread key's version.</summary>
        Sample,
    }

    /// <summary>The kind of sequence number <paramref name="sequence"/> and the key index it touches.</summary>
    public static (Kind Kind, long Index) Of(long sequence, long bigKeys, long changedKeys, bool samplesOnly)
    {
        if (sequence < bigKeys)
        {
            return (Kind.Load, sequence);
        }

        var rest = sequence - bigKeys;
        if (!samplesOnly)
        {
            var step = BigStateLayout.Step(bigKeys, changedKeys);
            if (rest < changedKeys)
            {
                return (Kind.Update, rest * step);
            }

            if (rest < 2 * changedKeys)
            {
                return (Kind.CheckUpdated, (rest - changedKeys) * step);
            }

            rest -= 2 * changedKeys;
        }

        return (Kind.Sample, (long)((ulong)rest * SampleStride % (ulong)bigKeys));
    }
}

/// <summary>
/// What the savepoints jobs' keyed functions report, per job: the silo runs in the benchmark's process, so plain statics
/// reach the functions, and the job id (from the runtime context) separates the jobs.
/// </summary>
internal sealed class SavepointProbe
{
    private static readonly ConcurrentDictionary<string, SavepointProbe> s_jobs = new(StringComparer.Ordinal);

    private long _loaded;
    private long _loadedOverExisting;
    private long _updated;
    private long _updatedWrong;
    private long _checkedUpdated;
    private long _checkedUpdatedWrong;
    private long _sampled;
    private long _sampledWrong;
    private readonly string?[] _firstWrong = new string?[4];

    /// <summary>Subtask → when it opened its keyed function, which StreamTask does right after restoring keyed state.</summary>
    public ConcurrentDictionary<int, long> Opened { get; } = new();

    /// <summary>Subtask → when it processed its first record.</summary>
    public ConcurrentDictionary<int, long> FirstRecord { get; } = new();

    public long Loaded => Interlocked.Read(ref _loaded);

    public long LoadedOverExisting => Interlocked.Read(ref _loadedOverExisting);

    public long Updated => Interlocked.Read(ref _updated);

    public long UpdatedWrong => Interlocked.Read(ref _updatedWrong);

    public long CheckedUpdated => Interlocked.Read(ref _checkedUpdated);

    public long CheckedUpdatedWrong => Interlocked.Read(ref _checkedUpdatedWrong);

    public long Sampled => Interlocked.Read(ref _sampled);

    public long SampledWrong => Interlocked.Read(ref _sampledWrong);

    /// <summary>The first wrong value seen among records of <paramref name="kind"/>, for the error message.</summary>
    public string? FirstWrong(SavepointLayout.Kind kind) => Volatile.Read(ref _firstWrong[(int)kind]);

    /// <summary>The probe of job <paramref name="jobId"/> (created on first use, by the function or the benchmark).</summary>
    public static SavepointProbe For(string jobId) => s_jobs.GetOrAdd(jobId, _ => new SavepointProbe());

    public static void Clear() => s_jobs.Clear();

    public void OnRecord(SavepointLayout.Kind kind, bool wrong, long sequence, long index)
    {
        ref var count = ref _loaded;
        ref var wrongCount = ref _loadedOverExisting;
        switch (kind)
        {
            case SavepointLayout.Kind.Update:
                count = ref _updated;
                wrongCount = ref _updatedWrong;
                break;
            case SavepointLayout.Kind.CheckUpdated:
                count = ref _checkedUpdated;
                wrongCount = ref _checkedUpdatedWrong;
                break;
            case SavepointLayout.Kind.Sample:
                count = ref _sampled;
                wrongCount = ref _sampledWrong;
                break;
        }

        Interlocked.Increment(ref count);
        if (wrong)
        {
            Interlocked.Increment(ref wrongCount);
            Interlocked.CompareExchange(ref _firstWrong[(int)kind], $"record {sequence:N0} (key index {index:N0})", null);
        }
    }
}

/// <summary>The key of a savepoints record: <see cref="BigStateLayout.KeyOf"/> the key index the layout gives.</summary>
[GenerateSerializer, Alias("bench.SavepointKey")]
public sealed class SavepointKey : IKeySelector<long, long>
{
    /// <summary>Keys loaded first.</summary>
    [Id(0)] public long BigKeys { get; set; }

    /// <summary>Keys updated after the load.</summary>
    [Id(1)] public long ChangedKeys { get; set; }

    /// <summary>Every record after the load is a sample (see <see cref="SavepointLayout"/>).</summary>
    [Id(2)] public bool SamplesOnly { get; set; }

    /// <inheritdoc />
    public long GetKey(long value) => BigStateLayout.KeyOf(SavepointLayout.Of(value, BigKeys, ChangedKeys, SamplesOnly).Index);
}

/// <summary>
/// Keeps <see cref="ValueBytes"/> bytes per key (<see cref="BigStateLayout.ValueOf"/>: a version, the key index, then
/// incompressible bytes) in a <see cref="IValueState{T}"/>, and checks every value it reads against the version the
/// layout predicts; reports to <see cref="SavepointProbe"/>.
/// </summary>
[GenerateSerializer, Alias("bench.SavepointedValuePerKey")]
public sealed class SavepointedValuePerKey : KeyedProcessFunction<long, long, long>
{
    /// <summary>Keys loaded first.</summary>
    [Id(0)] public long BigKeys { get; set; }

    /// <summary>Keys updated after the load.</summary>
    [Id(1)] public long ChangedKeys { get; set; }

    /// <summary>The length of each key's value.</summary>
    [Id(2)] public int ValueBytes { get; set; } = 100;

    /// <summary>Every record after the load is a sample that must find version 0.</summary>
    [Id(3)] public bool SamplesOnly { get; set; }

    [NonSerialized] private IValueState<byte[]?>? _value;
    [NonSerialized] private SavepointProbe? _probe;
    [NonSerialized] private int _subtask;
    [NonSerialized] private bool _processedAny;

    /// <inheritdoc />
    public override void Open(IRuntimeContext context)
    {
        _value = context.GetState(new ValueStateDescriptor<byte[]?>("value"));
        _subtask = context.SubtaskIndex;
        _probe = SavepointProbe.For(context.JobId);
        _probe.Opened[_subtask] = Stopwatch.GetTimestamp();
    }

    /// <inheritdoc />
    public override void ProcessElement(long value, IKeyedContext<long> context, ICollector<long> output)
    {
        var probe = _probe!;
        if (!_processedAny)
        {
            _processedAny = true;
            probe.FirstRecord.TryAdd(_subtask, Stopwatch.GetTimestamp());
        }

        var state = _value!;
        var (kind, index) = SavepointLayout.Of(value, BigKeys, ChangedKeys, SamplesOnly);
        bool wrong;
        switch (kind)
        {
            case SavepointLayout.Kind.Load:
                wrong = state.Value is not null;
                state.Update(BigStateLayout.ValueOf(index, 0, ValueBytes));
                break;
            case SavepointLayout.Kind.Update:
                wrong = !BigStateLayout.Holds(state.Value, index, 0, ValueBytes);
                state.Update(BigStateLayout.ValueOf(index, 1, ValueBytes));
                break;
            case SavepointLayout.Kind.CheckUpdated:
                wrong = !BigStateLayout.Holds(state.Value, index, 1, ValueBytes);
                break;
            default:
                var expected = SamplesOnly ? 0 : BigStateLayout.VersionAfterUpdates(index, BigKeys, ChangedKeys);
                wrong = !BigStateLayout.Holds(state.Value, index, expected, ValueBytes);
                break;
        }

        probe.OnRecord(kind, wrong, value, index);
    }
}
