using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Functions;
using Platform.Graph;
using Platform.Windowing;

namespace Platform.Nexmark;

/// <summary>Where a Nexmark job reads its events, what it computes, and where its results go.</summary>
public sealed record NexmarkJobSettings
{
    /// <summary>The query: one of <see cref="NexmarkQueries.Names"/>.</summary>
    public required string Query { get; init; }

    /// <summary>How many events the generator produces (when <see cref="InputFile"/> is not set).</summary>
    public long Events { get; init; } = 1_000_000;

    /// <summary>The generator's settings (when <see cref="InputFile"/> is not set).</summary>
    public NexmarkConfig Config { get; init; } = new();

    /// <summary>A JSON-lines file of events to read instead of generating them.</summary>
    public string? InputFile { get; init; }

    /// <summary>Generated events per second per source subtask; 0 for as fast as possible.</summary>
    public double EventsPerSecondPerSubtask { get; init; }

    /// <summary>A directory for the results (part files, one JSON object per line, committed exactly once); discarded when null.</summary>
    public string? OutputDirectory { get; init; }

    /// <summary>The parallelism of every operator.</summary>
    public int Parallelism { get; init; } = 2;

    /// <summary>Where keyed state lives; the silos' default when null.</summary>
    public State.StateBackendKind? StateBackend { get; init; }

    /// <summary>The checkpointing settings; checkpoints only on request when null.</summary>
    public CheckpointingSettings? Checkpointing { get; init; }
}

/// <summary>
/// The Nexmark queries (as the nexmark repository's Flink SQL defines them) as stream jobs. Event time is each
/// event's <c>dateTime</c>; every source subtask reads its events in time order, so watermarks trail the latest
/// event by nothing and no event is late.
/// </summary>
/// <remarks>
/// q0 passes bids through; q1 converts their prices to euros; q2 keeps the bids on auctions whose id is a multiple of
/// 123; q3 joins sellers in OR, ID and CA with their category-10 auctions; q4 averages the winning prices of closed
/// auctions per category; q5 finds the auctions with the most bids in 10 s windows sliding by 2 s; q7 finds the highest
/// bids of 10 s tumbling windows; q8 finds the people who opened an auction in the 10 s window they registered in.
/// </remarks>
public static class NexmarkQueries
{
    /// <summary>The queries built here (q6 is not: it needs a windowed top-n over retractions).</summary>
    public static IReadOnlyList<string> Names { get; } = ["q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8"];

    /// <summary>q5's windows: 10 s, sliding by 2 s.</summary>
    public static readonly TimeSpan HotItemsWindow = TimeSpan.FromSeconds(10);

    /// <summary>q5's slide.</summary>
    public static readonly TimeSpan HotItemsSlide = TimeSpan.FromSeconds(2);

    /// <summary>q7's and q8's tumbling windows: 10 s.</summary>
    public static readonly TimeSpan TumblingWindow = TimeSpan.FromSeconds(10);

    /// <summary>How many keys q7's first stage spreads the bids of a window over before the global maximum is taken.</summary>
    public const int HighestBidBuckets = 64;

    /// <summary>What each query computes, for people.</summary>
    public static string Describe(string query) => query switch
    {
        "q0" => "Nexmark q0 (pass through): every bid.",
        "q1" => "Nexmark q1 (currency conversion): every bid with its price in euros (x 0.908).",
        "q2" => "Nexmark q2 (selection): the auction and price of bids on auctions whose id is a multiple of 123.",
        "q3" => "Nexmark q3 (local item suggestion): sellers in OR, ID or CA joined with their auctions in category 10.",
        "q4" => "Nexmark q4 (average price per category): the average winning price of closed auctions per category, updated at each closing.",
        "q5" => "Nexmark q5 (hot items): the auctions with the most bids in each 10 s window sliding by 2 s.",
        "q7" => "Nexmark q7 (highest bid): the bids at the highest price of each 10 s tumbling window.",
        "q8" => "Nexmark q8 (monitor new users): people who opened an auction in the 10 s window they registered in.",
        _ => throw UnknownQuery(query),
    };

    /// <summary>Builds the job of <paramref name="settings"/>' query.</summary>
    /// <exception cref="ArgumentException">The query is not one of <see cref="Names"/>, or a setting is out of range.</exception>
    public static StreamJobBuilder Build(NexmarkJobSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (!Names.Contains(settings.Query))
        {
            throw UnknownQuery(settings.Query);
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(settings.Parallelism, 1);
        var job = new StreamJobBuilder($"nexmark-{settings.Query}") { DefaultParallelism = settings.Parallelism, Checkpointing = settings.Checkpointing, StateBackend = settings.StateBackend };
        ISourceFunction<NexmarkEvent> source = settings.InputFile is { } file
            ? new NexmarkFileSource { Path = file }
            : new NexmarkGeneratorSource { Count = settings.Events, Config = settings.Config, RecordsPerSecondPerSubtask = settings.EventsPerSecondPerSubtask };
        var events = job.AddSource(source, "nexmark-events").Uid("nexmark-events")
            .AssignTimestampsAndWatermarks(WatermarkStrategy<NexmarkEvent>.ForMonotonousTimestamps().WithTimestampAssigner(new NexmarkEventTime()), "event-time")
            .Uid("event-time");

        switch (settings.Query)
        {
            case "q0":
                Sink(Bids(events), settings);
                break;
            case "q1":
                Sink(Bids(events).Map(new ToEuros(), "to-euros").Uid("to-euros"), settings);
                break;
            case "q2":
                Sink(Bids(events).Filter(new AuctionIdMultipleOf123(), "auction-mod-123").Uid("auction-mod-123").Map(new ToAuctionPrice(), "auction-price").Uid("auction-price"), settings);
                break;
            case "q3":
                Sink(events.FlatMap(new EventsOf { Persons = true, LocalSellersOnly = true, Auctions = true, Category10Only = true }, "local-sellers-category-10").Uid("local-sellers-category-10")
                    .KeyBy(new PersonOrSeller())
                    .Process(new LocalItemJoin(), "join-sellers-auctions").Uid("join-sellers-auctions"), settings);
                break;
            case "q4":
                var finalPrices = events.FlatMap(new EventsOf { Auctions = true, Bids = true }, "auctions-and-bids").Uid("auctions-and-bids")
                    .KeyBy(new AuctionOfEvent())
                    .Process(new WinningBids(), "winning-bids").Uid("winning-bids");
                Sink(finalPrices.KeyBy(new FinalPriceCategory()).Process(new AverageByCategory(), "average-per-category").Uid("average-per-category"), settings);
                break;
            case "q5":
                var counts = Bids(events).KeyBy(new BidAuction())
                    .Window(SlidingWindows.OfEventTime(HotItemsWindow, HotItemsSlide))
                    .Aggregate(new CountBids(), new LabelBidCount(), "bids-per-window").Uid("bids-per-window");
                Sink(counts.KeyBy(new BidCountWindowEnd()).Process(new HottestAuctions(), "hottest-per-window").Uid("hottest-per-window"), settings);
                break;
            case "q7":
                var highestPerBucket = Bids(events).KeyBy(new BidBucket())
                    .Window(TumblingWindows.OfEventTime(TumblingWindow))
                    .Aggregate(new HighestBidsOfWindow(), "highest-per-bucket").Uid("highest-per-bucket");
                Sink(highestPerBucket.KeyBy(new ConstantKey<HighestBids>())
                    .Window(TumblingWindows.OfEventTime(TumblingWindow))
                    .Aggregate(new MergeHighestBids(), new EmitHighestBids(), "highest-per-window").Uid("highest-per-window"), settings);
                break;
            case "q8":
                Sink(events.FlatMap(new EventsOf { Persons = true, Auctions = true }, "persons-and-auctions").Uid("persons-and-auctions")
                    .KeyBy(new PersonOrSeller())
                    .Process(new NewSellerJoin { WindowMs = (long)TumblingWindow.TotalMilliseconds }, "join-new-sellers").Uid("join-new-sellers"), settings);
                break;
        }

        return job;
    }

    private static ArgumentException UnknownQuery(string query) =>
        new($"'{query}' is not a Nexmark query built here; choose one of {string.Join(", ", Names)}.", nameof(query));

    private static DataStream<Bid> Bids(DataStream<NexmarkEvent> events) => events.FlatMap(new BidsOf(), "bids").Uid("bids");

    private static void Sink<T>(DataStream<T> results, NexmarkJobSettings settings)
    {
        if (settings.OutputDirectory is { } directory)
        {
            results.SinkTo(new FileSink<T>(directory) { Encoder = new JsonLineEncoder<T>() }, "write-results").Uid("write-results");
        }
        else
        {
            results.SinkTo(new DiscardingSink<T>(), "discard-results").Uid("discard-results");
        }
    }
}
