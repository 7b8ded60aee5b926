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

    /// <summary>
    /// How often a job manager checks that every deployed subtask of its running attempt is still there (default 5 s;
    /// Flink's <c>heartbeat.interval</c>). A subtask whose activation was lost with its silo, and re-activated empty,
    /// answers that it is not deployed; the attempt then fails over even when no membership notification reached the
    /// job manager, which a job whose other subtasks are idle would otherwise never notice.
    /// </summary>
    public TimeSpan TaskHeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a subtask may take to answer a heartbeat before its attempt fails over (default 30 s; Flink's
    /// <c>heartbeat.timeout</c>). Its turns are short (the subtask's loop runs outside them), so a subtask that does
    /// not answer within this is lost or stuck.
    /// </summary>
    public TimeSpan TaskHeartbeatTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Where job managers, checkpoint coordinators and stream subscriptions keep their state (default
    /// <c>data/state</c>, relative to the silo's working directory). Every silo of a cluster must see the same
    /// directory (local disk on one machine, a shared mount across machines).
    /// </summary>
    public string StateDirectory { get; set; } = Path.Combine("data", "state");

    /// <summary>The default root of file-system checkpoint storage (default <c>data/checkpoints</c>); jobs may set their own.</summary>
    public string CheckpointDirectory { get; set; } = Path.Combine("data", "checkpoints");

    /// <summary>
    /// The root under which savepoints are written (default <c>data/savepoints</c>); a savepoint's target must lie under
    /// it, and a job can resume only from a savepoint under it or a checkpoint under a checkpoint directory.
    /// </summary>
    public string SavepointDirectory { get; set; } = Path.Combine("data", "savepoints");

    /// <summary>
    /// The checkpoint storage of jobs that do not choose one (default file system): <c>FileSystem</c>, <c>InMemory</c>, or
    /// <c>AzureBlob</c> (configured in <see cref="AzureBlob"/>). In configuration, either this key or the Orleans-style
    /// provider key <c>Platform:CheckpointStorage:ProviderType</c>, which wins.
    /// </summary>
    public Checkpointing.CheckpointStorageKind DefaultCheckpointStorage { get; set; } = Checkpointing.CheckpointStorageKind.FileSystem;

    /// <summary>The checkpoint storage provider section (<c>Platform:CheckpointStorage</c>), read the way Orleans reads its providers.</summary>
    public CheckpointStorageProviderOptions CheckpointStorage { get; set; } = new();

    /// <summary>
    /// Where savepoints go when a request names no target (Flink's <c>state.savepoints.dir</c>): <c>FileSystem</c> (default,
    /// under <see cref="SavepointDirectory"/>) or <c>AzureBlob</c> (under <c>{container URL}/{AzureBlob.SavepointPrefix}</c> of
    /// the account in <see cref="AzureBlob"/>). Independent of <see cref="DefaultCheckpointStorage"/>; a request may still
    /// name a directory or a blob URL as its target.
    /// </summary>
    public Checkpointing.CheckpointStorageKind SavepointStorage { get; set; } = Checkpointing.CheckpointStorageKind.FileSystem;

    /// <summary>
    /// The state backend of jobs that do not choose one (default heap). In configuration, either this key or the
    /// Orleans-style provider key <c>Platform:StateBackend:ProviderType</c> (<c>Heap</c> or <c>RocksDb</c>), which wins.
    /// </summary>
    public State.StateBackendKind DefaultStateBackend { get; set; } = State.StateBackendKind.Heap;

    /// <summary>The state backend provider section (<c>Platform:StateBackend</c>), read the way Orleans reads its providers.</summary>
    public StateBackendProviderOptions StateBackend { get; set; } = new();

    /// <summary>
    /// Settings of the RocksDB state backend (section <c>Platform:RocksDb</c>). Its local directory defaults to
    /// <c>data/rocksdb</c>; each subtask's instance works in its own subdirectory, deleted when the subtask ends.
    /// </summary>
    public State.RocksDb.RocksDbStateOptions RocksDb { get; set; } = new() { LocalDirectory = Path.Combine("data", "rocksdb") };

    /// <summary>Settings of Azure Blob checkpoint storage (section <c>Platform:AzureBlob</c>), used by jobs whose storage is <c>AzureBlob</c>.</summary>
    public Storage.AzureBlob.AzureBlobStorageOptions AzureBlob { get; set; } = new();

    /// <summary>The largest state file in-memory checkpoint storage accepts (default 5 MiB, as Flink's).</summary>
    public int InMemoryMaxStateSize { get; set; } = Storage.InMemory.InMemoryCheckpointStorage.DefaultMaxStateSize;

    /// <summary>
    /// How many recent checkpoints' statistics each job keeps, durably with its coordinator (Flink's
    /// <c>web.checkpoints.history</c>; default 20, from 1 to 1,000).
    /// </summary>
    public int CheckpointHistorySize { get; set; } = DefaultCheckpointHistorySize;

    /// <summary>
    /// The directories jobs' file sources and sinks (and dead-letter directories) may read and write, symbolic links
    /// resolved; empty (the default) means the silo's working directory. A job naming a path outside them is refused at
    /// submission, naming the path.
    /// </summary>
    public List<string> DataRoots { get; set; } = [];

    /// <summary>Lets jobs read and write any path the silo can (no <see cref="DataRoots"/> confinement). Default false.</summary>
    public bool AllowAnyDataPath { get; set; }

    /// <summary>The default of <see cref="CheckpointHistorySize"/>.</summary>
    public const int DefaultCheckpointHistorySize = 20;
}

/// <summary>The <c>Platform:StateBackend</c> section: which registered provider is the silo's default state backend.</summary>
public sealed class StateBackendProviderOptions
{
    /// <summary>The provider's registered name (<c>Heap</c> or <c>RocksDb</c>, or one an assembly registers); empty keeps <see cref="StreamingPlatformOptions.DefaultStateBackend"/>.</summary>
    public string? ProviderType { get; set; }
}

/// <summary>The <c>Platform:CheckpointStorage</c> section: which registered provider is the silo's default checkpoint storage.</summary>
public sealed class CheckpointStorageProviderOptions
{
    /// <summary>
    /// The provider's registered name (<c>FileSystem</c>, <c>InMemory</c> or <c>AzureBlob</c>, or one an assembly
    /// registers); empty keeps <see cref="StreamingPlatformOptions.DefaultCheckpointStorage"/>. The storages keep their
    /// settings in <c>Platform:CheckpointDirectory</c>, <c>Platform:InMemoryMaxStateSize</c> and <c>Platform:AzureBlob</c>.
    /// </summary>
    public string? ProviderType { get; set; }
}

/// <summary>
/// Rejects bad <see cref="StreamingPlatformOptions"/> at startup, naming each bad setting, all of them at once. It only
/// reads: directories are checked, never created (they are created when first used).
/// </summary>
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

        if (options.CheckpointHistorySize is < 1 or > 1_000)
        {
            failures.Add($"{StreamingPlatformOptions.SectionName}:{nameof(options.CheckpointHistorySize)} is {options.CheckpointHistorySize}; it must be between 1 and 1,000 checkpoints (default {StreamingPlatformOptions.DefaultCheckpointHistorySize}).");
        }

        if (options.TaskHeartbeatInterval < TimeSpan.FromMilliseconds(100) || options.TaskHeartbeatInterval > TimeSpan.FromMinutes(10))
        {
            failures.Add($"{StreamingPlatformOptions.SectionName}:{nameof(options.TaskHeartbeatInterval)} is {options.TaskHeartbeatInterval}; it must be between 00:00:00.1 and 00:10:00 (default 00:00:05).");
        }

        if (options.TaskHeartbeatTimeout < TimeSpan.FromSeconds(1) || options.TaskHeartbeatTimeout > TimeSpan.FromMinutes(30))
        {
            failures.Add($"{StreamingPlatformOptions.SectionName}:{nameof(options.TaskHeartbeatTimeout)} is {options.TaskHeartbeatTimeout}; it must be between 00:00:01 and 00:30:00 (default 00:00:30).");
        }

        foreach (var (setting, path) in new[] { (nameof(options.StateDirectory), options.StateDirectory), (nameof(options.CheckpointDirectory), options.CheckpointDirectory), (nameof(options.SavepointDirectory), options.SavepointDirectory) })
        {
            if (Storage.FileSystem.DirectorySetting.Problem($"{StreamingPlatformOptions.SectionName}:{setting}", path) is { } problem)
            {
                failures.Add(problem);
            }
        }

        try
        {
            options.RocksDb.Validate($"{StreamingPlatformOptions.SectionName}:{nameof(options.RocksDb)}:");
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            failures.Add(ex.Message);
        }

        if (options.StateBackend.ProviderType is { Length: > 0 } providerType && !StateBackendProviders.Registered().ContainsKey(providerType))
        {
            failures.Add(
                $"{StreamingPlatformOptions.SectionName}:{StateBackendProviders.SectionName}:ProviderType is '{providerType}', which no loaded assembly registers; " +
                $"use one of: {string.Join(", ", StateBackendProviders.Registered().Keys.Order())}.");
        }

        if (!Enum.IsDefined(options.DefaultStateBackend))
        {
            failures.Add($"{StreamingPlatformOptions.SectionName}:{nameof(options.DefaultStateBackend)} is {options.DefaultStateBackend}; use Heap or RocksDb.");
        }

        if (!Enum.IsDefined(options.DefaultCheckpointStorage))
        {
            failures.Add($"{StreamingPlatformOptions.SectionName}:{nameof(options.DefaultCheckpointStorage)} is {options.DefaultCheckpointStorage}; use FileSystem, InMemory or AzureBlob.");
        }

        if (options.SavepointStorage is not (Checkpointing.CheckpointStorageKind.FileSystem or Checkpointing.CheckpointStorageKind.AzureBlob))
        {
            failures.Add($"{StreamingPlatformOptions.SectionName}:{nameof(options.SavepointStorage)} is {options.SavepointStorage}; use FileSystem or AzureBlob (a savepoint must outlive the job, so InMemory cannot hold one).");
        }

        var checkpointProviderKey = $"{StreamingPlatformOptions.SectionName}:{CheckpointStorageProviders.SectionName}:ProviderType";
        if (options.CheckpointStorage.ProviderType is { Length: > 0 } checkpointProvider && !CheckpointStorageProviders.Registered().ContainsKey(checkpointProvider))
        {
            failures.Add(
                $"{checkpointProviderKey} is '{checkpointProvider}', which no loaded assembly registers; " +
                $"use one of: {string.Join(", ", CheckpointStorageProviders.Registered().Keys.Order())}.");
        }

        // The provider key wins over the plain one (its builder sets the default when the silo is built; the host
        // checks the bound section before that).
        var requiredBy = string.Equals(options.CheckpointStorage.ProviderType, nameof(Checkpointing.CheckpointStorageKind.AzureBlob), StringComparison.OrdinalIgnoreCase)
            ? checkpointProviderKey
            : options.CheckpointStorage.ProviderType is not { Length: > 0 } && options.DefaultCheckpointStorage == Checkpointing.CheckpointStorageKind.AzureBlob
            ? $"{StreamingPlatformOptions.SectionName}:{nameof(options.DefaultCheckpointStorage)}"
            : options.SavepointStorage == Checkpointing.CheckpointStorageKind.AzureBlob
                ? $"{StreamingPlatformOptions.SectionName}:{nameof(options.SavepointStorage)}"
                : null;
        failures.AddRange(options.AzureBlob.Validate(requiredBy));

        if (Storage.InMemory.InMemoryCheckpointStorageOptions.Problem($"{StreamingPlatformOptions.SectionName}:{nameof(options.InMemoryMaxStateSize)}", options.InMemoryMaxStateSize) is { } inMemoryProblem)
        {
            failures.Add(inMemoryProblem);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
