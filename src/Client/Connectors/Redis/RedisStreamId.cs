using System.Globalization;

namespace Platform.Connectors.Redis;

/// <summary>A Redis stream entry id, <c>{milliseconds}-{sequence}</c>, ordered as the server orders them.</summary>
internal readonly record struct RedisStreamId(ulong Milliseconds, ulong Sequence) : IComparable<RedisStreamId>
{
    /// <summary>The id before every entry (<c>0-0</c>): reading strictly after it reads from the beginning.</summary>
    public static readonly RedisStreamId Zero = new(0, 0);

    /// <summary>Parses an id the server returned or a checkpoint holds.</summary>
    /// <exception cref="FormatException">It is not a complete entry id.</exception>
    public static RedisStreamId Parse(string text)
    {
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        if (dash > 0
            && ulong.TryParse(text.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var milliseconds)
            && ulong.TryParse(text.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var sequence))
        {
            return new RedisStreamId(milliseconds, sequence);
        }

        throw new FormatException($"'{text}' is not a Redis stream entry id (<milliseconds>-<sequence>).");
    }

    /// <inheritdoc />
    public int CompareTo(RedisStreamId other)
    {
        var byTime = Milliseconds.CompareTo(other.Milliseconds);
        return byTime != 0 ? byTime : Sequence.CompareTo(other.Sequence);
    }

    /// <summary>Whether <paramref name="left"/> comes after <paramref name="right"/>.</summary>
    public static bool operator >(RedisStreamId left, RedisStreamId right) => left.CompareTo(right) > 0;

    /// <summary>Whether <paramref name="left"/> comes before <paramref name="right"/>.</summary>
    public static bool operator <(RedisStreamId left, RedisStreamId right) => left.CompareTo(right) < 0;

    /// <summary>Whether <paramref name="left"/> is <paramref name="right"/> or after it.</summary>
    public static bool operator >=(RedisStreamId left, RedisStreamId right) => left.CompareTo(right) >= 0;

    /// <summary>Whether <paramref name="left"/> is <paramref name="right"/> or before it.</summary>
    public static bool operator <=(RedisStreamId left, RedisStreamId right) => left.CompareTo(right) <= 0;

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Milliseconds}-{Sequence}");
}
