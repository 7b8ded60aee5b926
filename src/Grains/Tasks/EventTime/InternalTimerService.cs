using Platform.Functions;
using Platform.State;
using Platform.Tasks.Operators;

namespace Platform.Tasks.EventTime;

/// <summary>The keyed states timers are kept in; their prefix is reserved (a user state cannot take it).</summary>
internal static class TimerStateNames
{
    /// <summary>The prefix of the states timers are kept in (Flink's <c>_timer_state/</c>).</summary>
    public const string ReservedPrefix = "_timer_state/";

    /// <summary>Event-time timers: per key, a map from time to <c>true</c>.</summary>
    public const string EventTime = ReservedPrefix + "event";

    /// <summary>Processing-time timers.</summary>
    public const string ProcessingTime = ReservedPrefix + "processing";
}

/// <summary>
/// The timers of a keyed operator (Flink's <c>InternalTimerServiceImpl</c>). Each timer is an entry of a map state of
/// its key (<c>time → true</c>), one map state per domain, so timers are in every snapshot the backend takes (heap or
/// RocksDB, checkpoint or savepoint, native or portable) and are split by key group when a job is rescaled. A queue in
/// memory orders them by time; it is rebuilt from the state when the operator opens after a restore. The task's loop
/// calls <see cref="AdvanceWatermark"/> and <see cref="FireProcessingTimers"/> between batches, never during a record.
/// </summary>
internal sealed class InternalTimerService<TKey> : ITimerService
    where TKey : notnull
{
    private readonly IKeyedStateBackend<TKey> _backend;
    private readonly OperatorContext _context;
    private readonly TimeProvider _clock;
    private readonly IMapState<long, bool> _eventState;
    private readonly IMapState<long, bool> _processingState;
    private readonly TimerQueue _eventTimers = new();
    private readonly TimerQueue _processingTimers = new();
    private readonly Action<long, TKey, TimeDomain> _onTimer;
    private long _watermark = long.MinValue;

    public InternalTimerService(IKeyedStateBackend<TKey> backend, OperatorContext context, TimeProvider clock, Action<long, TKey, TimeDomain> onTimer)
    {
        _backend = backend;
        _context = context;
        _clock = clock;
        _onTimer = onTimer;
        _eventState = backend.GetMapState(new MapStateDescriptor<long, bool>(TimerStateNames.EventTime));
        _processingState = backend.GetMapState(new MapStateDescriptor<long, bool>(TimerStateNames.ProcessingTime));
        Load(TimerStateNames.EventTime, _eventState, _eventTimers);
        Load(TimerStateNames.ProcessingTime, _processingState, _processingTimers);
    }

    /// <summary>Whether a restored backend holds timers, so the service must exist before any record (to fire them).</summary>
    public static bool HasTimers(IKeyedStateBackend backend) =>
        backend.HasState(TimerStateNames.EventTime) || backend.HasState(TimerStateNames.ProcessingTime);

    public long CurrentProcessingTime => _clock.GetUtcNow().ToUnixTimeMilliseconds();

    public long CurrentWatermark
    {
        get => _watermark;
        init => _watermark = value;
    }

    /// <summary>The time of the earliest processing-time timer, if any.</summary>
    public long? NextProcessingTime => _processingTimers.PeekTime();

    /// <summary>The number of timers registered (both domains), for tests and metrics.</summary>
    public int Count => _eventTimers.Count + _processingTimers.Count;

    public void RegisterEventTimeTimer(long time)
    {
        if (_eventTimers.Add(_backend.CurrentKey, time))
        {
            _eventState.Put(time, true);
        }
    }

    public void RegisterProcessingTimeTimer(long time)
    {
        if (_processingTimers.Add(_backend.CurrentKey, time))
        {
            _processingState.Put(time, true);
        }
    }

    public void DeleteEventTimeTimer(long time)
    {
        if (_eventTimers.Remove(_backend.CurrentKey, time))
        {
            _eventState.Remove(time);
        }
    }

    public void DeleteProcessingTimeTimer(long time)
    {
        if (_processingTimers.Remove(_backend.CurrentKey, time))
        {
            _processingState.Remove(time);
        }
    }

    /// <summary>
    /// The operator's event time reached <paramref name="watermark"/>: fires the event-time timers at or before it, in
    /// time order (one registered meanwhile at or before it too), with the timer's time as the output's timestamp, at
    /// most <paramref name="maxTimers"/> of them. Returns whether none is left due (else call again).
    /// </summary>
    public bool AdvanceWatermark(long watermark, int maxTimers = int.MaxValue)
    {
        _watermark = watermark;
        var fired = 0;
        try
        {
            while (fired++ < maxTimers && _eventTimers.TryPopDue(watermark, out var key, out var time))
            {
                _backend.SetCurrentKey(key);
                _eventState.Remove(time);
                _context.CurrentTimestamp = time;
                _onTimer(time, key, TimeDomain.EventTime);
            }

            return fired <= maxTimers;
        }
        finally
        {
            _context.CurrentTimestamp = long.MinValue;
        }
    }

    /// <summary>Fires every processing-time timer due by the clock now; what they emit has no timestamp.</summary>
    public void FireProcessingTimers()
    {
        var now = CurrentProcessingTime;
        _context.CurrentTimestamp = long.MinValue;
        while (_processingTimers.TryPopDue(now, out var key, out var time))
        {
            _backend.SetCurrentKey(key);
            _processingState.Remove(time);
            _onTimer(time, key, TimeDomain.ProcessingTime);
        }
    }

    private void Load(string stateName, IMapState<long, bool> state, TimerQueue queue)
    {
        foreach (var key in _backend.GetKeys(stateName))
        {
            _backend.SetCurrentKey(key);
            foreach (var time in state.Keys())
            {
                queue.Add(key, time);
            }
        }
    }

    /// <summary>
    /// Timers of one domain ordered by time, deduplicated by (key, time). A deleted timer stays in the heap until it
    /// comes up (or until stale entries outnumber live ones, when the heap is rebuilt).
    /// </summary>
    private sealed class TimerQueue
    {
        private readonly HashSet<(TKey Key, long Time)> _live = [];
        private PriorityQueue<(TKey Key, long Time), long> _heap = new();

        public int Count => _live.Count;

        public bool Add(TKey key, long time)
        {
            if (!_live.Add((key, time)))
            {
                return false;
            }

            _heap.Enqueue((key, time), time);
            return true;
        }

        public bool Remove(TKey key, long time)
        {
            if (!_live.Remove((key, time)))
            {
                return false;
            }

            if (_heap.Count > 1024 && _heap.Count > 2 * _live.Count)
            {
                _heap = new PriorityQueue<(TKey, long), long>(_live.Select(t => (t, t.Time)));
            }

            return true;
        }

        public long? PeekTime()
        {
            while (_heap.TryPeek(out var timer, out var time))
            {
                if (_live.Contains(timer))
                {
                    return time;
                }

                _heap.Dequeue();
            }

            return null;
        }

        public bool TryPopDue(long upTo, out TKey key, out long time)
        {
            while (_heap.TryPeek(out var timer, out time) && time <= upTo)
            {
                _heap.Dequeue();
                if (_live.Remove(timer))
                {
                    key = timer.Key;
                    return true;
                }
            }

            key = default!;
            time = 0;
            return false;
        }
    }
}
