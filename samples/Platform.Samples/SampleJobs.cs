using Platform.Catalog;
using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Graph;
using Platform.Samples.LargeState;

namespace Platform.Samples;

/// <summary>
/// The demo jobs as catalog entries, so that they can be started by name (<c>platform run word-count</c>). A silo
/// registers them with <c>siloBuilder.AddJobs(SampleJobs.All)</c>. Every job has checkpointing set up, periodic when
/// <c>checkpoint-interval</c> is given, so that <c>platform checkpoint</c> works on any of them.
/// </summary>
public static class SampleJobs
{
    private static readonly string[] Countries = ["DE", "FR", "NL", "PL", "SE", "US", "JP"];

    private static readonly JobArgument CheckpointInterval = new()
    {
        Name = "checkpoint-interval",
        Type = JobArgumentType.Duration,
        Description = "Take a checkpoint this often; when not set, checkpoints are taken only on request (platform checkpoint)",
    };

    /// <summary>Word count over a text file (<see cref="WordCountJob.Build"/>).</summary>
    public static JobDefinition WordCount { get; } = new()
    {
        Name = "word-count",
        Description = "Counts the words of a text file: lines -> words -> KeyBy(word) -> running count per word.",
        Parallelism = 2,
        Arguments =
        [
            new() { Name = "input", Type = JobArgumentType.Path, Default = "samples/wordcount/input.txt", Description = "The text file to read, as the silo sees it" },
            new() { Name = "output", Type = JobArgumentType.Path, Description = "A directory for the part files (word, tab, running count), committed exactly once; not written when not set" },
            new() { Name = "collect", Type = JobArgumentType.Bool, Default = "true", Description = "Also keep the running counts in the cluster (PlatformClient.GetCollectedAsync)" },
            CheckpointInterval,
        ],
        Build = args => WithCheckpoints(
            WordCountJob.Build(args.GetPath("input"), parallelism: 1, args.GetPathOrNull("output"), args.GetBoolean("collect")),
            args),
    };

    /// <summary>An endless (or bounded) word count over generated words, rate-limited: a stand-in for a live source.</summary>
    public static JobDefinition GeneratedWordCount { get; } = new()
    {
        Name = "generated-word-count",
        Description = "Counts generated words (w0, w1, ...) as they arrive, endlessly unless 'records' is set; the counts go to part files or nowhere.",
        Parallelism = 2,
        Arguments =
        [
            new() { Name = "records", Type = JobArgumentType.Long, Minimum = 1, Description = "How many words to generate in all; endless when not set" },
            new() { Name = "words", Type = JobArgumentType.Int, Default = "1000", Minimum = 1, Description = "How many distinct words" },
            new() { Name = "rate", Type = JobArgumentType.Double, Default = "1000", Minimum = 0, Description = "Words per second per source subtask; 0 for as fast as possible" },
            new() { Name = "output", Type = JobArgumentType.Path, Description = "A directory for the part files (word, tab, running count), committed exactly once at each completed checkpoint; discarded when not set" },
            new() { Name = "hold-at", Type = JobArgumentType.Long, Minimum = 0, Description = "Each source subtask waits at this sequence number until 'release-file' exists (for recovery tests and demos)" },
            new() { Name = "release-file", Type = JobArgumentType.Path, Description = "The file that releases the sources held at 'hold-at'" },
            CheckpointInterval with { Default = "10s" },
        ],
        Build = args =>
        {
            var job = new StreamJobBuilder("generated-word-count");
            ISourceFunction<string> words = new GeneratedWords { Count = args.GetInt64OrNull("records"), Words = args.GetInt32("words"), RecordsPerSecondPerSubtask = args.GetDouble("rate") };
            if (args.GetInt64OrNull("hold-at") is { } holdAt)
            {
                words = new HeldSource<string>
                {
                    Inner = words,
                    HoldAt = holdAt,
                    ReleaseFile = args.GetPathOrNull("release-file") ?? throw new ArgumentException("'hold-at' needs 'release-file': the file that releases the held sources."),
                };
            }

            var counts = job.AddSource(words, "words").Uid("words")
                .KeyBy(new WordKey())
                .Process(new CountWords(), "count").Uid("count");
            if (args.GetPathOrNull("output") is { } output)
            {
                counts.SinkTo(new FileSink<WordCount>(output), "write-counts").Uid("write-counts");
            }
            else
            {
                counts.SinkTo(new DiscardingSink<WordCount>(), "discard").Uid("discard");
            }

            return WithCheckpoints(job, args);
        },
    };

    /// <summary>Generated click events enriched with their user's profile (<see cref="EnrichmentJob.Build"/>).</summary>
    public static JobDefinition Enrichment { get; } = new()
    {
        Name = "enrichment",
        Description = "Enriches generated click events with their user's profile (a keyed two-input function); the results are collected in the cluster.",
        Parallelism = 2,
        Arguments =
        [
            new() { Name = "events", Type = JobArgumentType.Long, Default = "100000", Minimum = 1, Description = "How many click events" },
            new() { Name = "users", Type = JobArgumentType.Int, Default = "100", Minimum = 1, Description = "How many users (one profile each)" },
            CheckpointInterval,
        ],
        Build = args =>
        {
            var users = args.GetInt32("users");
            var profiles = Enumerable.Range(0, users).Select(u => new Profile(u, Countries[u % Countries.Length], Version: 1)).ToList();
            return WithCheckpoints(EnrichmentJob.Build(args.GetInt64("events"), users, profiles, parallelism: 1), args);
        },
    };

    /// <summary>A job with as much keyed state as asked for, on RocksDB (<see cref="LargeStateJob.Build"/>).</summary>
    public static JobDefinition LargeState { get; } = new()
    {
        Name = "large-state",
        Description = "Keeps a payload per key in RocksDB state (keys x payload-size bytes), visits every key several times and summarizes them per bucket.",
        Parallelism = 2,
        Arguments =
        [
            new() { Name = "keys", Type = JobArgumentType.Long, Default = "100000", Minimum = 1, Description = "How many distinct keys" },
            new() { Name = "visits", Type = JobArgumentType.Int, Default = "2", Minimum = 1, Description = "How many times each key is visited" },
            new() { Name = "payload-size", Type = JobArgumentType.Int, Default = "1024", Minimum = 1, Description = "The bytes of state per key" },
            new() { Name = "buckets", Type = JobArgumentType.Int, Default = "16", Minimum = 1, Description = "How many buckets the result is summarized in" },
            CheckpointInterval,
        ],
        Build = args => LargeStateJob.Build(new LargeStateJobSettings
        {
            Keys = args.GetInt64("keys"),
            Visits = args.GetInt32("visits"),
            PayloadSize = args.GetInt32("payload-size"),
            Buckets = args.GetInt32("buckets"),
            Checkpointing = new CheckpointingSettings { Interval = args.GetDurationOrNull("checkpoint-interval") },
        }),
    };

    /// <summary>Every demo job, and the Nexmark queries.</summary>
    public static IReadOnlyList<JobDefinition> All { get; } = [WordCount, GeneratedWordCount, Enrichment, LargeState, .. Nexmark.NexmarkJobs.All];

    // Checkpointing is always set up (so that a checkpoint can be triggered by hand); only its interval is optional.
    private static StreamJobBuilder WithCheckpoints(StreamJobBuilder job, JobArguments args)
    {
        job.Checkpointing = new CheckpointingSettings { Interval = args.GetDurationOrNull("checkpoint-interval") };
        return job;
    }
}
