using System.Text.Json.Serialization;

namespace Platform.Nexmark;

/// <summary>A person who sells or bids (Nexmark's <c>Person</c>); times are milliseconds since the Unix epoch.</summary>
[GenerateSerializer, Immutable, Alias("platform.nexmark.Person")]
public sealed record Person(
    [property: Id(0)] long Id,
    [property: Id(1)] string Name,
    [property: Id(2)] string EmailAddress,
    [property: Id(3)] string CreditCard,
    [property: Id(4)] string City,
    [property: Id(5)] string State,
    [property: Id(6)] long DateTime,
    [property: Id(7)] string Extra);

/// <summary>An item put up for auction (Nexmark's <c>Auction</c>).</summary>
[GenerateSerializer, Immutable, Alias("platform.nexmark.Auction")]
public sealed record Auction(
    [property: Id(0)] long Id,
    [property: Id(1)] string ItemName,
    [property: Id(2)] string Description,
    [property: Id(3)] long InitialBid,
    [property: Id(4)] long Reserve,
    [property: Id(5)] long DateTime,
    [property: Id(6)] long Expires,
    [property: Id(7)] long Seller,
    [property: Id(8)] long Category,
    [property: Id(9)] string Extra);

/// <summary>A bid for an auction (Nexmark's <c>Bid</c>).</summary>
[GenerateSerializer, Immutable, Alias("platform.nexmark.Bid")]
public sealed record Bid(
    [property: Id(0)] long Auction,
    [property: Id(1)] long Bidder,
    [property: Id(2)] long Price,
    [property: Id(3)] string Channel,
    [property: Id(4)] string Url,
    [property: Id(5)] long DateTime,
    [property: Id(6)] string Extra);

/// <summary>The kind of a <see cref="NexmarkEvent"/>.</summary>
[GenerateSerializer, Alias("platform.nexmark.EventType")]
public enum NexmarkEventType
{
    /// <summary>A new person.</summary>
    Person,

    /// <summary>A new auction.</summary>
    Auction,

    /// <summary>A bid.</summary>
    Bid,
}

/// <summary>One Nexmark event: exactly one of <see cref="Person"/>, <see cref="Auction"/> and <see cref="Bid"/> is set (Nexmark's <c>Event</c>).</summary>
[GenerateSerializer, Immutable, Alias("platform.nexmark.Event")]
public sealed record NexmarkEvent(
    [property: Id(0)] Person? Person = null,
    [property: Id(1)] Auction? Auction = null,
    [property: Id(2)] Bid? Bid = null)
{
    /// <summary>Which of the three the event is.</summary>
    [JsonIgnore]
    public NexmarkEventType Type => Person is not null ? NexmarkEventType.Person : Auction is not null ? NexmarkEventType.Auction : NexmarkEventType.Bid;

    /// <summary>The event's time (its person's, auction's or bid's <c>DateTime</c>).</summary>
    [JsonIgnore]
    public long DateTime => Person?.DateTime ?? Auction?.DateTime ?? Bid?.DateTime
        ?? throw new InvalidOperationException("A Nexmark event holds a person, an auction or a bid; this one holds none.");
}

/// <summary>JSON for Nexmark events and query results: camelCase fields, nulls left out (one event per line in files).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(NexmarkEvent))]
public sealed partial class NexmarkJson : JsonSerializerContext;
