namespace Platform.Checkpointing;

/// <summary>Which restart strategy a job uses after a failure (Flink's restart strategies).</summary>
[GenerateSerializer, Alias("platform.RestartStrategyKind")]
public enum RestartStrategyKind
{
    /// <summary>Restart with a delay that grows after every failure, up to a maximum (the default).</summary>
    ExponentialDelay,

    /// <summary>Restart up to a number of attempts, with a fixed delay.</summary>
    FixedDelay,

    /// <summary>Restart unless too many failures happened within an interval.</summary>
    FailureRate,

    /// <summary>Never restart: the first failure fails the job.</summary>
    None,
}

/// <summary>How a job restarts after a failure, with Flink's meanings and defaults.</summary>
[GenerateSerializer, Alias("platform.RestartStrategy")]
public sealed record RestartStrategy
{
    /// <summary>The strategy.</summary>
    [Id(0)] public RestartStrategyKind Kind { get; init; } = RestartStrategyKind.ExponentialDelay;

    /// <summary>Fixed delay: the most restarts; failure rate: the most failures per <see cref="FailureRateInterval"/>.</summary>
    [Id(1)] public int MaxAttempts { get; init; } = int.MaxValue;

    /// <summary>Fixed delay and failure rate: the delay before a restart.</summary>
    [Id(2)] public TimeSpan Delay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Exponential delay: the first delay.</summary>
    [Id(3)] public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Exponential delay: the largest delay.</summary>
    [Id(4)] public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Exponential delay: the factor the delay grows by after each failure.</summary>
    [Id(5)] public double BackoffMultiplier { get; init; } = 2.0;

    /// <summary>Exponential delay: after running this long without failure, the delay starts again from the first.</summary>
    [Id(6)] public TimeSpan ResetBackoffThreshold { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Failure rate: the interval failures are counted in.</summary>
    [Id(7)] public TimeSpan FailureRateInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Never restart.</summary>
    public static RestartStrategy NoRestart { get; } = new() { Kind = RestartStrategyKind.None };

    /// <summary>Restart at most <paramref name="attempts"/> times, waiting <paramref name="delay"/> each time.</summary>
    public static RestartStrategy FixedDelayRestart(int attempts, TimeSpan delay) => new() { Kind = RestartStrategyKind.FixedDelay, MaxAttempts = attempts, Delay = delay };

    /// <summary>Restart with delays from <paramref name="initial"/> growing to <paramref name="max"/>.</summary>
    public static RestartStrategy ExponentialDelayRestart(TimeSpan initial, TimeSpan max, double multiplier = 2.0) =>
        new() { Kind = RestartStrategyKind.ExponentialDelay, InitialBackoff = initial, MaxBackoff = max, BackoffMultiplier = multiplier };

    /// <summary>Restart after <paramref name="delay"/> unless more than <paramref name="maxFailures"/> failures happened within <paramref name="interval"/>.</summary>
    public static RestartStrategy FailureRateRestart(int maxFailures, TimeSpan interval, TimeSpan delay) =>
        new() { Kind = RestartStrategyKind.FailureRate, MaxAttempts = maxFailures, FailureRateInterval = interval, Delay = delay };
}
