using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using Platform.Nexmark;

namespace Platform.Testing;

/// <summary>
/// The Nexmark queries computed the plain way, from the whole input at once with dictionaries and LINQ, by their
/// SQL definitions (no watermarks, timers, windows or state backends), to check what the stream jobs of
/// <see cref="NexmarkQueries"/> write. Shared by the tests and the <c>nexmark</c> benchmark (tests/Shared is linked
/// into both).
/// </summary>
public static class NexmarkReference
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private static readonly long Window = (long)NexmarkQueries.TumblingWindow.TotalMilliseconds;
    private static readonly long HotWindow = (long)NexmarkQueries.HotItemsWindow.TotalMilliseconds;
    private static readonly long HotSlide = (long)NexmarkQueries.HotItemsSlide.TotalMilliseconds;

    /// <summary>
    /// The lines the query's job should write for <paramref name="events"/> (in no particular order), each encoded as the
    /// job's file sink encodes it. For q4, whose output is a stream of updates, the final average of each category
    /// (compare with <see cref="FinalView"/> of the output).
    /// </summary>
    public static IEnumerable<string> ExpectedLines(string query, IEnumerable<NexmarkEvent> events) => query switch
    {
        "q0" => Encode(Bids(events)),
        "q1" => Encode(Bids(events).Select(b => new EuroBid(b.Auction, b.Bidder, b.Price * 0.908m, b.Channel, b.Url, b.DateTime, b.Extra))),
        "q2" => Encode(Bids(events).Where(b => b.Auction % 123 == 0).Select(b => new AuctionPrice(b.Auction, b.Price))),
        "q3" => Encode(Q3(events)),
        "q4" => Encode(Q4(events)),
        "q5" => Encode(Q5(events)),
        "q7" => Encode(Q7(events)),
        "q8" => Encode(Q8(events)),
        _ => throw new ArgumentException($"No reference for '{query}'.", nameof(query)),
    };

    /// <summary>
    /// The job's output lines as <see cref="ExpectedLines"/> describes them: the lines themselves, except for q4, whose
    /// updates are checked (each category's averages over 1, 2, ... n auctions, each once) and reduced to the last of each
    /// category. A problem found in the updates is thrown as an <see cref="InvalidDataException"/>.
    /// </summary>
    public static IEnumerable<string> FinalView(string query, IEnumerable<string> outputLines)
    {
        if (query != "q4")
        {
            return outputLines;
        }

        var updates = outputLines.Select(l => JsonSerializer.Deserialize<CategoryAverage>(l, Json)!).GroupBy(u => u.Category);
        var finals = new List<CategoryAverage>();
        foreach (var category in updates)
        {
            var ordered = category.OrderBy(u => u.Auctions).ToList();
            for (var i = 0; i < ordered.Count; i++)
            {
                if (ordered[i].Auctions != i + 1)
                {
                    throw new InvalidDataException($"q4: category {category.Key} has updates over {string.Join(", ", ordered.Select(u => u.Auctions))} auctions; expected 1 .. {ordered.Count}, each once.");
                }
            }

            finals.Add(ordered[^1]);
        }

        return Encode(finals);
    }

    /// <summary>One line as the job's file sink writes it (JSON, camelCase).</summary>
    public static string Encode(object record) => JsonSerializer.Serialize(record, record.GetType(), Json);

    private static IEnumerable<string> Encode<T>(IEnumerable<T> records) where T : notnull => records.Select(r => Encode(r));

    private static IEnumerable<Bid> Bids(IEnumerable<NexmarkEvent> events) => events.Where(e => e.Bid is not null).Select(e => e.Bid!);

    // SELECT P.name, P.city, P.state, A.id FROM auction A JOIN person P ON A.seller = P.id
    // WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA')
    private static IEnumerable<LocalItem> Q3(IEnumerable<NexmarkEvent> events)
    {
        var persons = new Dictionary<long, Person>();
        var auctions = new List<Auction>();
        foreach (var e in events)
        {
            if (e.Person is { } p)
            {
                persons[p.Id] = p;
            }
            else if (e.Auction is { } a)
            {
                auctions.Add(a);
            }
        }

        return from a in auctions
               where a.Category == 10
               where persons.ContainsKey(a.Seller)
               let p = persons[a.Seller]
               where p.State is "OR" or "ID" or "CA"
               select new LocalItem(p.Name, p.City, p.State, a.Id);
    }

    // SELECT category, AVG(final) FROM (SELECT MAX(B.price) AS final, A.category FROM auction A, bid B
    // WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires GROUP BY A.id, A.category) GROUP BY category
    private static IEnumerable<CategoryAverage> Q4(IEnumerable<NexmarkEvent> events)
    {
        var auctions = new Dictionary<long, Auction>();
        var highest = new Dictionary<long, long>();
        var bidsBeforeAuction = new Dictionary<long, List<(long DateTime, long Price)>>();
        void Take(Auction a, long dateTime, long price)
        {
            if (dateTime >= a.DateTime && dateTime <= a.Expires && (!highest.TryGetValue(a.Id, out var h) || price > h))
            {
                highest[a.Id] = price;
            }
        }

        foreach (var e in events)
        {
            if (e.Auction is { } a)
            {
                auctions[a.Id] = a;
                if (bidsBeforeAuction.Remove(a.Id, out var early))
                {
                    early.ForEach(b => Take(a, b.DateTime, b.Price));
                }
            }
            else if (e.Bid is { } b)
            {
                if (auctions.TryGetValue(b.Auction, out var auction))
                {
                    Take(auction, b.DateTime, b.Price);
                }
                else if (bidsBeforeAuction.TryGetValue(b.Auction, out var list))
                {
                    list.Add((b.DateTime, b.Price));
                }
                else
                {
                    bidsBeforeAuction[b.Auction] = [(b.DateTime, b.Price)];
                }
            }
        }

        return from h in highest
               group h.Value by auctions[h.Key].Category into g
               let total = g.Sum()
               let count = g.LongCount()
               select new CategoryAverage(g.Key, (double)total / count, count, total);
    }

    // The auctions whose bid count in a 10 s window sliding by 2 s is the window's highest.
    private static IEnumerable<AuctionBids> Q5(IEnumerable<NexmarkEvent> events)
    {
        var counts = new Dictionary<(long Start, long Auction), long>();
        foreach (var b in Bids(events))
        {
            for (var start = b.DateTime - b.DateTime % HotSlide; start > b.DateTime - HotWindow; start -= HotSlide)
            {
                counts[(start, b.Auction)] = counts.GetValueOrDefault((start, b.Auction)) + 1;
            }
        }

        return from c in counts
               group c by c.Key.Start into window
               let most = window.Max(x => x.Value)
               from x in window
               where x.Value == most
               select new AuctionBids(x.Key.Auction, x.Value, window.Key, window.Key + HotWindow);
    }

    // The bids at the highest price of each 10 s tumbling window.
    private static IEnumerable<Bid> Q7(IEnumerable<NexmarkEvent> events)
    {
        var windows = new Dictionary<long, (long Price, List<Bid> Bids)>();
        foreach (var b in Bids(events))
        {
            var start = b.DateTime - b.DateTime % Window;
            if (!windows.TryGetValue(start, out var highest) || b.Price > highest.Price)
            {
                windows[start] = (b.Price, [b]);
            }
            else if (b.Price == highest.Price)
            {
                highest.Bids.Add(b);
            }
        }

        return windows.Values.SelectMany(w => w.Bids);
    }

    // SELECT P.id, P.name, P.starttime FROM (persons per 10 s tumbling window) P JOIN (sellers per window) A
    // ON P.id = A.seller AND P.starttime = A.starttime
    private static IEnumerable<NewSeller> Q8(IEnumerable<NexmarkEvent> events)
    {
        var persons = new List<(Person Person, long Start)>();
        var sellers = new HashSet<(long Seller, long Start)>();
        foreach (var e in events)
        {
            if (e.Person is { } p)
            {
                persons.Add((p, p.DateTime - p.DateTime % Window));
            }
            else if (e.Auction is { } a)
            {
                sellers.Add((a.Seller, a.DateTime - a.DateTime % Window));
            }
        }

        return from p in persons
               where sellers.Contains((p.Person.Id, p.Start))
               select new NewSeller(p.Person.Id, p.Person.Name, p.Start);
    }
}

/// <summary>
/// An order-independent fingerprint of a multiset of lines: how many, and two sums of 64-bit hashes of their UTF-8
/// bytes (XxHash64 and XxHash3, wrapping), so that millions of lines can be compared without holding them.
/// </summary>
public readonly record struct LinesFingerprint(long Count, ulong XxHash64Sum, ulong XxHash3Sum)
{
    /// <summary>The fingerprint of <paramref name="lines"/>.</summary>
    public static LinesFingerprint Of(IEnumerable<string> lines)
    {
        long count = 0;
        ulong sum64 = 0, sum3 = 0;
        var buffer = new byte[1024];
        foreach (var line in lines)
        {
            var length = Encoding.UTF8.GetMaxByteCount(line.Length);
            if (length > buffer.Length)
            {
                buffer = new byte[length];
            }

            var bytes = buffer.AsSpan(0, Encoding.UTF8.GetBytes(line, buffer));
            count++;
            unchecked
            {
                sum64 += XxHash64.HashToUInt64(bytes);
                sum3 += XxHash3.HashToUInt64(bytes);
            }
        }

        return new LinesFingerprint(count, sum64, sum3);
    }
}
