using Platform.Functions;
using Platform.State;
using Platform.Tasks.EventTime;

namespace Platform.Tasks.Operators;

/// <summary>An operator whose timers the task's loop drives: event time as watermarks arrive, processing time by the clock.</summary>
internal interface ITimedOperator
{
    /// <summary>Whether the operator has a timer service (it registered a timer, or restored some).</summary>
    bool HasTimers { get; }

    /// <summary>The time of the earliest processing-time timer, if any.</summary>
    long? NextProcessingTimer { get; }

    /// <summary>
    /// The operator's input watermark advanced: fires the event-time timers it passed, at most
    /// <paramref name="maxTimers"/>; returns whether none is left due (else call again with the same watermark).
    /// </summary>
    bool AdvanceWatermark(long watermark, int maxTimers);

    /// <summary>Fires the processing-time timers that are due.</summary>
    void FireProcessingTimers();
}

/// <summary>
/// The part shared by the keyed operators (at the head of their chain): the keyed state backend, the context their
/// function sees (<see cref="IKeyedContext{TKey}"/> for records, <see cref="IOnTimerContext{TKey}"/> for timers) and
/// the timer service, created when the function first asks for it or when the restored state holds timers.
/// </summary>
internal abstract class KeyedStreamOperator<TKey>(IKeyedStateBackend<TKey> backend) : StreamOperator, IOnTimerContext<TKey>, ITimedOperator
    where TKey : notnull
{
    private OperatorContext? _context;
    private InternalTimerService<TKey>? _timers;
    private long _watermark = long.MinValue;

    public IRuntimeContext? RuntimeContext { get; set; }

    public IKeyedStateBackend<TKey> Backend => backend;

    public TKey CurrentKey => backend.CurrentKey;

    public long? Timestamp => _context is { CurrentTimestamp: var timestamp } && timestamp != long.MinValue ? timestamp : null;

    public TimeDomain TimeDomain { get; private set; }

    public ITimerService TimerService => _timers ??= CreateTimers();

    public bool HasTimers => _timers is not null;

    public long? NextProcessingTimer => _timers?.NextProcessingTime;

    protected OperatorContext Context => _context ?? throw new InvalidOperationException($"Operator '{Name}' is not open.");

    public override ValueTask OpenAsync(OperatorContext context)
    {
        _context = context;
        if (InternalTimerService<TKey>.HasTimers(backend))
        {
            // Restored timers fire without the function asking for the service first.
            _timers = CreateTimers();
        }

        OpenFunction();
        return ValueTask.CompletedTask;
    }

    public bool AdvanceWatermark(long watermark, int maxTimers)
    {
        _watermark = watermark;
        if (_timers is { } timers)
        {
            TimeDomain = TimeDomain.EventTime;
            return timers.AdvanceWatermark(watermark, maxTimers);
        }

        return true;
    }

    public void FireProcessingTimers()
    {
        if (_timers is { } timers)
        {
            TimeDomain = TimeDomain.ProcessingTime;
            timers.FireProcessingTimers();
        }
    }

    public override ValueTask CloseAsync()
    {
        CloseFunction();
        backend.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Opens the user function.</summary>
    protected abstract void OpenFunction();

    /// <summary>Closes the user function.</summary>
    protected abstract void CloseFunction();

    /// <summary>Calls the function's <c>OnTimer</c>; keyed state is scoped to <see cref="CurrentKey"/>.</summary>
    protected abstract void OnTimer(long timestamp);

    private InternalTimerService<TKey> CreateTimers()
    {
        var context = Context;
        return new InternalTimerService<TKey>(
            backend,
            context,
            context.Clock,
            (time, _, _) =>
            {
                try
                {
                    OnTimer(time);
                }
                catch (Exception ex)
                {
                    throw Fail(ex);
                }
            })
        {
            CurrentWatermark = _watermark,
        };
    }
}
