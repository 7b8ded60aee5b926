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

[GenerateSerializer, Alias("platform.nexmark.PersonsOf")]
internal sealed class PersonsOf : IFlatMapFunction<NexmarkEvent, Person>
{
    public void FlatMap(NexmarkEvent value, ICollector<Person> output)
    {
        if (value.Person is { } person)
        {
            output.Collect(person);
        }
    }
}

[GenerateSerializer, Alias("platform.nexmark.AuctionsOf")]
internal sealed class AuctionsOf : IFlatMapFunction<NexmarkEvent, Auction>
{
    public void FlatMap(NexmarkEvent value, ICollector<Auction> output)
    {
        if (value.Auction is { } auction)
        {
            output.Collect(auction);
        }
    }
}

[GenerateSerializer, Alias("platform.nexmark.PersonId")]
internal sealed class PersonId : IKeySelector<Person, long>
{
    public long GetKey(Person value) => value.Id;
}

[GenerateSerializer, Alias("platform.nexmark.AuctionId")]
internal sealed class AuctionId : IKeySelector<Auction, long>
{
    public long GetKey(Auction value) => value.Id;
}

[GenerateSerializer, Alias("platform.nexmark.AuctionSeller")]
internal sealed class AuctionSeller : IKeySelector<Auction, long>
{
    public long GetKey(Auction value) => value.Seller;
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

[GenerateSerializer, Alias("platform.nexmark.InLocalStates")]
internal sealed class InLocalStates : IFilterFunction<Person>
{
    public bool Filter(Person value) => value.State is "OR" or "ID" or "CA";
}

[GenerateSerializer, Alias("platform.nexmark.InCategory10")]
internal sealed class InCategory10 : IFilterFunction<Auction>
{
    public bool Filter(Auction value) => value.Category == 10;
}

/// <summary>
/// q3's join of a seller (input 1) with their auctions (input 2), keyed by person id: a regular inner join, so each
/// pair is emitted once, whichever side arrives first. Auctions whose seller has not arrived wait in list state.
/// </summary>
[GenerateSerializer, Alias("platform.nexmark.LocalItemJoin")]
internal sealed class LocalItemJoin : KeyedCoProcessFunction<long, Person, Auction, LocalItem>
{
    [NonSerialized] private IValueState<Person?>? _seller;
    [NonSerialized] private IListState<long>? _waitingAuctions;

    public override void Open(IRuntimeContext context)
    {
        _seller = context.GetState(new ValueStateDescriptor<Person?>("seller"));
        _waitingAuctions = context.GetListState(new ListStateDescriptor<long>("waiting-auctions"));
    }

    public override void ProcessElement1(Person value, IKeyedContext<long> context, ICollector<LocalItem> output)
    {
        _seller!.Update(value);
        foreach (var auction in _waitingAuctions!.Get())
        {
            output.Collect(new LocalItem(value.Name, value.City, value.State, auction));
        }

        _waitingAuctions.Clear();
    }

    public override void ProcessElement2(Auction value, IKeyedContext<long> context, ICollector<LocalItem> output)
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
internal sealed class WinningBids : KeyedCoProcessFunction<long, Auction, Bid, AuctionFinalPrice>
{
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

    public override void ProcessElement1(Auction value, IKeyedContext<long> context, ICollector<AuctionFinalPrice> output)
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

    public override void ProcessElement2(Bid value, IKeyedContext<long> context, ICollector<AuctionFinalPrice> output)
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
/// q8's window join, keyed by person id: a person (input 1) and the windows in which they opened auctions (input 2).
/// When the watermark passes the person's window, the person is emitted if they opened an auction in it.
/// </summary>
[GenerateSerializer, Alias("platform.nexmark.NewSellerJoin")]
internal sealed class NewSellerJoin : KeyedCoProcessFunction<long, Person, Auction, NewSeller>
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

    public override void ProcessElement1(Person value, IKeyedContext<long> context, ICollector<NewSeller> output)
    {
        _person!.Update(value);
        context.TimerService.RegisterEventTimeTimer(WindowStart(value.DateTime) + WindowMs - 1);
    }

    public override void ProcessElement2(Auction value, IKeyedContext<long> context, ICollector<NewSeller> output)
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
