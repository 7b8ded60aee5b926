using Platform.Functions;
using Platform.State;
using Platform.Tasks.EventTime;
using Platform.Tasks.Operators;

namespace Platform.Tests.State;

/// <summary>Timers are keyed state: the same contract on every backend, through snapshots and rescaling.</summary>
public abstract partial class KeyedStateConformanceTests
{
    private static OperatorContext TimerContext() => new()
    {
        JobId = "timers",
        SubtaskIndex = 0,
        Parallelism = 1,
        MaxParallelism = MaxParallelism,
        Attempt = 1,
        Services = Services,
    };

    private static InternalTimerService<long> Timers(IKeyedStateBackend<long> backend, List<(long Key, long Time, TimeDomain Domain)> fired, OperatorContext? context = null)
    {
        context ??= TimerContext();
        return new InternalTimerService<long>(backend, context, TimeProvider.System, (time, key, domain) =>
        {
            // The timer's key is current while it fires, and an event-time timer's time is the output's timestamp.
            Assert.Equal(key, backend.CurrentKey);
            Assert.Equal(domain == TimeDomain.EventTime ? time : long.MinValue, context.CurrentTimestamp);
            fired.Add((key, time, domain));
        });
    }

    [Fact]
    public void A_watermark_that_passes_many_timers_fires_them_in_slices_in_time_order_and_says_when_none_is_left()
    {
        using var backend = CreateBackend<long>(new KeyGroupRange(0, MaxParallelism - 1));
        var fired = new List<(long Key, long Time, TimeDomain Domain)>();
        var timers = Timers(backend, fired);
        for (long key = 0; key < 2_500; key++)
        {
            backend.SetCurrentKey(key);
            timers.RegisterEventTimeTimer(key);
        }

        var slices = 0;
        while (!timers.AdvanceWatermark(long.MaxValue, maxTimers: 1_000))
        {
            slices++;
            Assert.Equal(slices * 1_000, fired.Count);
        }

        Assert.Equal(2, slices);
        Assert.Equal(Enumerable.Range(0, 2_500).Select(k => ((long)k, (long)k, TimeDomain.EventTime)), fired);
        Assert.Equal(0, timers.Count);
        Assert.True(timers.AdvanceWatermark(long.MaxValue, maxTimers: 1));
    }

    [Fact]
    public void Event_time_timers_fire_in_time_order_once_per_key_and_time_and_deleted_ones_never()
    {
        using var backend = CreateBackend<long>(new KeyGroupRange(0, MaxParallelism - 1));
        var fired = new List<(long Key, long Time, TimeDomain Domain)>();
        var timers = Timers(backend, fired);
        for (long key = 0; key < 100; key++)
        {
            backend.SetCurrentKey(key);
            timers.RegisterEventTimeTimer(1_000 - key);
            timers.RegisterEventTimeTimer(1_000 - key); // the same timer: kept once
            timers.RegisterEventTimeTimer(2_000 + key);
            timers.RegisterEventTimeTimer(5_000);
            timers.DeleteEventTimeTimer(5_000);
        }

        Assert.Equal(200, timers.Count);
        timers.AdvanceWatermark(1_500);
        Assert.Equal(Enumerable.Range(0, 100).Select(k => (99L - k, 901L + k, TimeDomain.EventTime)), fired);

        // A timer registered while others fire, at or before the watermark, fires with them.
        fired.Clear();
        var reentrant = new List<(long, long, TimeDomain)>();
        InternalTimerService<long>? chained = null;
        chained = new InternalTimerService<long>(backend, TimerContext(), TimeProvider.System, (time, key, domain) =>
        {
            reentrant.Add((key, time, domain));
            if (time == 2_000)
            {
                chained!.RegisterEventTimeTimer(2_000 + 500);
            }
        });
        chained.AdvanceWatermark(2_099);
        Assert.Equal(100, reentrant.Count); // the registered-in-timer one (key 0 at 2,500) is past the watermark
        Assert.Equal(1, chained.Count);
        chained.AdvanceWatermark(long.MaxValue);
        Assert.Equal((0L, 2_500L, TimeDomain.EventTime), reentrant[^1]);
        Assert.Equal(0, chained.Count);
        Assert.Empty(backend.GetKeys(TimerStateNames.EventTime));
    }

    [Fact]
    public void Processing_time_timers_fire_when_the_clock_reaches_them()
    {
        using var backend = CreateBackend<long>(new KeyGroupRange(0, MaxParallelism - 1));
        var fired = new List<(long Key, long Time, TimeDomain Domain)>();
        var timers = Timers(backend, fired);
        var now = timers.CurrentProcessingTime;
        backend.SetCurrentKey(1);
        timers.RegisterProcessingTimeTimer(now - 10);
        timers.RegisterProcessingTimeTimer(now + 3_600_000);
        backend.SetCurrentKey(2);
        timers.RegisterProcessingTimeTimer(now - 5);
        timers.RegisterEventTimeTimer(now - 5);

        Assert.Equal(now - 10, timers.NextProcessingTime);
        timers.FireProcessingTimers();
        Assert.Equal([(1L, now - 10, TimeDomain.ProcessingTime), (2L, now - 5, TimeDomain.ProcessingTime)], fired);
        Assert.Equal(now + 3_600_000, timers.NextProcessingTime);
        Assert.Equal(2, timers.Count); // the event-time one waits for a watermark
    }

    [Fact]
    public void Timers_restore_from_a_snapshot_split_by_key_group_when_the_parallelism_changes()
    {
        var all = new KeyGroupRange(0, MaxParallelism - 1);
        using var source = CreateBackend<long>(all);
        var timers = Timers(source, []);
        var expected = new List<(long, long, TimeDomain)>();
        for (long key = 0; key < 1_000; key++)
        {
            source.SetCurrentKey(key);
            timers.RegisterEventTimeTimer(key * 3);
            timers.RegisterEventTimeTimer(key * 3 + 1);
            timers.RegisterProcessingTimeTimer(key);
            expected.Add((key, key * 3, TimeDomain.EventTime));
            expected.Add((key, key * 3 + 1, TimeDomain.EventTime));
            expected.Add((key, key, TimeDomain.ProcessingTime));
        }

        // Fired before the snapshot: not in it.
        source.SetCurrentKey(0);
        timers.AdvanceWatermark(0);
        expected.Remove((0, 0, TimeDomain.EventTime));
        byte[] file;
        using (var snapshot = source.Snapshot())
        {
            file = snapshot.Write();
        }

        // Restored at parallelism 3: each subtask's timers are those of its key groups, and together they are all.
        var fired = new List<(long Key, long Time, TimeDomain Domain)>();
        foreach (var range in new[] { new KeyGroupRange(0, 42), new KeyGroupRange(43, 85), new KeyGroupRange(86, 127) })
        {
            using var restored = CreateBackend<long>(range);
            restored.Restore([(file, "snapshot")]);
            Assert.True(InternalTimerService<long>.HasTimers(restored));
            var own = new List<(long Key, long Time, TimeDomain Domain)>();
            var restoredTimers = Timers(restored, own);
            restoredTimers.AdvanceWatermark(long.MaxValue);
            restoredTimers.FireProcessingTimers();
            Assert.All(own, t => Assert.True(range.Contains(KeyGroupAssignment.AssignToKeyGroup(KeyHashers.Create<long>(Serializer).Hash(t.Key), MaxParallelism))));
            fired.AddRange(own);
        }

        Assert.Equal(expected.Order(), fired.Order());
    }

    [Fact]
    public void A_user_state_cannot_take_the_name_of_the_timers_states()
    {
        using var backend = CreateBackend<long>(new KeyGroupRange(0, MaxParallelism - 1));
        var context = new StreamingRuntimeContext(TimerContext(), "op", backend);
        var error = Assert.Throws<ArgumentException>(() => context.GetMapState(new MapStateDescriptor<long, bool>(TimerStateNames.EventTime)));
        Assert.Contains("reserved for timers", error.Message);
    }
}
