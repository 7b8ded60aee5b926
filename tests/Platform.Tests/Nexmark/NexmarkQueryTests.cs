using System.Globalization;
using Platform.Connectors;
using Platform.Nexmark;
using Platform.Runtime;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Nexmark;

/// <summary>
/// Every Nexmark query as a catalog job on a real cluster, its results written to files through the exactly-once file
/// sink with checkpoints every 200 ms, checked line by line against <see cref="NexmarkReference"/> (the queries
/// computed from the whole input at once). 20,000 events at 1,000 per second of event time: 20 s, so the windowed
/// queries see several windows.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class NexmarkQueryTests(ClusterFixture fixture)
{
    private const long Events = 20_000;
    private const long EventRate = 1_000;
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    private static readonly Lazy<string> EventsFile = new(() =>
    {
        var path = Path.Combine(TestData.NewDirectory("nexmark-input"), "events.jsonl");
        NexmarkFiles.WriteJsonLines(path, Events, new NexmarkConfig { EventsPerSecond = EventRate });
        return path;
    });

    private static readonly NexmarkConfig Config = new() { EventsPerSecond = EventRate };

    public static TheoryData<string> Queries => [.. NexmarkQueries.Names];

    public static TheoryData<string> StatefulQueries => ["q3", "q4", "q5", "q7", "q8"];

    [Theory]
    [MemberData(nameof(Queries))]
    public async Task A_query_over_a_json_lines_file_on_the_heap_writes_exactly_the_reference_result(string query)
    {
        var output = await RunAsync(query, new Dictionary<string, string> { ["input"] = EventsFile.Value, ["state-backend"] = "heap" });
        AssertSameLines(query, NexmarkReference.ExpectedLines(query, NexmarkFiles.ReadJsonLines(EventsFile.Value)), output);
    }

    [Theory]
    [MemberData(nameof(StatefulQueries))]
    public async Task A_stateful_query_over_generated_events_on_RocksDB_writes_exactly_the_reference_result(string query)
    {
        var output = await RunAsync(query, new Dictionary<string, string> { ["events"] = Events.ToString(CultureInfo.InvariantCulture), ["state-backend"] = "rocksdb" });
        var generated = Enumerable.Range(0, (int)Events).Select(n => NexmarkGenerator.Generate(n, Config));
        AssertSameLines(query, NexmarkReference.ExpectedLines(query, generated), output);
    }

    [Theory]
    [InlineData("heap")]
    [InlineData("rocksdb")]
    public async Task Q4_at_Nexmarks_event_rate_counts_the_bids_that_arrive_before_their_auction_in_the_same_millisecond(string backend)
    {
        // 10,000 events per millisecond: bids and their auctions share milliseconds and come from different source
        // subtasks, so many bids arrive before their auction and still count (BETWEEN includes the auction's time).
        const long rate = 10_000_000;
        var output = await RunAsync("q4", new Dictionary<string, string> { ["events"] = "60000", ["state-backend"] = backend }, rate);
        var generated = Enumerable.Range(0, 60_000).Select(n => NexmarkGenerator.Generate(n, new NexmarkConfig { EventsPerSecond = rate }));
        AssertSameLines("q4", NexmarkReference.ExpectedLines("q4", generated), output);
    }

    [Fact]
    public async Task A_bad_state_backend_argument_is_refused_naming_it_and_what_to_use()
    {
        var error = await Assert.ThrowsAsync<Platform.Catalog.JobArgumentException>(() =>
            fixture.Platform.RunAsync("nexmark-q0", new Dictionary<string, string> { ["state-backend"] = "disk" }));
        Assert.Contains("state-backend 'disk'", error.Message, StringComparison.Ordinal);
        Assert.Contains("'heap' or 'rocksdb'", error.Message, StringComparison.Ordinal);
    }

    private async Task<List<string>> RunAsync(string query, Dictionary<string, string> arguments, long eventRate = EventRate)
    {
        var output = TestData.NewDirectory($"nexmark-{query}");
        arguments["output"] = output;
        arguments["event-rate"] = eventRate.ToString(CultureInfo.InvariantCulture);
        arguments["checkpoint-interval"] = "200ms";
        var jobId = await fixture.Platform.RunAsync($"nexmark-{query}", arguments);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        return [.. FileSink.CommittedFiles(output).SelectMany(File.ReadLines)];
    }

    private static void AssertSameLines(string query, IEnumerable<string> expected, List<string> output)
    {
        var want = expected.Order(StringComparer.Ordinal).ToList();
        var got = NexmarkReference.FinalView(query, output).Order(StringComparer.Ordinal).ToList();

        // Every query has results on this input, so an empty output cannot pass for a correct one.
        Assert.NotEmpty(want);
        Assert.Equal(want, got);
    }
}
