using Microsoft.Extensions.DependencyInjection;
using Platform.Connectors;
using Platform.Nexmark;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Nexmark;

/// <summary>The Nexmark generator follows the nexmark repository's rules, and its JSON-lines files read back exactly.</summary>
public sealed class NexmarkGeneratorTests
{
    private static readonly NexmarkConfig Config = new() { EventsPerSecond = 1_000 };

    [Fact]
    public void Of_every_50_events_1_is_a_person_3_are_auctions_and_46_are_bids_with_ids_from_1000_and_time_from_the_rate()
    {
        var events = Enumerable.Range(0, 50_000).Select(n => NexmarkGenerator.Generate(n, Config)).ToList();
        Assert.Equal(1_000, events.Count(e => e.Type == NexmarkEventType.Person));
        Assert.Equal(3_000, events.Count(e => e.Type == NexmarkEventType.Auction));
        Assert.Equal(46_000, events.Count(e => e.Type == NexmarkEventType.Bid));

        // Ids are consecutive from 1000 in the order of creation; event n happens n ms after the base time at 1,000/s.
        Assert.Equal(Enumerable.Range(1000, 1_000).Select(i => (long)i), events.Where(e => e.Person is not null).Select(e => e.Person!.Id));
        Assert.Equal(Enumerable.Range(1000, 3_000).Select(i => (long)i), events.Where(e => e.Auction is not null).Select(e => e.Auction!.Id));
        Assert.Equal(Enumerable.Range(0, 50_000).Select(n => Config.BaseTime + n), events.Select(e => e.DateTime));

        // Bids go to auctions that exist or are about to (the lead of 10), from people that exist or are about to;
        // hot auctions and bidders take most of them.
        var bids = events.Where(e => e.Bid is not null).Select((e, i) => e.Bid!).ToList();
        Assert.All(bids, b => Assert.InRange(b.Auction, 1000, 1000 + 3_000 + 10));
        Assert.All(bids, b => Assert.InRange(b.Bidder, 1000, 1000 + 1_000 + 10));
        var topAuctionShare = bids.GroupBy(b => b.Auction).Max(g => g.Count()) / (double)bids.Count;
        Assert.True(topAuctionShare > 0.01, $"the most bid-on auction has {topAuctionShare:P2} of the bids: no hot auctions");
        Assert.All(bids, b => Assert.InRange(b.Price, 100, 100_000_000));
        Assert.All(events.Where(e => e.Auction is not null), e => Assert.True(e.Auction!.Expires > e.Auction.DateTime && e.Auction.Category is >= 10 and < 15));
    }

    [Fact]
    public void An_event_depends_on_its_number_only()
    {
        var forward = Enumerable.Range(0, 2_000).Select(n => NexmarkGenerator.Generate(n, Config)).ToList();
        var backward = Enumerable.Range(0, 2_000).Reverse().Select(n => NexmarkGenerator.Generate(n, Config)).Reverse().ToList();
        Assert.Equal(forward, backward);
    }

    [Fact]
    public void A_json_lines_file_reads_back_every_event_and_a_bad_line_is_named()
    {
        var directory = TestData.NewDirectory("nexmark");
        var path = Path.Combine(directory, "events.jsonl");
        NexmarkFiles.WriteJsonLines(path, 5_000, Config);
        Assert.Equal(Enumerable.Range(0, 5_000).Select(n => NexmarkGenerator.Generate(n, Config)), NexmarkFiles.ReadJsonLines(path));

        // Read through the source, split over two subtasks: every event once.
        var read = new List<NexmarkEvent>();
        foreach (var subtask in new[] { 0, 1 })
        {
            using var reader = new NexmarkFileSource { Path = path }.CreateReader(Context(subtask));
            while (reader.TryRead(out var e) == ReadStatus.Record)
            {
                read.Add(e);
            }
        }

        Assert.Equal(5_000, read.Count);
        Assert.Equal(Enumerable.Range(0, 5_000).Select(n => Config.BaseTime + n), read.Select(e => e.DateTime).Order());

        File.AppendAllText(path, "{\"person\":null}\nnot json\n");
        using var bad = new NexmarkFileSource { Path = path }.CreateReader(Context(0, parallelism: 1));
        var error = Assert.Throws<InvalidDataException>(() =>
        {
            while (bad.TryRead(out _) == ReadStatus.Record)
            {
            }
        });
        Assert.Contains(path, error.Message);
        Assert.Contains("exactly one", error.Message);
    }

    private static SourceReaderContext Context(int subtask, int parallelism = 2) => new()
    {
        JobId = "nexmark",
        OperatorName = "nexmark-file",
        SubtaskIndex = subtask,
        Parallelism = parallelism,
        Services = new ServiceCollection().BuildServiceProvider(),
    };
}
