namespace Platform.Nexmark;

/// <summary>
/// The settings of the Nexmark generator (the nexmark repository's <c>GeneratorConfig</c>, with its defaults). Event
/// time is driven by <see cref="EventsPerSecond"/>: event n happens <c>n / EventsPerSecond</c> seconds after
/// <see cref="BaseTime"/>, whatever the speed at which it is generated.
/// </summary>
[GenerateSerializer, Alias("platform.nexmark.NexmarkConfig")]
public sealed record NexmarkConfig
{
    /// <summary>The event time of event 0, in milliseconds since the Unix epoch.</summary>
    [Id(0)] public long BaseTime { get; init; } = 1_700_000_000_000;

    /// <summary>The rate that spaces events in event time (Nexmark's <c>firstEventRate</c>, 10,000,000 by default there).</summary>
    [Id(1)] public long EventsPerSecond { get; init; } = 10_000_000;

    /// <summary>Auctions open at a time (Nexmark's <c>numInFlightAuctions</c>).</summary>
    [Id(2)] public int InFlightAuctions { get; init; } = 100;

    /// <summary>People active at a time (Nexmark's <c>numActivePeople</c>).</summary>
    [Id(3)] public int ActivePeople { get; init; } = 1_000;

    /// <summary>All but 1 in this many bids go to a hot auction (Nexmark's <c>hotAuctionRatio</c>).</summary>
    [Id(4)] public int HotAuctionRatio { get; init; } = 2;

    /// <summary>All but 1 in this many auctions have a hot seller (Nexmark's <c>hotSellersRatio</c>).</summary>
    [Id(5)] public int HotSellersRatio { get; init; } = 4;

    /// <summary>All but 1 in this many bids have a hot bidder (Nexmark's <c>hotBiddersRatio</c>).</summary>
    [Id(6)] public int HotBiddersRatio { get; init; } = 4;
}

/// <summary>
/// Generates Nexmark events by the nexmark repository's rules: of every 50 events 1 is a person, 3 are auctions and 46
/// are bids; ids start at 1000; most bids go to hot auctions and come from hot bidders, most auctions from hot sellers;
/// prices are <c>round(10^(6u) · 100)</c>. Event n depends on n only (its random numbers are seeded by n), so any
/// subtask can generate any event and a restored source re-generates exactly what it generated before.
/// </summary>
public static class NexmarkGenerator
{
    private const int PersonProportion = 1;
    private const int AuctionProportion = 3;
    private const int BidProportion = 46;
    private const int ProportionDenominator = PersonProportion + AuctionProportion + BidProportion;
    private const long FirstPersonId = 1000;
    private const long FirstAuctionId = 1000;
    private const long FirstCategoryId = 10;
    private const int Categories = 5;
    private const int HotAuctionSpacing = 100;
    private const int HotSellerSpacing = 100;
    private const int HotBidderSpacing = 100;
    private const int PersonIdLead = 10;
    private const int AuctionIdLead = 10;

    private static readonly string[] FirstNames = ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"];
    private static readonly string[] LastNames = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"];
    private static readonly string[] Cities = ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"];
    private static readonly string[] States = ["AZ", "CA", "ID", "OR", "WA", "WY"];
    private static readonly string[] Channels = ["Google", "Facebook", "Baidu", "Apple"];

    /// <summary>The kind of event number <paramref name="eventNumber"/>.</summary>
    public static NexmarkEventType TypeOf(long eventNumber) => (eventNumber % ProportionDenominator) switch
    {
        < PersonProportion => NexmarkEventType.Person,
        < PersonProportion + AuctionProportion => NexmarkEventType.Auction,
        _ => NexmarkEventType.Bid,
    };

    /// <summary>The event time of event <paramref name="eventNumber"/>.</summary>
    public static long TimestampOf(long eventNumber, NexmarkConfig config) =>
        config.BaseTime + (long)(eventNumber * 1000.0 / config.EventsPerSecond);

    /// <summary>Event number <paramref name="eventNumber"/> of the stream <paramref name="config"/> describes.</summary>
    public static NexmarkEvent Generate(long eventNumber, NexmarkConfig config)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(eventNumber);
        var random = new Random(unchecked((int)(eventNumber ^ (eventNumber >> 32))));
        var timestamp = TimestampOf(eventNumber, config);
        return TypeOf(eventNumber) switch
        {
            NexmarkEventType.Person => new NexmarkEvent(Person: NextPerson(eventNumber, random, timestamp)),
            NexmarkEventType.Auction => new NexmarkEvent(Auction: NextAuction(eventNumber, random, timestamp, config)),
            _ => new NexmarkEvent(Bid: NextBid(eventNumber, random, timestamp, config)),
        };
    }

    private static Person NextPerson(long eventNumber, Random random, long timestamp)
    {
        var id = LastBase0PersonId(eventNumber) + FirstPersonId;
        var name = $"{Pick(FirstNames, random)} {Pick(LastNames, random)}";
        var email = $"{NextString(random, 7)}@{NextString(random, 5)}.com";
        var card = string.Join(' ', Enumerable.Range(0, 4).Select(_ => random.Next(10_000).ToString("D4", System.Globalization.CultureInfo.InvariantCulture)));
        return new Person(id, name, email, card, Pick(Cities, random), Pick(States, random), timestamp, NextExtra(random));
    }

    private static Auction NextAuction(long eventNumber, Random random, long timestamp, NexmarkConfig config)
    {
        var id = LastBase0AuctionId(eventNumber) + FirstAuctionId;
        var seller = random.Next(config.HotSellersRatio) > 0
            ? LastBase0PersonId(eventNumber) / HotSellerSpacing * HotSellerSpacing
            : NextBase0PersonId(eventNumber, random, config);
        var category = FirstCategoryId + random.Next(Categories);
        var initialBid = NextPrice(random);
        var expires = timestamp + NextAuctionLengthMs(eventNumber, random, timestamp, config);
        var reserve = initialBid + NextPrice(random);
        return new Auction(id, NextString(random, 20), NextString(random, 100), initialBid, reserve, timestamp, expires, seller + FirstPersonId, category, NextExtra(random));
    }

    private static Bid NextBid(long eventNumber, Random random, long timestamp, NexmarkConfig config)
    {
        var auction = random.Next(config.HotAuctionRatio) > 0
            ? LastBase0AuctionId(eventNumber) / HotAuctionSpacing * HotAuctionSpacing
            : NextBase0AuctionId(eventNumber, random, config);
        var bidder = random.Next(config.HotBiddersRatio) > 0
            ? LastBase0PersonId(eventNumber) / HotBidderSpacing * HotBidderSpacing + 1
            : NextBase0PersonId(eventNumber, random, config);
        var channel = random.Next(Channels.Length);
        var url = $"https://www.nexmark.com/{NextString(random, 5)}/item.htm?query=1&channel_id={channel}";
        return new Bid(auction + FirstAuctionId, bidder + FirstPersonId, NextPrice(random), Channels[channel], url, timestamp, NextExtra(random));
    }

    // The last person id created by event eventNumber (0-based).
    private static long LastBase0PersonId(long eventNumber)
    {
        var epoch = eventNumber / ProportionDenominator;
        var offset = Math.Min(eventNumber % ProportionDenominator, PersonProportion - 1);
        return epoch * PersonProportion + offset;
    }

    // The last auction id created by event eventNumber (0-based).
    private static long LastBase0AuctionId(long eventNumber)
    {
        var epoch = eventNumber / ProportionDenominator;
        var offset = eventNumber % ProportionDenominator;
        if (offset < PersonProportion)
        {
            epoch--;
            offset = AuctionProportion - 1;
        }
        else if (offset >= PersonProportion + AuctionProportion)
        {
            offset = AuctionProportion - 1;
        }
        else
        {
            offset -= PersonProportion;
        }

        return Math.Max(0, epoch * AuctionProportion + offset);
    }

    // A random person among the active ones, or one a little ahead (not created yet: Nexmark's lead).
    private static long NextBase0PersonId(long eventNumber, Random random, NexmarkConfig config)
    {
        var people = LastBase0PersonId(eventNumber) + 1;
        var active = Math.Min(people, config.ActivePeople);
        return people - active + random.NextInt64(active + PersonIdLead);
    }

    // A random open auction, or one a little ahead.
    private static long NextBase0AuctionId(long eventNumber, Random random, NexmarkConfig config)
    {
        var max = LastBase0AuctionId(eventNumber);
        var min = Math.Max(max - config.InFlightAuctions, 0);
        return min + random.NextInt64(max - min + 1 + AuctionIdLead);
    }

    // Long enough that about InFlightAuctions auctions are open at a time (Nexmark's nextAuctionLengthMs).
    private static long NextAuctionLengthMs(long eventNumber, Random random, long timestamp, NexmarkConfig config)
    {
        var eventsForAuctions = (long)config.InFlightAuctions * ProportionDenominator / AuctionProportion;
        var horizon = TimestampOf(eventNumber + eventsForAuctions, config) - timestamp;
        return 1 + random.NextInt64(Math.Max(horizon * 2, 1));
    }

    private static long NextPrice(Random random) => (long)Math.Round(Math.Pow(10.0, random.NextDouble() * 6.0) * 100.0);

    private static string Pick(string[] values, Random random) => values[random.Next(values.Length)];

    private static string NextString(Random random, int maxLength)
    {
        var length = 3 + random.Next(Math.Max(1, maxLength - 3));
        return string.Create(length, random, (span, r) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = r.Next(13) == 0 ? ' ' : (char)('a' + r.Next(26));
            }
        });
    }

    private static string NextExtra(Random random) => NextString(random, 12);
}
