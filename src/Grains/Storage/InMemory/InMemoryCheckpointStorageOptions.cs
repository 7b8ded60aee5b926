using Orleans;
using Orleans.Runtime;
using Platform.Checkpointing;

namespace Platform.Storage.InMemory;

/// <summary>Settings of in-memory checkpoint storage (Flink's JobManagerCheckpointStorage): small state and tests only.</summary>
public sealed class InMemoryCheckpointStorageOptions
{
    /// <summary>
    /// The largest state file accepted (default 5 MiB, as Flink's). For the storage named <c>InMemory</c> this is
    /// <c>Platform:InMemoryMaxStateSize</c>.
    /// </summary>
    public int MaxStateSize { get; set; } = InMemoryCheckpointStorage.DefaultMaxStateSize;

    /// <summary>What is wrong with <paramref name="maxStateSize"/> under the setting <paramref name="key"/>, or <c>null</c>.</summary>
    internal static string? Problem(string key, int maxStateSize) =>
        maxStateSize < 1 ? $"{key} is {maxStateSize}; it must be a positive number of bytes." : null;
}

/// <summary>Rejects bad <see cref="InMemoryCheckpointStorageOptions"/> of a named storage at startup.</summary>
internal sealed class InMemoryCheckpointStorageOptionsValidator(InMemoryCheckpointStorageOptions options, string name) : IConfigurationValidator
{
    /// <inheritdoc />
    public void ValidateConfiguration()
    {
        if (InMemoryCheckpointStorageOptions.Problem($"Checkpoint storage '{name}': {nameof(options.MaxStateSize)}", options.MaxStateSize) is { } problem)
        {
            throw new OrleansConfigurationException(problem);
        }
    }
}

/// <summary>A named in-memory checkpoint storage.</summary>
internal sealed class InMemoryCheckpointStorageProvider(int maxStateSize) : ICheckpointStorageProvider
{
    /// <inheritdoc />
    public CheckpointStorageKind Kind => CheckpointStorageKind.InMemory;

    /// <inheritdoc />
    public string? Unavailable => null;

    /// <inheritdoc />
    public string? ResolveDirectory(string? jobDirectory) => null;

    /// <inheritdoc />
    public ICheckpointStorage Create(string? directory) => new InMemoryCheckpointStorage(maxStateSize);
}
