namespace Platform.Nexmark;

/// <summary>A bid with its price in euros (q1's result: Nexmark's dollar price × 0.908).</summary>
[GenerateSerializer, Immutable, Alias("platform.nexmark.EuroBid")]
public sealed record EuroBid(
    [property: Id(0)] long Auction,
    [property: Id(1)] long Bidder,
    [property: Id(2)] decimal Price,
    [property: Id(3)] string Channel,
    [property: Id(4)] string Url,
    [property: Id(5)] long DateTime,
    [property: Id(6)] string Extra);

/// <summary>An auction and a price bid for it (q2's result).</summary>
[GenerateSerializer, Immutable, Alias("platform.nexmark.AuctionPrice")]
public sealed record AuctionPrice([property: Id(0)] long Auction, [property: Id(1)] long Price);

/// <summary>A seller in Oregon, Idaho or California and an auction of theirs in category 10 (q3's result).</summary>
[GenerateSerializer, Immutable, Alias("platform.nexmark.LocalItem")]
public sealed record LocalItem(
    [property: Id(0)] string Name,
    [property: Id(1)] string City,
    [property: Id(2)] string State,
    [property: Id(3)] long Id);

/// <summary>A closed auction and its winning price: the highest bid made while it was open (q4's first stage).</summary>
[GenerateSerializer, Immutable, Alias("platform.nexmark.AuctionFinalPrice")]
public sealed record AuctionFinalPrice([property: Id(0)] long Auction, [property: Id(1)] long Category, [property: Id(2)] long FinalPrice);

/// <summary>
/// The average winning price of a category over the <see cref="Auctions"/> auctions of it that closed with a bid so
/// far (q4's result, updated at each closing). <see cref="Average"/> is <c>Total / Auctions</c>.
/// </summary>
[GenerateSerializer, Immutable, Alias("platform.nexmark.CategoryAverage")]
public sealed record CategoryAverage(
    [property: Id(0)] long Category,
    [property: Id(1)] double Average,
    [property: Id(2)] long Auctions,
    [property: Id(3)] long Total);

/// <summary>The number of bids an auction got in one sliding window (q5's intermediate and, for the hottest auctions, its result).</summary>
[GenerateSerializer, Immutable, Alias("platform.nexmark.AuctionBids")]
public sealed record AuctionBids(
    [property: Id(0)] long Auction,
    [property: Id(1)] long Count,
    [property: Id(2)] long WindowStart,
    [property: Id(3)] long WindowEnd);

/// <summary>The highest price bid in a window and every bid at that price (q7's accumulator).</summary>
[GenerateSerializer, Immutable, Alias("platform.nexmark.HighestBids")]
public sealed record HighestBids([property: Id(0)] long Price, [property: Id(1)] Bid[] Bids)
{
    /// <summary>No bid yet.</summary>
    public static HighestBids None { get; } = new(long.MinValue, []);

    /// <summary>These bids with <paramref name="bid"/> taken in: replaced by it when it is higher, joined by it when equal.</summary>
    public HighestBids With(Bid bid) =>
        bid.Price > Price ? new HighestBids(bid.Price, [bid])
        : bid.Price == Price ? new HighestBids(Price, [.. Bids, bid])
        : this;

    /// <summary>The highest bids of both.</summary>
    public HighestBids Merge(HighestBids other) =>
        other.Price > Price ? other
        : other.Price < Price ? this
        : new HighestBids(Price, [.. Bids, .. other.Bids]);
}

/// <summary>A person who opened an auction in the same 10 s window they registered in (q8's result).</summary>
[GenerateSerializer, Immutable, Alias("platform.nexmark.NewSeller")]
public sealed record NewSeller([property: Id(0)] long Id, [property: Id(1)] string Name, [property: Id(2)] long StartTime);
