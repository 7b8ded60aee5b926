using Platform.Checkpointing;

namespace Platform.Jobs;

/// <summary>The failures a job has seen, which restart strategies decide on.</summary>
[GenerateSerializer, Alias("platform.RestartHistory")]
public sealed class RestartHistory
{
    /// <summary>Restarts so far.</summary>
    [Id(0)] public int Restarts { get; set; }

    /// <summary>When recent failures happened (for the failure-rate strategy).</summary>
    [Id(1)] public List<DateTimeOffset> FailureTimes { get; set; } = [];

    /// <summary>The delay of the last restart (for the exponential-delay strategy).</summary>
    [Id(2)] public TimeSpan LastBackoff { get; set; }

    /// <summary>When the job last restarted.</summary>
    [Id(3)] public DateTimeOffset? LastRestartAt { get; set; }
}

/// <summary>Applies a <see cref="RestartStrategy"/>: restart after a delay, or give up with a reason.</summary>
internal static class RestartPolicy
{
    public static (bool Restart, TimeSpan Delay, string? Reason) Decide(RestartStrategy strategy, RestartHistory history, DateTimeOffset now)
    {
        switch (strategy.Kind)
        {
            case RestartStrategyKind.None:
                return (false, TimeSpan.Zero, "the job's restart strategy is 'none'");

            case RestartStrategyKind.FixedDelay:
                return history.Restarts < strategy.MaxAttempts
                    ? (true, strategy.Delay, null)
                    : (false, TimeSpan.Zero, $"the fixed-delay restart strategy allows {strategy.MaxAttempts} restart(s) and all were used");

            case RestartStrategyKind.FailureRate:
                history.FailureTimes.RemoveAll(t => now - t > strategy.FailureRateInterval);
                history.FailureTimes.Add(now);
                return history.FailureTimes.Count <= strategy.MaxAttempts
                    ? (true, strategy.Delay, null)
                    : (false, TimeSpan.Zero, $"{history.FailureTimes.Count} failures happened within {strategy.FailureRateInterval}, more than the {strategy.MaxAttempts} the failure-rate restart strategy allows");

            default:
                if (history.Restarts >= strategy.MaxAttempts)
                {
                    return (false, TimeSpan.Zero, $"the exponential-delay restart strategy allows {strategy.MaxAttempts} restart(s) and all were used");
                }

                var reset = history.LastRestartAt is not { } last || now - last > strategy.ResetBackoffThreshold;
                var backoff = reset || history.LastBackoff <= TimeSpan.Zero
                    ? strategy.InitialBackoff
                    : TimeSpan.FromTicks((long)Math.Min(strategy.MaxBackoff.Ticks, history.LastBackoff.Ticks * strategy.BackoffMultiplier));
                history.LastBackoff = backoff;
                return (true, backoff, null);
        }
    }
}
