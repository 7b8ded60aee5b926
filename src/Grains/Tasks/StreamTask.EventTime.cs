using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Platform.Tasks.EventTime;
using Platform.Tasks.Network;

namespace Platform.Tasks;

/// <summary>
/// Event time in the task loop: watermarks and idleness that arrive on input channels go through the subtask's valve,
/// and what it forwards leaves on every output channel after the records before it; a chain with a watermark
/// generator emits its own every auto-watermark interval instead. Jobs without event time never see a watermark, and
/// pay for none: nothing here runs until a watermark arrives or the chain has a generator.
/// </summary>
internal sealed partial class StreamTask
{
    private StatusWatermarkValve? _valve;
    private bool _eventTime;
    private long _emittedWatermark = long.MinValue;
    private bool _emittedIdle;
    private long _nextGeneratedWatermarkAt;
    private long _recordsSeenAtLastCheck = -1;
    private long _recordsLastSeenAt = Stopwatch.GetTimestamp();
    private long _timersWatermark = long.MinValue;

    // How many event-time timers fire between two looks at the outputs and the clock.
    private const int TimersPerSlice = 1024;

    // Set by the barrier of a stop with savepoint without drain: the end of input that follows is no end of event time.
    private bool _stopWithoutDrain;

    private StatusWatermarkValve Valve => _valve ??= new StatusWatermarkValve([.. _inputs.Select(c => c.Spec.Gate)]);

    /// <summary>A watermark or status arrived on input channel <paramref name="index"/>.</summary>
    private async ValueTask OnInputEventTimeAsync(int index, ControlElement element)
    {
        if (!_eventTime)
        {
            // The first event-time element: channels that ended before it hold back nothing from now on.
            _eventTime = true;
            for (var i = 0; i < _inputs.Length; i++)
            {
                if (_inputs[i].Ended)
                {
                    Valve.OnWatermark(i, long.MaxValue);
                }
            }
        }

        var output = element switch
        {
            Watermark watermark => Valve.OnWatermark(index, watermark.Timestamp),
            WatermarkStatus status => Valve.OnStatus(index, status.Idle),
            _ => ValveOutput.None,
        };

        if (output.Watermark is { } passed)
        {
            // The head's event-time timers fire before the watermark goes on, so what they emit precedes it.
            await AdvanceTimersAsync(passed);
        }

        // A chain with its own generator replaces what comes from upstream (Flink's TimestampsAndWatermarksOperator),
        // except the end of event time.
        if (_chain.WatermarkGenerator is not null && output.Watermark != long.MaxValue)
        {
            return;
        }

        if (output.Status is { } idle)
        {
            await EmitStatusAsync(idle);
        }

        if (output.Watermark is { } advanced)
        {
            await EmitWatermarkAsync(advanced);
        }
    }

    /// <summary>Input channel <paramref name="index"/> ended: it holds back no watermark any more.</summary>
    private async ValueTask OnInputEndedEventTimeAsync(int index)
    {
        if (_stopWithoutDrain)
        {
            // Stopped at a savepoint without draining: event time stays where it was (Flink's NO_DRAIN), so no timer
            // or window fires for an end that did not come.
            return;
        }

        if (_eventTime && Valve.OnWatermark(index, long.MaxValue) is { Watermark: { } advanced })
        {
            await AdvanceTimersAsync(advanced);
            if (_chain.WatermarkGenerator is null)
            {
                await EmitWatermarkAsync(advanced);
            }
        }
    }

    /// <summary>
    /// Every input ended: the event-time timers left fire (Flink's end of input brings the final watermark), unless
    /// the job stopped at a savepoint without draining. A job without watermarks gets here too.
    /// </summary>
    private async ValueTask FireTimersAtEndOfInputAsync()
    {
        if (!_stopWithoutDrain)
        {
            await AdvanceTimersAsync(long.MaxValue);
        }
    }

    private async ValueTask AdvanceTimersAsync(long watermark)
    {
        if (_chain.TimedHead is { } head && watermark > _timersWatermark)
        {
            _timersWatermark = watermark;

            // A watermark can pass millions of timers at once (every window of a key space at the end of input): they
            // fire in slices, and between slices what they emitted is sent (waiting for credit, so memory stays bounded)
            // and the grain yields, so the subtask still answers the job manager's heartbeat.
            while (!head.AdvanceWatermark(watermark, TimersPerSlice))
            {
                await FlushPendingAsync();
                if (DueToYield())
                {
                    await YieldAsync();
                }
            }
        }
    }

    /// <summary>Fires the head's processing-time timers that are due; returns whether any were, and when the next one is (null if none).</summary>
    private (bool Fired, long? Next) FireProcessingTimersIfDue()
    {
        if (_chain.TimedHead is not { HasTimers: true } head || head.NextProcessingTimer is not { } next)
        {
            return (false, null);
        }

        if (next <= _processingClock.GetUtcNow().ToUnixTimeMilliseconds())
        {
            head.FireProcessingTimers();
            return (true, head.NextProcessingTimer);
        }

        return (false, next);
    }

    /// <summary>Emits the chain generator's watermark when the interval passed and it advanced; marks the subtask idle after its idleness timeout.</summary>
    private async ValueTask EmitGeneratedWatermarkIfDueAsync()
    {
        if (_chain.WatermarkGenerator is not { } generator)
        {
            return;
        }

        var now = Stopwatch.GetTimestamp();
        if (now < _nextGeneratedWatermarkAt)
        {
            return;
        }

        _nextGeneratedWatermarkAt = now + (long)(_deployment.AutoWatermarkInterval.TotalSeconds * Stopwatch.Frequency);
        if (generator.RecordsSeen != _recordsSeenAtLastCheck)
        {
            _recordsSeenAtLastCheck = generator.RecordsSeen;
            _recordsLastSeenAt = now;
            if (_emittedIdle)
            {
                await EmitStatusAsync(idle: false);
            }
        }
        else if (generator.Idleness is { } idleness && !_emittedIdle && Stopwatch.GetElapsedTime(_recordsLastSeenAt, now) >= idleness)
        {
            await EmitStatusAsync(idle: true);
            return;
        }

        if (generator.CurrentWatermark > _emittedWatermark && !_emittedIdle)
        {
            await EmitWatermarkAsync(generator.CurrentWatermark);
        }
    }

    /// <summary>At the end of input: the end of event time, if the subtask has any, goes before the end of input.</summary>
    private async ValueTask EmitFinalWatermarkAsync()
    {
        if (_stopWithoutDrain)
        {
            return;
        }

        if ((_chain.WatermarkGenerator is not null || _eventTime) && _emittedWatermark < long.MaxValue)
        {
            if (_emittedIdle)
            {
                await EmitStatusAsync(idle: false);
            }

            await EmitWatermarkAsync(long.MaxValue);
        }
    }

    private async ValueTask EmitWatermarkAsync(long timestamp)
    {
        if (timestamp <= _emittedWatermark)
        {
            return;
        }

        _emittedWatermark = timestamp;
        _chain.Context.CurrentWatermark = timestamp;
        LogWatermark(Id, Attempt, timestamp);
        await EmitControlAsync(new Watermark(timestamp));
    }

    private async ValueTask EmitStatusAsync(bool idle)
    {
        if (idle == _emittedIdle)
        {
            return;
        }

        _emittedIdle = idle;
        await EmitControlAsync(idle ? WatermarkStatus.IdleStatus : WatermarkStatus.ActiveStatus);
    }

    private async ValueTask EmitControlAsync(ControlElement element)
    {
        // After every record before it: the records written so far leave first, in partly filled batches if need be.
        SealAll();
        foreach (var channel in _chain.OutputChannels)
        {
            _chain.Pending.Enqueue(new PendingBatch(channel, null, 0, element));
        }

        await FlushPendingAsync();
    }

    [LoggerMessage(Level = LogLevel.Trace, Message = "Task {Task} attempt {Attempt} forwards watermark {Watermark}")]
    private partial void LogWatermark(TaskId task, int attempt, long watermark);
}
