using Platform.Checkpointing;

namespace Platform.Tasks.Checkpointing;

/// <summary>What one input's barrier or end of input did to the alignment in progress.</summary>
/// <param name="Aligned">The barrier of a checkpoint now aligned on every input: the subtask takes its snapshot.</param>
/// <param name="AlignmentDuration">From the first input's barrier of <paramref name="Aligned"/> to the last.</param>
/// <param name="Abandoned">A checkpoint whose alignment a newer barrier overtook: it cannot complete in this subtask.</param>
internal readonly record struct AlignmentStep(CheckpointBarrier? Aligned, TimeSpan AlignmentDuration, long? Abandoned)
{
    /// <summary>Nothing to do yet.</summary>
    public static AlignmentStep None => default;
}

/// <summary>
/// Aligns checkpoint barriers across a subtask's inputs (Flink's barrier handler). Exactly-once: an input that
/// delivered barrier n is parked (its later batches belong to the next checkpoint) until every input delivered n.
/// At-least-once: no input is parked; the snapshot is taken when the last input delivers n. An input that ended
/// counts as aligned; a newer barrier abandons the alignment of an older one. Parking never blocks a grain turn:
/// the task's loop only skips parked inputs.
/// </summary>
internal sealed class BarrierAligner
{
    private readonly long[] _barrierSeen;
    private readonly bool[] _blocked;
    private readonly bool[] _ended;
    private readonly TimeProvider _time;
    private CheckpointBarrier? _aligning;
    private long _alignmentStarted;

    /// <summary>An aligner for <paramref name="inputs"/> inputs; <paramref name="time"/> measures alignment durations.</summary>
    public BarrierAligner(int inputs, TimeProvider? time = null)
    {
        _barrierSeen = new long[inputs];
        Array.Fill(_barrierSeen, -1);
        _blocked = new bool[inputs];
        _ended = new bool[inputs];
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The checkpoint being aligned, or -1.</summary>
    public long Aligning => _aligning?.CheckpointId ?? -1;

    /// <summary>The last checkpoint aligned here, or -1.</summary>
    public long LastAligned { get; private set; } = -1;

    /// <summary>Whether input <paramref name="input"/> is parked: its next batches wait for the alignment to complete.</summary>
    public bool IsBlocked(int input) => _blocked[input];

    /// <summary>Input <paramref name="input"/> delivered <paramref name="barrier"/>.</summary>
    public AlignmentStep OnBarrier(int input, CheckpointBarrier barrier)
    {
        if (barrier.CheckpointId <= LastAligned || (_aligning is { } current && barrier.CheckpointId < current.CheckpointId))
        {
            return AlignmentStep.None; // A barrier of a checkpoint this subtask already took or gave up.
        }

        long? abandoned = null;
        if (_aligning is { } overtaken && barrier.CheckpointId > overtaken.CheckpointId)
        {
            // A newer barrier overtook the one being aligned: that checkpoint cannot complete here any more.
            abandoned = overtaken.CheckpointId;
            Reset();
        }

        if (_aligning is null)
        {
            _aligning = barrier;
            _alignmentStarted = _time.GetTimestamp();
        }

        _barrierSeen[input] = barrier.CheckpointId;
        if (barrier.Mode == CheckpointingMode.ExactlyOnce)
        {
            // Records behind the barrier belong to the next checkpoint: they wait until every input delivered it.
            _blocked[input] = true;
        }

        return CompleteIfAligned() with { Abandoned = abandoned };
    }

    /// <summary>Input <paramref name="input"/> ended: it counts as aligned from now on.</summary>
    public AlignmentStep OnEndOfInput(int input)
    {
        _ended[input] = true;
        return CompleteIfAligned();
    }

    private AlignmentStep CompleteIfAligned()
    {
        if (_aligning is not { } barrier)
        {
            return AlignmentStep.None;
        }

        for (var i = 0; i < _barrierSeen.Length; i++)
        {
            if (_barrierSeen[i] != barrier.CheckpointId && !_ended[i])
            {
                return AlignmentStep.None;
            }
        }

        var duration = _time.GetElapsedTime(_alignmentStarted);
        LastAligned = barrier.CheckpointId;
        Reset();
        return new AlignmentStep(barrier, duration, null);
    }

    private void Reset()
    {
        _aligning = null;
        Array.Clear(_blocked);
    }
}
