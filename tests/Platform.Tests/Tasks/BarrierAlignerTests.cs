using Platform.Checkpointing;
using Platform.Tasks;
using Platform.Tasks.Checkpointing;

namespace Platform.Tests.Tasks;

/// <summary>The barrier aligner alone, for a subtask with two inputs (0 and 1).</summary>
public sealed class BarrierAlignerTests
{
    private static CheckpointBarrier Barrier(long id, CheckpointingMode mode = CheckpointingMode.ExactlyOnce) =>
        new(id, DateTimeOffset.UnixEpoch, mode);

    [Fact]
    public void Exactly_once_parks_the_input_that_delivered_barrier_n_until_the_other_delivers_it()
    {
        var clock = new ManualClock();
        var aligner = new BarrierAligner(2, clock);

        var first = aligner.OnBarrier(0, Barrier(1));
        Assert.Null(first.Aligned);
        Assert.True(aligner.IsBlocked(0), "input 0 delivered barrier 1: its next batches belong to checkpoint 2 and must wait");
        Assert.False(aligner.IsBlocked(1), "input 1 has not delivered barrier 1 yet: its records still belong to checkpoint 1");
        Assert.Equal(1, aligner.Aligning);

        clock.Advance(TimeSpan.FromSeconds(3));
        var second = aligner.OnBarrier(1, Barrier(1));

        Assert.Equal(1, second.Aligned?.CheckpointId);
        Assert.Equal(TimeSpan.FromSeconds(3), second.AlignmentDuration);
        Assert.Null(second.Abandoned);
        Assert.False(aligner.IsBlocked(0));
        Assert.False(aligner.IsBlocked(1));
        Assert.Equal(-1, aligner.Aligning);
        Assert.Equal(1, aligner.LastAligned);
    }

    [Fact]
    public void At_least_once_never_parks_an_input_and_snapshots_when_the_last_input_delivers_the_barrier()
    {
        var aligner = new BarrierAligner(2, new ManualClock());

        var first = aligner.OnBarrier(0, Barrier(1, CheckpointingMode.AtLeastOnce));
        Assert.Null(first.Aligned);
        Assert.False(aligner.IsBlocked(0), "at-least-once must not hold back the input that delivered the barrier");
        Assert.False(aligner.IsBlocked(1));

        var second = aligner.OnBarrier(1, Barrier(1, CheckpointingMode.AtLeastOnce));
        Assert.Equal(1, second.Aligned?.CheckpointId);
        Assert.False(aligner.IsBlocked(0));
        Assert.False(aligner.IsBlocked(1));
    }

    [Fact]
    public void A_newer_barrier_abandons_the_alignment_of_an_older_one()
    {
        var aligner = new BarrierAligner(2, new ManualClock());
        aligner.OnBarrier(0, Barrier(1));

        // Input 1 never delivered barrier 1 (its upstream declined and a newer checkpoint was triggered): barrier 2 overtakes it.
        var overtaking = aligner.OnBarrier(1, Barrier(2));
        Assert.Equal(1, overtaking.Abandoned);
        Assert.Null(overtaking.Aligned);
        Assert.Equal(2, aligner.Aligning);
        Assert.False(aligner.IsBlocked(0), "input 0 was parked for checkpoint 1 only; abandoning it lets its records through");
        Assert.True(aligner.IsBlocked(1));

        // Barrier 1 arriving late on input 1 is ignored: checkpoint 1 was given up here.
        Assert.Equal(AlignmentStep.None, aligner.OnBarrier(1, Barrier(1)));

        var aligned = aligner.OnBarrier(0, Barrier(2));
        Assert.Equal(2, aligned.Aligned?.CheckpointId);
        Assert.Null(aligned.Abandoned);

        // A redelivered barrier of a checkpoint already taken does nothing.
        Assert.Equal(AlignmentStep.None, aligner.OnBarrier(0, Barrier(2)));
        Assert.False(aligner.IsBlocked(0));
    }

    [Fact]
    public void An_ended_input_counts_as_aligned()
    {
        var aligner = new BarrierAligner(2, new ManualClock());
        aligner.OnBarrier(0, Barrier(1));

        var ended = aligner.OnEndOfInput(1);
        Assert.Equal(1, ended.Aligned?.CheckpointId);
        Assert.False(aligner.IsBlocked(0));

        // Later barriers align on the one input still open.
        var next = aligner.OnBarrier(0, Barrier(2));
        Assert.Equal(2, next.Aligned?.CheckpointId);
        Assert.False(aligner.IsBlocked(0));
    }

    [Fact]
    public void An_input_ending_before_any_barrier_starts_no_checkpoint()
    {
        var aligner = new BarrierAligner(2, new ManualClock());

        Assert.Equal(AlignmentStep.None, aligner.OnEndOfInput(0));
        Assert.Equal(-1, aligner.Aligning);
    }

    /// <summary>A clock that moves only when told, so that the measured alignment duration is exact.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
