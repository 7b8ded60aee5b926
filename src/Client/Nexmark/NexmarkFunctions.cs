using Platform.Functions;
using Platform.State;
using Platform.Windowing;

namespace Platform.Nexmark;

// The functions of the Nexmark queries (NexmarkQueries). Internal: they are the queries' parts, not an API.

/// <summary>An event's time is its <c>dateTime</c>.</summary>
[GenerateSerializer, Alias("platform.nexmark.NexmarkEventTime")]
internal sealed class NexmarkEventTime : ITimestampAssigner<NexmarkEvent>
{
    public long ExtractTimestamp(NexmarkEvent record) => record.DateTime;
}

[GenerateSerializer, Alias("platform.nexmark.BidsOf")]
internal sealed class BidsOf : IFlatMapFunction<NexmarkEvent, Bid>
{
    public void FlatMap(NexmarkEvent value, ICollector<Bid> output)
    {
        if (value.Bid is { } bid)
        {
            output.Collect(bid);
        }
    }
}

/// <summary>
/// The events two kinds of which a join takes, as one stream: an operator with two outgoing edges does not chain, so
/// splitting the events into two streams first would send every event over a channel twice.
/// </summary>
[GenerateSerializer, Alias("platform.nexmark.EventsOf")]
internal sealed class EventsOf : IFlatMapFunction<NexmarkEvent, NexmarkEvent>
{
    /// <summary>Keep persons (only those in OR, ID or CA when <see cref="LocalSellersOnly"/>).</summary>
    [Id(0)] public bool Persons { get; init; }

    /// <summary>Keep auctions (only those in category 10 when <see cref="Category10Only"/>).</summary>
    [Id(1)] public bool Auctions { get; init; }

    /// <summary>Keep bids.</summary>
    [Id(2)] public bool Bids { get; init; }

    [Id(3)] public bool LocalSellersOnly { get; init; }

    [Id(4)] public bool Category10Only { get; init; }

    public void FlatMap(NexmarkEvent value, ICollector<NexmarkEvent> output)
    {
        var keep = value switch
        {
            { Bid: not null } => Bids,
            { Auction: { } a } => Auctions && (!Category10Only || a.Category == 10),
            { Person: { } p } => Persons && (!LocalSellersOnly || p.State is "OR" or "ID" or "CA"),
            _ => false,
        };
        if (keep)
        {
            output.Collect(value);
        }
    }
}

/// <summary>A person's id, an auction's seller: the key of the joins of people with their auctions (q3, q8).</summary>
[GenerateSerializer, Alias("platform.nexmark.PersonOrSeller")]
internal sealed class PersonOrSeller : IKeySelector<NexmarkEvent, long>
{
    public long GetKey(NexmarkEvent value) => value.Person?.Id ?? value.Auction?.Seller
        ?? throw new InvalidOperationException("The join of people with their auctions received a bid.");
}

/// <summary>An auction's id, a bid's auction: the key of q4's join.</summary>
[GenerateSerializer, Alias("platform.nexmark.AuctionOfEvent")]
internal sealed class AuctionOfEvent : IKeySelector<NexmarkEvent, long>
{
    public long GetKey(NexmarkEvent value) => value.Auction?.Id ?? value.Bid?.Auction
        ?? throw new InvalidOperationException("The join of auctions with their bids received a person.");
}

[GenerateSerializer, Alias("platform.nexmark.BidAuction")]
internal sealed class BidAuction : IKeySelector<Bid, long>
{
    public long GetKey(Bid value) => value.Auction;
}

/// <summary>q7 spreads a window's bids over <see cref="NexmarkQueries.HighestBidBuckets"/> keys, then takes the maximum of their maxima.</summary>
[GenerateSerializer, Alias("platform.nexmark.BidBucket")]
internal sealed class BidBucket : IKeySelector<Bid, long>
{
    public long GetKey(Bid value) => value.Auction % NexmarkQueries.HighestBidBuckets;
}

[GenerateSerializer, Alias("platform.nexmark.ConstantKey`1")]
internal sealed class ConstantKey<T> : IKeySelector<T, long>
{
    public long GetKey(T value) => 0;
}

[GenerateSerializer, Alias("platform.nexmark.FinalPriceCategory")]
internal sealed class FinalPriceCategory : IKeySelector<AuctionFinalPrice, long>
{
    public long GetKey(AuctionFinalPrice value) => value.Category;
}

[GenerateSerializer, Alias("platform.nexmark.BidCountWindowEnd")]
internal sealed class BidCountWindowEnd : IKeySelector<AuctionBids, long>
{
    public long GetKey(AuctionBids value) => value.WindowEnd;
}

/// <summary>q1: <c>0.908 * price</c>, in decimal as Flink's SQL computes it.</summary>
[GenerateSerializer, Alias("platform.nexmark.ToEuros")]
internal sealed class ToEuros : IMapFunction<Bid, EuroBid>
{
    public EuroBid Map(Bid value) => new(value.Auction, value.Bidder, 0.908m * value.Price, value.Channel, value.Url, value.DateTime, value.Extra);
}

[GenerateSerializer, Alias("platform.nexmark.AuctionIdMultipleOf123")]
internal sealed class AuctionIdMultipleOf123 : IFilterFunction<Bid>
{
    public bool Filter(Bid value) => value.Auction % 123 == 0;
}

[GenerateSerializer, Alias("platform.nexmark.ToAuctionPrice")]
internal sealed class ToAuctionPrice : IMapFunction<Bid, AuctionPrice>
{
    public AuctionPrice Map(Bid value) => new(value.Auction, value.Price);
}

/// <summary>
/// q3's join of a seller with their auctions (one stream of both, keyed by person id and seller): a regular inner join, so each
/// pair is emitted once, whichever side arrives first. Auctions whose seller has not arrived wait in list state.
/// </summary>
[GenerateSerializer, Alias("platform.nexmark.LocalItemJoin")]
internal sealed class LocalItemJoin : KeyedProcessFunction<long, NexmarkEvent, LocalItem>
{
    public override void ProcessElement(NexmarkEvent value, IKeyedContext<long> context, ICollector<LocalItem> output)
    {
        if (value.Person is { } person)
        {
            OnSeller(person, output);
        }
        else if (value.Auction is { } auction)
        {
            OnAuction(auction, output);
        }
    }

    [NonSerialized] private IValueState<Person?>? _seller;
    [NonSerialized] private IListState<long>? _waitingAuctions;

    public override void Open(IRuntimeContext context)
    {
        _seller = context.GetState(new ValueStateDescriptor<Person?>("seller"));
        _waitingAuctions = context.GetListState(new ListStateDescriptor<long>("waiting-auctions"));
    }

    private void OnSeller(Person value, ICollector<LocalItem> output)
    {
        _seller!.Update(value);
        foreach (var auction in _waitingAuctions!.Get())
        {
            output.Collect(new LocalItem(value.Name, value.City, value.State, auction));
        }

        _waitingAuctions.Clear();
    }

    private void OnAuction(Auction value, ICollector<LocalItem> output)
    {
        if (_seller!.Value is { } seller)
        {
            output.Collect(new LocalItem(seller.Name, seller.City, seller.State, value.Id));
        }
        else
        {
            _waitingAuctions!.Add(value.Id);
        }
    }
}

/// <summary>
/// q4's first stage, keyed by auction id: the highest bid made between an auction's opening and its expiry (both
/// included), emitted when the watermark passes the expiry. A bid that arrives before its auction (sources read in
/// parallel) waits until the watermark passes its own time: by then its auction has arrived if it opened before the bid.
/// </summary>
[GenerateSerializer, Alias("platform.nexmark.WinningBids")]
internal sealed class WinningBids : KeyedProcessFunction<long, NexmarkEvent, AuctionFinalPrice>
{
    public override void ProcessElement(NexmarkEvent value, IKeyedContext<long> context, ICollector<AuctionFinalPrice> output)
    {
        if (value.Bid is { } bid)
        {
            OnBid(bid, context);
        }
        else if (value.Auction is { } auction)
        {
            OnAuction(auction, context);
        }
    }

    // Only what the join needs of an auction: it is read for every bid, and RocksDB state is deserialized on each read.
    [NonSerialized] private IValueState<OpenAuction?>? _auction;
    [NonSerialized] private IValueState<long?>? _highest;

    // Bids that came before their auction, as the highest price bid at each millisecond: only the highest can win, and
    // a map costs one entry per millisecond where a list (rewritten by each add on RocksDB) would cost one per bid.
    // Half of Nexmark's bids go to a hot auction, which may have closed: its bids all land here until the watermark
    // passes them.
    [NonSerialized] private IMapState<long, long>? _early;
    [NonSerialized] private IValueState<bool>? _hasEarly;

    public override void Open(IRuntimeContext context)
    {
        _auction = context.GetState(new ValueStateDescriptor<OpenAuction?>("auction"));
        _highest = context.GetState(new ValueStateDescriptor<long?>("highest-price"));
        _early = context.GetMapState(new MapStateDescriptor<long, long>("early-bids"));
        _hasEarly = context.GetState(new ValueStateDescriptor<bool>("has-early-bids"));
    }

    private void OnAuction(Auction value, IKeyedContext<long> context)
    {
        var auction = new OpenAuction(value.Id, value.Category, value.DateTime, value.Expires);
        _auction!.Update(auction);
        if (_hasEarly!.Value)
        {
            foreach (var (time, price) in _early!.Entries())
            {
                Take(auction, time, price);
            }

            _early.Clear();
            _hasEarly.Clear();
        }

        context.TimerService.RegisterEventTimeTimer(value.Expires);
    }

    private void OnBid(Bid value, IKeyedContext<long> context)
    {
        if (_auction!.Value is { } auction)
        {
            Take(auction, value.DateTime, value.Price);
        }
        else
        {
            if (!_early!.TryGetValue(value.DateTime, out var highest) || value.Price > highest)
            {
                _early.Put(value.DateTime, value.Price);
            }

            _hasEarly!.Update(true);
            context.TimerService.RegisterEventTimeTimer(value.DateTime);
        }
    }

    public override void OnTimer(long timestamp, IOnTimerContext<long> context, ICollector<AuctionFinalPrice> output)
    {
        if (_auction!.Value is { } auction)
        {
            if (auction.Expires == timestamp)
            {
                if (_highest!.Value is { } price)
                {
                    output.Collect(new AuctionFinalPrice(auction.Id, auction.Category, price));
                }

                _auction.Clear();
                _highest.Clear();
            }

            return;
        }

        // No auction (not opened yet, or closed): the watermark passed these bids, so their auction, had it opened
        // by then, would have arrived. Each millisecond's entry has its own timer, so earlier ones are gone already.
        if (_hasEarly!.Value && _early!.Remove(timestamp) && _early.Keys().Count == 0)
        {
            _hasEarly.Clear();
        }
    }

    private void Take(OpenAuction auction, long dateTime, long price)
    {
        if (dateTime >= auction.DateTime && dateTime <= auction.Expires && (_highest!.Value is not { } highest || price > highest))
        {
            _highest!.Update(price);
        }
    }
}

/// <summary>What q4 keeps of an open auction.</summary>
[GenerateSerializer, Immutable, Alias("platform.nexmark.OpenAuction")]
internal sealed record OpenAuction([property: Id(0)] long Id, [property: Id(1)] long Category, [property: Id(2)] long DateTime, [property: Id(3)] long Expires);

/// <summary>q4's second stage, keyed by category: the running average of the winning prices, emitted at each closing.</summary>
[GenerateSerializer, Alias("platform.nexmark.AverageByCategory")]
internal sealed class AverageByCategory : KeyedProcessFunction<long, AuctionFinalPrice, CategoryAverage>
{
    [NonSerialized] private IValueState<CategoryAverage?>? _average;

    public override void Open(IRuntimeContext context) => _average = context.GetState(new ValueStateDescriptor<CategoryAverage?>("average"));

    public override void ProcessElement(AuctionFinalPrice value, IKeyedContext<long> context, ICollector<CategoryAverage> output)
    {
        var (auctions, total) = _average!.Value is { } current ? (current.Auctions + 1, current.Total + value.FinalPrice) : (1, value.FinalPrice);
        var average = new CategoryAverage(value.Category, (double)total / auctions, auctions, total);
        _average.Update(average);
        output.Collect(average);
    }
}

[GenerateSerializer, Alias("platform.nexmark.CountBids")]
internal sealed class CountBids : IAggregateFunction<Bid, long, long>
{
    public long CreateAccumulator() => 0;

    public long Add(Bid value, long accumulator) => accumulator + 1;

    public long GetResult(long accumulator) => accumulator;

    public long Merge(long a, long b) => a + b;
}

[GenerateSerializer, Alias("platform.nexmark.LabelBidCount")]
internal sealed class LabelBidCount : ProcessWindowFunction<long, AuctionBids, long>
{
    public override void Process(long key, IWindowContext context, IReadOnlyList<long> elements, ICollector<AuctionBids> output) =>
        output.Collect(new AuctionBids(key, elements[0], context.Window.Start, context.Window.End));
}

/// <summary>
/// q5's second stage, keyed by window end: keeps the auctions with the most bids of the window seen so far and, when
/// the watermark passes the window (every count has arrived by then), emits them. Only the leaders are kept: a window
/// has a count per auction, hundreds of thousands at Nexmark's rates.
/// </summary>
[GenerateSerializer, Alias("platform.nexmark.HottestAuctions")]
internal sealed class HottestAuctions : KeyedProcessFunction<long, AuctionBids, AuctionBids>
{
    [NonSerialized] private IValueState<AuctionBids[]?>? _hottest;

    public override void Open(IRuntimeContext context) => _hottest = context.GetState(new ValueStateDescriptor<AuctionBids[]?>("hottest"));

    public override void ProcessElement(AuctionBids value, IKeyedContext<long> context, ICollector<AuctionBids> output)
    {
        var hottest = _hottest!.Value;
        if (hottest is null || value.Count > hottest[0].Count)
        {
            _hottest.Update([value]);
            context.TimerService.RegisterEventTimeTimer(value.WindowEnd - 1);
        }
        else if (value.Count == hottest[0].Count)
        {
            _hottest.Update([.. hottest, value]);
        }
    }

    public override void OnTimer(long timestamp, IOnTimerContext<long> context, ICollector<AuctionBids> output)
    {
        foreach (var auction in _hottest!.Value ?? [])
        {
            output.Collect(auction);
        }

        _hottest.Clear();
    }
}

[GenerateSerializer, Alias("platform.nexmark.HighestBidsOfWindow")]
internal sealed class HighestBidsOfWindow : IAggregateFunction<Bid, HighestBids, HighestBids>
{
    public HighestBids CreateAccumulator() => HighestBids.None;

    public HighestBids Add(Bid value, HighestBids accumulator) => accumulator.With(value);

    public HighestBids GetResult(HighestBids accumulator) => accumulator;

    public HighestBids Merge(HighestBids a, HighestBids b) => a.Merge(b);
}

[GenerateSerializer, Alias("platform.nexmark.MergeHighestBids")]
internal sealed class MergeHighestBids : IAggregateFunction<HighestBids, HighestBids, HighestBids>
{
    public HighestBids CreateAccumulator() => HighestBids.None;

    public HighestBids Add(HighestBids value, HighestBids accumulator) => accumulator.Merge(value);

    public HighestBids GetResult(HighestBids accumulator) => accumulator;

    public HighestBids Merge(HighestBids a, HighestBids b) => a.Merge(b);
}

[GenerateSerializer, Alias("platform.nexmark.EmitHighestBids")]
internal sealed class EmitHighestBids : ProcessWindowFunction<HighestBids, Bid, long>
{
    public override void Process(long key, IWindowContext context, IReadOnlyList<HighestBids> elements, ICollector<Bid> output)
    {
        foreach (var bid in elements[0].Bids)
        {
            output.Collect(bid);
        }
    }
}

/// <summary>
/// q8's window join, keyed by person id: a person and the windows in which they opened auctions (one stream of both).
/// When the watermark passes the person's window, the person is emitted if they opened an auction in it.
/// </summary>
[GenerateSerializer, Alias("platform.nexmark.NewSellerJoin")]
internal sealed class NewSellerJoin : KeyedProcessFunction<long, NexmarkEvent, NewSeller>
{
    /// <summary>The tumbling window's size in milliseconds.</summary>
    [Id(0)] public long WindowMs { get; init; }

    [NonSerialized] private IValueState<Person?>? _person;
    [NonSerialized] private IMapState<long, bool>? _auctionWindows;

    public override void Open(IRuntimeContext context)
    {
        _person = context.GetState(new ValueStateDescriptor<Person?>("person"));
        _auctionWindows = context.GetMapState(new MapStateDescriptor<long, bool>("auction-windows"));
    }

    public override void ProcessElement(NexmarkEvent value, IKeyedContext<long> context, ICollector<NewSeller> output)
    {
        if (value.Person is { } person)
        {
            OnPerson(person, context);
        }
        else if (value.Auction is { } auction)
        {
            OnAuction(auction, context);
        }
    }

    private void OnPerson(Person value, IKeyedContext<long> context)
    {
        _person!.Update(value);
        context.TimerService.RegisterEventTimeTimer(WindowStart(value.DateTime) + WindowMs - 1);
    }

    private void OnAuction(Auction value, IKeyedContext<long> context)
    {
        var start = WindowStart(value.DateTime);
        _auctionWindows!.Put(start, true);
        context.TimerService.RegisterEventTimeTimer(start + WindowMs - 1);
    }

    public override void OnTimer(long timestamp, IOnTimerContext<long> context, ICollector<NewSeller> output)
    {
        var start = timestamp - WindowMs + 1;
        var sold = _auctionWindows!.Remove(start);
        if (_person!.Value is { } person && WindowStart(person.DateTime) == start)
        {
            if (sold)
            {
                output.Collect(new NewSeller(person.Id, person.Name, start));
            }

            // A person registers once: no later window of theirs can match.
            _person.Clear();
        }
    }

    private long WindowStart(long timestamp) => TimeWindow.StartOf(timestamp, 0, WindowMs);
}
