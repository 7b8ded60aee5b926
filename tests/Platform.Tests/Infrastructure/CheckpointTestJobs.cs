using System.Collections.Concurrent;
using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Functions;
using Platform.Graph;
using Platform.Samples;
using Platform.State;

namespace Platform.Tests.Infrastructure;

/// <summary>Generates words deterministically: record s is word <c>mix(s) mod Words</c>.</summary>
[GenerateSerializer]
public sealed class WordGenerator : GeneratorSource<string>
{
    [Id(0)] public int Words { get; set; } = 200;

    public static string WordAt(long sequence, int words) => $"w{(int)(((ulong)sequence * 0x9E3779B97F4A7C15UL) >> 40) % words}";

    public override string Generate(long sequence) => WordAt(sequence, Words);
}

/// <summary>Switches tests use to make a job's operator throw on demand (test clusters run in this process).</summary>
public static class FailureSwitch
{
    private static readonly ConcurrentDictionary<string, int> Armed = new();

    /// <summary>Makes the next record seen by a <see cref="FailOnDemand{T}"/> of the job throw (once).</summary>
    public static void Arm(string jobId) => Armed[jobId] = 1;

    public static bool TryFire(string jobId) => Armed.TryRemove(jobId, out _);
}

/// <summary>Gates tests use to hold a function's <c>Open</c> (test clusters run in this process), so that a subtask stays initializing.</summary>
public static class OpenGate
{
    private static readonly ConcurrentDictionary<string, ManualResetEventSlim> Gates = new();

    /// <summary>A new closed gate.</summary>
    public static string Create()
    {
        var id = Guid.NewGuid().ToString("N");
        Gates[id] = new ManualResetEventSlim(false);
        return id;
    }

    /// <summary>Opens the gate: every function waiting on it goes on.</summary>
    public static void Release(string id) => Gates[id].Set();

    /// <summary>Waits until the gate opens (at most a minute, so that a broken test cannot hang a silo thread forever).</summary>
    public static void Wait(string id)
    {
        if (!Gates[id].Wait(TimeSpan.FromMinutes(1)))
        {
            throw new TimeoutException($"Open gate {id} was never released.");
        }
    }
}

/// <summary>Sums per key like <see cref="SumPerKey"/>, but its <c>Open</c> waits for an <see cref="OpenGate"/>.</summary>
[GenerateSerializer]
public sealed class GatedSumPerKey : KeyedProcessFunction<long, long, KeyValuePair<long, long>>
{
    [Id(0)] public string Gate { get; set; } = "";

    [NonSerialized] private IValueState<long>? _sum;

    public override void Open(IRuntimeContext context)
    {
        OpenGate.Wait(Gate);
        _sum = context.GetState(new ValueStateDescriptor<long>("sum"));
    }

    public override void ProcessElement(long value, IKeyedContext<long> context, ICollector<KeyValuePair<long, long>> output)
    {
        var sum = _sum!.Value + value;
        _sum.Update(sum);
        output.Collect(new KeyValuePair<long, long>(context.CurrentKey, sum));
    }
}

/// <summary>Passes records through, and throws once when its job's <see cref="FailureSwitch"/> is armed.</summary>
[GenerateSerializer]
public sealed class FailOnDemand<T> : IMapFunction<T, T>, IRichFunction
{
    [NonSerialized] private string? _jobId;

    public void Open(IRuntimeContext context) => _jobId = context.JobId;

    public void Close()
    {
    }

    public T Map(T value) => FailureSwitch.TryFire(_jobId!)
        ? throw new InvalidOperationException("injected failure")
        : value;
}

public static class CheckpointTestJobs
{
    public const string CountsSink = "counts";

    /// <summary>Generated words → fail on demand → KeyBy → running count → collect; the ground truth is <see cref="ExpectedCounts"/>.</summary>
    public static StreamJobBuilder WordCount(long records, int words, int parallelism, double ratePerSubtask, CheckpointingSettings checkpointing, RestartStrategy? restart = null)
    {
        var job = new StreamJobBuilder("checkpointed-word-count")
        {
            DefaultParallelism = parallelism,
            Checkpointing = checkpointing,
            RestartStrategy = restart ?? RestartStrategy.FixedDelayRestart(20, TimeSpan.FromMilliseconds(100)),
        };
        job.AddSource(new WordGenerator { Count = records, Words = words, RecordsPerSecondPerSubtask = ratePerSubtask }, "words").Uid("words")
            .Map(new FailOnDemand<string>(), "fail-on-demand").Uid("fail-on-demand")
            .KeyBy(new WordKey())
            .Process(new CountWords(), "count").Uid("count")
            .SinkTo(new CollectSink<WordCount>(), "collect").Uid(CountsSink);
        return job;
    }

    public static Dictionary<string, long> ExpectedCounts(long records, int words) =>
        Enumerable.Range(0, (int)records).GroupBy(s => WordGenerator.WordAt(s, words)).ToDictionary(g => g.Key, g => (long)g.Count());
}
