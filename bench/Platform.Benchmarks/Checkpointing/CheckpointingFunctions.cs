using System.Collections.Concurrent;
using System.Diagnostics;
using Platform.Benchmarks.KeyedCount;
using Platform.Functions;
using Platform.State;

namespace Platform.Benchmarks.Checkpointing;

/// <summary>
/// What the checkpointing benchmark's counting function reports, and the switch that makes it fail once. The silo runs
/// in the benchmark's process, so plain statics reach the function; one job runs at a time.
/// </summary>
internal static class CheckpointProbe
{
    /// <summary>How many records the counting function publishes at a time (a shared counter per record would cost more than it measures).</summary>
    public const int ProcessedStep = 4096;

    private static int s_failureArmed;
    private static long s_failedAt;
    private static long s_processed;

    /// <summary>(subtask, attempt) → Stopwatch timestamp of the first record the counting function processed.</summary>
    public static ConcurrentDictionary<(int Subtask, int Attempt), long> FirstRecord { get; } = new();

    /// <summary>Stopwatch timestamp of the injected failure; 0 before it.</summary>
    public static long FailedAt => Volatile.Read(ref s_failedAt);

    /// <summary>Whether a failure is armed and not yet taken (read on every record, so a plain field read).</summary>
    public static bool Armed => s_failureArmed != 0;

    /// <summary>Records the counting subtasks processed, in steps of <see cref="ProcessedStep"/>: the steady-state window's clock.</summary>
    public static long Processed => Volatile.Read(ref s_processed);

    public static void AddProcessed() => Interlocked.Add(ref s_processed, ProcessedStep);

    public static void Reset()
    {
        Volatile.Write(ref s_processed, 0);
        Volatile.Write(ref s_failureArmed, 0);
        Volatile.Write(ref s_failedAt, 0);
        FirstRecord.Clear();
    }

    /// <summary>Makes the next eligible record throw, once.</summary>
    public static void ArmFailure() => Volatile.Write(ref s_failureArmed, 1);

    /// <summary>Whether this call takes the armed failure (then it records the time).</summary>
    public static bool TakeFailure()
    {
        if (Interlocked.Exchange(ref s_failureArmed, 0) == 0)
        {
            return false;
        }

        Volatile.Write(ref s_failedAt, Stopwatch.GetTimestamp());
        return true;
    }
}

/// <summary>
/// <see cref="CountPerKey"/> with two probes: it notes the first record each (subtask, attempt) processes (records
/// flowing again after a restore), and throws once on an armed failure. The failure is taken only by a record that
/// does not complete its key's count, so no key has been emitted when the job fails and the collected output still
/// proves every count exact after the restore (a replay without the state would emit keys twice, a lost record none).
/// </summary>
[GenerateSerializer, Alias("bench.ProbedCountPerKey")]
public sealed class ProbedCountPerKey : KeyedProcessFunction<long, long, long>
{
    /// <summary>The job's total record count.</summary>
    [Id(0)] public long Records { get; set; }

    /// <summary>How many distinct keys the source produces.</summary>
    [Id(1)] public long DistinctKeys { get; set; }

    [NonSerialized] private IValueState<long>? _count;
    [NonSerialized] private long _countPerKey;
    [NonSerialized] private long _keysWithOneMore;
    [NonSerialized] private int _subtask;
    [NonSerialized] private int _attempt;
    [NonSerialized] private bool _seenRecord;
    [NonSerialized] private int _unpublished;

    /// <inheritdoc />
    public override void Open(IRuntimeContext context)
    {
        _count = context.GetState(new ValueStateDescriptor<long>("count"));
        _countPerKey = Records / DistinctKeys;
        _keysWithOneMore = Records % DistinctKeys;
        _subtask = context.SubtaskIndex;
        _attempt = context.Attempt;
    }

    /// <inheritdoc />
    public override void ProcessElement(long value, IKeyedContext<long> context, ICollector<long> output)
    {
        if (!_seenRecord)
        {
            _seenRecord = true;
            CheckpointProbe.FirstRecord.TryAdd((_subtask, _attempt), Stopwatch.GetTimestamp());
        }

        if (++_unpublished == CheckpointProbe.ProcessedStep)
        {
            _unpublished = 0;
            CheckpointProbe.AddProcessed();
        }

        var state = _count!;
        var count = state.Value + 1;
        var expected = _countPerKey + (BenchKeys.IndexOf(value) < _keysWithOneMore ? 1 : 0);
        if (CheckpointProbe.Armed && count < expected && CheckpointProbe.TakeFailure())
        {
            throw new InvalidOperationException("Failure injected by the checkpointing benchmark to measure recovery.");
        }

        state.Update(count);
        if (count == expected || count == expected + 1)
        {
            output.Collect(value);
        }
    }
}
