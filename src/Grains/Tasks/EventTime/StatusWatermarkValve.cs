namespace Platform.Tasks.EventTime;

/// <summary>What a watermark or status element did to a subtask's combined event time.</summary>
/// <param name="Watermark">The subtask's watermark advanced to this value: forward it, after firing due timers.</param>
/// <param name="Status">The subtask turned idle (<c>true</c>) or active again (<c>false</c>): forward the status.</param>
internal readonly record struct ValveOutput(long? Watermark, bool? Status)
{
    /// <summary>Nothing to forward.</summary>
    public static ValveOutput None => default;
}

/// <summary>
/// Combines the watermarks and statuses of a subtask's input channels into the subtask's own (Flink's
/// <c>StatusWatermarkValve</c>, with the two-input rule on top). Per input gate, the watermark is the minimum over its
/// aligned channels: active ones whose watermark is not behind what the gate last reached (a channel that comes back
/// from idleness behind it joins again once it caught up, instead of moving the gate back). A gate whose channels
/// are all idle is idle and holds back nothing; the subtask's watermark is the minimum over its active gates, idle
/// when every gate is. Outputs only advance: a watermark is forwarded once, when it grows.
/// </summary>
internal sealed class StatusWatermarkValve
{
    private readonly int[] _gateOf;
    private readonly long[] _channelWatermark;
    private readonly bool[] _channelIdle;
    private readonly bool[] _channelAligned;
    private readonly long[] _gateWatermark;
    private readonly bool[] _gateIdle;

    /// <summary>A valve for channels whose gates are <paramref name="gateOfChannel"/> (index: channel, value: gate).</summary>
    public StatusWatermarkValve(IReadOnlyList<int> gateOfChannel)
    {
        _gateOf = [.. gateOfChannel];
        _channelWatermark = new long[_gateOf.Length];
        Array.Fill(_channelWatermark, long.MinValue);
        _channelIdle = new bool[_gateOf.Length];
        _channelAligned = new bool[_gateOf.Length];
        Array.Fill(_channelAligned, true);
        var gates = _gateOf.Length == 0 ? 0 : _gateOf.Max() + 1;
        _gateWatermark = new long[gates];
        Array.Fill(_gateWatermark, long.MinValue);
        _gateIdle = new bool[gates];
    }

    /// <summary>The subtask's watermark: the last one forwarded, <see cref="long.MinValue"/> before the first.</summary>
    public long CurrentWatermark { get; private set; } = long.MinValue;

    /// <summary>Whether every input is idle.</summary>
    public bool Idle { get; private set; }

    /// <summary>Channel <paramref name="channel"/> delivered a watermark.</summary>
    public ValveOutput OnWatermark(int channel, long timestamp)
    {
        if (_channelIdle[channel] || timestamp <= _channelWatermark[channel])
        {
            // An idle channel's watermark is ignored (Flink: the sender must go active first); one that does not
            // advance the channel changes nothing.
            return ValveOutput.None;
        }

        _channelWatermark[channel] = timestamp;
        var gate = _gateOf[channel];
        if (!_channelAligned[channel] && timestamp >= _gateWatermark[gate])
        {
            _channelAligned[channel] = true;
        }

        return RecomputeGate(gate) ? new ValveOutput(AdvanceSubtask(), null) : ValveOutput.None;
    }

    /// <summary>Channel <paramref name="channel"/> turned idle or active.</summary>
    public ValveOutput OnStatus(int channel, bool idle)
    {
        if (_channelIdle[channel] == idle)
        {
            return ValveOutput.None;
        }

        _channelIdle[channel] = idle;
        var gate = _gateOf[channel];
        if (idle)
        {
            _channelAligned[channel] = false;
        }
        else
        {
            // Back from idleness: it holds the gate back only once it caught up with the gate's watermark.
            _channelAligned[channel] = _channelWatermark[channel] >= _gateWatermark[gate];
        }

        var wasIdle = Idle;
        RecomputeGate(gate);
        var watermark = AdvanceSubtask();
        Idle = Array.TrueForAll(_gateIdle, g => g) && _gateIdle.Length > 0;
        return new ValveOutput(watermark, Idle != wasIdle ? Idle : null);
    }

    // Recomputes one gate's idleness and watermark; true when its watermark advanced.
    private bool RecomputeGate(int gate)
    {
        var anyActive = false;
        var min = long.MaxValue;
        for (var channel = 0; channel < _gateOf.Length; channel++)
        {
            if (_gateOf[channel] != gate || _channelIdle[channel])
            {
                continue;
            }

            anyActive = true;
            if (_channelAligned[channel])
            {
                min = Math.Min(min, _channelWatermark[channel]);
            }
        }

        _gateIdle[gate] = !anyActive;
        if (anyActive && min != long.MaxValue && min > _gateWatermark[gate])
        {
            _gateWatermark[gate] = min;
            return true;
        }

        return false;
    }

    // The minimum over the active gates; returns it when it advanced the subtask's watermark, else null.
    private long? AdvanceSubtask()
    {
        var min = long.MaxValue;
        for (var gate = 0; gate < _gateWatermark.Length; gate++)
        {
            if (!_gateIdle[gate])
            {
                min = Math.Min(min, _gateWatermark[gate]);
            }
        }

        if (min != long.MaxValue && min > CurrentWatermark)
        {
            CurrentWatermark = min;
            return min;
        }

        return null;
    }
}
