using System.Globalization;
using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Connectors.Postgres;
using Platform.Connectors.Redis;
using Platform.Functions;
using Platform.Graph;
using Platform.State;
using StackExchange.Redis;

namespace Platform.Samples.ExactlyOnce;

/// <summary>An input record of the exactly-once chaos benchmark: a key and the record's sequence number in the whole input.</summary>
[GenerateSerializer, Immutable, Alias("samples.KeyedEvent")]
public sealed record KeyedEvent([property: Id(0)] string Key, [property: Id(1)] long Seq);

/// <summary>One output per input: the key, the input's sequence number, and how many records of the key arrived so far.</summary>
[GenerateSerializer, Immutable, Alias("samples.KeyedRunningCount")]
public sealed record KeyedRunningCount([property: Id(0)] string Key, [property: Id(1)] long Seq, [property: Id(2)] long Count)
{
    /// <summary>Reads a line written by <see cref="ToString"/>.</summary>
    public static KeyedRunningCount Parse(string line)
    {
        var fields = line.Split('\t');
        return fields.Length == 3
            ? new KeyedRunningCount(fields[0], long.Parse(fields[1], CultureInfo.InvariantCulture), long.Parse(fields[2], CultureInfo.InvariantCulture))
            : throw new FormatException($"'{line}' is not key, tab, sequence number, tab, count.");
    }

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Key}\t{Seq}\t{Count}");
}

/// <summary>Reads an entry's fields <c>key</c> and <c>seq</c>.</summary>
[GenerateSerializer, Alias("samples.KeyedEventDeserializer")]
public sealed class KeyedEventDeserializer : IRedisStreamDeserializer<KeyedEvent>
{
    /// <inheritdoc />
    public KeyedEvent Deserialize(string streamKey, StreamEntry entry)
    {
        var key = entry["key"];
        var seq = entry["seq"];
        return key.IsNull || !seq.TryParse(out long sequence)
            ? throw new InvalidDataException("The entry needs a field 'key' and a whole-number field 'seq'.")
            : new KeyedEvent((string)key!, sequence);
    }
}

/// <summary>Keys an event by its key.</summary>
[GenerateSerializer, Alias("samples.KeyedEventKey")]
public sealed class KeyedEventKey : IKeySelector<KeyedEvent, string>
{
    /// <inheritdoc />
    public string GetKey(KeyedEvent value) => value.Key;
}

/// <summary>Counts the events of each key in a <see cref="IValueState{T}"/> and emits the running count for every event.</summary>
[GenerateSerializer, Alias("samples.CountPerKey")]
public sealed class CountPerKey : KeyedProcessFunction<string, KeyedEvent, KeyedRunningCount>
{
    [NonSerialized] private IValueState<long>? _count;

    /// <inheritdoc />
    public override void Open(IRuntimeContext context) => _count = context.GetState(new ValueStateDescriptor<long>("count"));

    /// <inheritdoc />
    public override void ProcessElement(KeyedEvent value, IKeyedContext<string> context, ICollector<KeyedRunningCount> output)
    {
        var count = _count!.Value + 1;
        _count.Update(count);
        output.Collect(new KeyedRunningCount(value.Key, value.Seq, count));
    }
}

/// <summary>Where the keyed count of <see cref="KeyedCountJob"/> writes.</summary>
public enum KeyedCountSinks
{
    /// <summary>A <see cref="FileSink{T}"/> and a <see cref="PostgresSink{T}"/>, both exactly-once.</summary>
    FileAndPostgres = 0,

    /// <summary>A <see cref="DiscardingSink{T}"/> (the baseline of the throughput ratio).</summary>
    Discard = 1,
}

/// <summary>The settings of <see cref="KeyedCountJob.Build"/>.</summary>
public sealed record KeyedCountJobSettings
{
    /// <summary>The job's name.</summary>
    public string Name { get; init; } = "exactly-once-keyed-count";

    /// <summary>The Redis server of the input streams, as the silos see it.</summary>
    public required string RedisConnectionString { get; init; }

    /// <summary>The input streams, one split each.</summary>
    public required IReadOnlyList<string> StreamKeys { get; init; }

    /// <summary>How many entries each stream holds in the end (the source ends there).</summary>
    public required long EntriesPerStream { get; init; }

    /// <summary>Where the output goes.</summary>
    public KeyedCountSinks Sinks { get; init; }

    /// <summary>The file sink's directory (a shared mount for several silos).</summary>
    public string? OutputDirectory { get; init; }

    /// <summary>The PostgreSQL connection string, as the silos see the server.</summary>
    public string? PostgresConnectionString { get; init; }

    /// <summary>The table the PostgreSQL sink appends to: columns <c>key text, seq bigint, count bigint</c>.</summary>
    public string? Table { get; init; }

    /// <summary>The parallelism of every operator.</summary>
    public int Parallelism { get; init; } = 3;

    /// <summary>The checkpoint interval (exactly-once checkpoints).</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The checkpoint directory every silo sees.</summary>
    public required string CheckpointDirectory { get; init; }

    /// <summary>How many restarts the job may take before it fails.</summary>
    public int RestartAttempts { get; init; } = 1_000;
}

/// <summary>
/// The job of the exactly-once chaos benchmark (bench/Platform.Benchmarks/ExactlyOnce): Redis Streams (one split each)
/// → KeyBy(key) → running count per key, one output per input (key, sequence number, count) → a FileSink and a
/// PostgresSink (append), both two-phase-commit sinks, or a DiscardingSink for the baseline.
/// </summary>
public static class KeyedCountJob
{
    /// <summary>Builds the job.</summary>
    public static StreamJobBuilder Build(KeyedCountJobSettings settings)
    {
        var job = new StreamJobBuilder(settings.Name)
        {
            DefaultParallelism = settings.Parallelism,
            Checkpointing = new CheckpointingSettings
            {
                Interval = settings.CheckpointInterval,
                Mode = CheckpointingMode.ExactlyOnce,
                Storage = CheckpointStorageKind.FileSystem,
                Directory = settings.CheckpointDirectory,
            },
            RestartStrategy = RestartStrategy.FixedDelayRestart(settings.RestartAttempts, TimeSpan.FromMilliseconds(200)),
        };
        var source = new RedisStreamSource<KeyedEvent>
        {
            ConnectionString = settings.RedisConnectionString,
            StreamKeys = [.. settings.StreamKeys],
            Deserializer = new KeyedEventDeserializer(),
            Boundedness = RedisStreamBoundedness.EntryCount,
            EntriesPerStream = settings.EntriesPerStream,
        };
        var counts = job.AddSource(source, "redis events").Uid("redis-events")
            .KeyBy(new KeyedEventKey())
            .Process(new CountPerKey(), "count per key").Uid("count-per-key");
        if (settings.Sinks == KeyedCountSinks.Discard)
        {
            counts.SinkTo(new DiscardingSink<KeyedRunningCount>(), "discard").Uid("discard");
            return job;
        }

        counts.SinkTo(new FileSink<KeyedRunningCount>(settings.OutputDirectory ?? throw new ArgumentException("The file sink needs OutputDirectory.", nameof(settings))), "files").Uid("files");
        counts.SinkTo(
            new PostgresSink<KeyedRunningCount>
            {
                ConnectionString = settings.PostgresConnectionString ?? throw new ArgumentException("The PostgreSQL sink needs PostgresConnectionString.", nameof(settings)),
                Table = settings.Table ?? throw new ArgumentException("The PostgreSQL sink needs Table.", nameof(settings)),
                Columns = ["key", "seq", "count"],
                Mode = PostgresSinkMode.Append,
            },
            "postgres").Uid("postgres");
        return job;
    }
}
