using Platform.Catalog;
using Platform.Checkpointing;
using Platform.State;

namespace Platform.Nexmark;

/// <summary>
/// The Nexmark queries as catalog jobs (<c>platform run nexmark-q5 --arg events=10000000 --arg output=/data/q5</c>);
/// a silo registers them with <c>siloBuilder.AddJobs(NexmarkJobs.All)</c>.
/// </summary>
public static class NexmarkJobs
{
    /// <summary>One catalog job per query of <see cref="NexmarkQueries.Names"/>, named <c>nexmark-q0</c> ... <c>nexmark-q8</c>.</summary>
    public static IReadOnlyList<JobDefinition> All { get; } = [.. NexmarkQueries.Names.Select(Definition)];

    /// <summary>The catalog job of <paramref name="query"/>.</summary>
    public static JobDefinition Definition(string query) => new()
    {
        Name = $"nexmark-{query}",
        Description = NexmarkQueries.Describe(query),
        Parallelism = 2,
        Arguments =
        [
            new() { Name = "events", Type = JobArgumentType.Long, Default = "1000000", Minimum = 1, Description = "How many events to generate (when 'input' is not set)" },
            new() { Name = "event-rate", Type = JobArgumentType.Long, Default = "10000000", Minimum = 1, Description = "Events per second of event time: event n happens n / event-rate seconds after the first (Nexmark's first-event rate)" },
            new() { Name = "rate", Type = JobArgumentType.Double, Default = "0", Minimum = 0, Description = "Generated events per second per source subtask; 0 for as fast as possible" },
            new() { Name = "input", Type = JobArgumentType.Path, Description = "A JSON-lines file of Nexmark events to read instead of generating them" },
            new() { Name = "output", Type = JobArgumentType.Path, Description = "A directory for the results (one JSON object per line, committed exactly once at each checkpoint); discarded when not set" },
            new() { Name = "state-backend", Type = JobArgumentType.String, Description = "Where keyed state lives: 'heap' or 'rocksdb'; the silo's default when not set" },
            new() { Name = "checkpoint-interval", Type = JobArgumentType.Duration, Description = "Take an exactly-once checkpoint this often; when not set, checkpoints are taken only on request" },
        ],
        Build = args => NexmarkQueries.Build(new NexmarkJobSettings
        {
            Query = query,
            Events = args.GetInt64("events"),
            Config = new NexmarkConfig { EventsPerSecond = args.GetInt64("event-rate") },
            EventsPerSecondPerSubtask = args.GetDouble("rate"),
            InputFile = args.GetPathOrNull("input"),
            OutputDirectory = args.GetPathOrNull("output"),
            Checkpointing = new CheckpointingSettings { Interval = args.GetDurationOrNull("checkpoint-interval") },
            StateBackend = args.IsSet("state-backend") ? ParseBackend(args.GetString("state-backend")) : null,
        }),
    };

    private static StateBackendKind ParseBackend(string value) => value.Trim().ToLowerInvariant() switch
    {
        "heap" => StateBackendKind.Heap,
        "rocksdb" => StateBackendKind.RocksDb,
        _ => throw new ArgumentException($"state-backend '{value}' is not a state backend: use 'heap' or 'rocksdb'."),
    };
}
