using Platform.Connectors;
using Platform.Functions;
using Platform.Graph;
using Platform.State;

namespace Platform.Samples;

/// <summary>A word and how often it occurred so far.</summary>
[GenerateSerializer, Immutable, Alias("samples.WordCount")]
public sealed record WordCount([property: Id(0)] string Word, [property: Id(1)] long Count)
{
    /// <inheritdoc />
    public override string ToString() => $"{Word}\t{Count}";
}

/// <summary>Splits a line into lower-case words (letters, digits and apostrophes inside words).</summary>
[GenerateSerializer, Alias("samples.Tokenizer")]
public sealed class Tokenizer : IFlatMapFunction<string, string>
{
    /// <summary>Splits <paramref name="line"/> the same way the job does; used by tests to compute the expected counts.</summary>
    public static IEnumerable<string> Split(string line)
    {
        var start = -1;
        for (var i = 0; i <= line.Length; i++)
        {
            var isWordChar = i < line.Length && (char.IsLetterOrDigit(line[i]) || (line[i] == '\'' && start >= 0));
            if (isWordChar)
            {
                if (start < 0)
                {
                    start = i;
                }
            }
            else if (start >= 0)
            {
                var word = line[start..i].Trim('\'');
                if (word.Length > 0)
                {
                    yield return word.ToLowerInvariant();
                }

                start = -1;
            }
        }
    }

    /// <inheritdoc />
    public void FlatMap(string value, ICollector<string> output)
    {
        foreach (var word in Split(value))
        {
            output.Collect(word);
        }
    }
}

/// <summary>Keys a word by itself.</summary>
[GenerateSerializer, Alias("samples.WordKey")]
public sealed class WordKey : IKeySelector<string, string>
{
    /// <inheritdoc />
    public string GetKey(string value) => value;
}

/// <summary>Counts each word in a <see cref="IValueState{T}"/> and emits the running count on every occurrence.</summary>
[GenerateSerializer, Alias("samples.CountWords")]
public sealed class CountWords : KeyedProcessFunction<string, string, WordCount>
{
    [NonSerialized] private IValueState<long>? _count;

    /// <inheritdoc />
    public override void Open(IRuntimeContext context) => _count = context.GetState(new ValueStateDescriptor<long>("count"));

    /// <inheritdoc />
    public override void ProcessElement(string value, IKeyedContext<string> context, ICollector<WordCount> output)
    {
        var count = _count!.Value + 1;
        _count.Update(count);
        output.Collect(new WordCount(value, count));
    }
}

/// <summary>
/// An endless (or bounded) stream of words, deterministic so that a run can be checked: record s is
/// <c>w{mix(s) mod Words}</c>. Rate-limited per subtask, it stands in for a live source in demos and failure tests.
/// </summary>
[GenerateSerializer, Alias("samples.GeneratedWords")]
public sealed class GeneratedWords : GeneratorSource<string>
{
    /// <summary>How many distinct words.</summary>
    [Id(0)] public int Words { get; set; } = 1000;

    /// <summary>The word at sequence number <paramref name="sequence"/>.</summary>
    public static string WordAt(long sequence, int words) => $"w{(int)(((ulong)sequence * 0x9E3779B97F4A7C15UL) >> 40) % words}";

    /// <summary>The true count of each word among the first <paramref name="records"/> records.</summary>
    public static Dictionary<string, long> CountsOf(long records, int words) =>
        Enumerable.Range(0, checked((int)records)).GroupBy(s => WordAt(s, words)).ToDictionary(g => g.Key, g => (long)g.Count());

    /// <inheritdoc />
    public override string Generate(long sequence) => WordAt(sequence, Words);
}

/// <summary>Builds the word-count job.</summary>
public static class WordCountJob
{
    /// <summary>The uid of the sink that collects the running counts.</summary>
    public const string CollectSinkUid = "word-counts";

    /// <summary>
    /// Lines of <paramref name="inputPath"/> → words → KeyBy(word) → running count per word → a collect sink (readable
    /// with <c>GetCollectedAsync&lt;WordCount&gt;</c>) and, when <paramref name="outputDirectory"/> is set, part files
    /// written exactly once by a <see cref="FileSink{T}"/> (read them with <see cref="FileSink.ReadCommittedLines"/>).
    /// </summary>
    public static StreamJobBuilder Build(string inputPath, int parallelism, string? outputDirectory = null, bool collect = true)
    {
        var job = new StreamJobBuilder("word-count") { DefaultParallelism = parallelism };
        var counts = job.AddSource(new TextFileSource(inputPath), "lines").Uid("lines")
            .FlatMap(new Tokenizer(), "tokenize").Uid("tokenize")
            .KeyBy(new WordKey())
            .Process(new CountWords(), "count").Uid("count");
        if (collect)
        {
            counts.SinkTo(new CollectSink<WordCount>(), "collect").Uid(CollectSinkUid);
        }

        if (outputDirectory is not null)
        {
            counts.SinkTo(new FileSink<WordCount>(outputDirectory), "write-counts").Uid("write-counts");
        }

        return job;
    }

    /// <summary>Generated words → KeyBy(word) → running count per word → a collect sink, with the given checkpointing.</summary>
    public static StreamJobBuilder BuildGenerated(long records, int words, int parallelism, double recordsPerSecondPerSubtask, Checkpointing.CheckpointingSettings? checkpointing, Checkpointing.RestartStrategy? restart = null)
    {
        var job = new StreamJobBuilder("generated-word-count") { DefaultParallelism = parallelism, Checkpointing = checkpointing, RestartStrategy = restart };
        job.AddSource(new GeneratedWords { Count = records, Words = words, RecordsPerSecondPerSubtask = recordsPerSecondPerSubtask }, "words").Uid("words")
            .KeyBy(new WordKey())
            .Process(new CountWords(), "count").Uid("count")
            .SinkTo(new CollectSink<WordCount>(), "collect").Uid(CollectSinkUid);
        return job;
    }

    /// <summary>The final count of each word, from the running counts a job emitted (the highest per word).</summary>
    public static Dictionary<string, long> FinalCounts(IEnumerable<WordCount> runningCounts) =>
        runningCounts.GroupBy(c => c.Word).ToDictionary(g => g.Key, g => g.Max(c => c.Count));
}
