using Microsoft.Extensions.Options;

namespace Platform.Hosting;

/// <summary>Silo-wide settings of the streaming runtime (configuration section <c>Platform</c>).</summary>
public sealed class StreamingPlatformOptions
{
    /// <summary>The configuration section these options bind to.</summary>
    public const string SectionName = "Platform";

    /// <summary>
    /// Records per batch on a channel (default 1,000). Larger batches amortize the cost of a grain call;
    /// smaller ones lower latency and memory per channel.
    /// </summary>
    public int BatchSize { get; set; } = 1000;

    /// <summary>
    /// Batches a sender may have in flight beyond what its receiver consumed, per channel (default 8). Memory per
    /// channel is bounded by about <c>ChannelWindow × BatchSize</c> records; a full window backpressures the sender.
    /// </summary>
    public int ChannelWindow { get; set; } = 8;
}

/// <summary>Rejects bad <see cref="StreamingPlatformOptions"/> at startup, naming the setting.</summary>
public sealed class StreamingPlatformOptionsValidator : IValidateOptions<StreamingPlatformOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, StreamingPlatformOptions options)
    {
        var failures = new List<string>();
        if (options.BatchSize is < 1 or > 1_000_000)
        {
            failures.Add($"{StreamingPlatformOptions.SectionName}:{nameof(options.BatchSize)} is {options.BatchSize}; it must be between 1 and 1,000,000 records.");
        }

        if (options.ChannelWindow is < 1 or > 1024)
        {
            failures.Add($"{StreamingPlatformOptions.SectionName}:{nameof(options.ChannelWindow)} is {options.ChannelWindow}; it must be between 1 and 1024 batches.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
