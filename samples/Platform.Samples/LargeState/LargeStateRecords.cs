using System.Buffers.Binary;
using System.IO.Hashing;

namespace Platform.Samples.LargeState;

/// <summary>One visit of a key: the payload that becomes the key's state.</summary>
[GenerateSerializer, Immutable, Alias("samples.LargeState.Visit")]
public sealed record KeyVisit([property: Id(0)] long Key, [property: Id(1)] int Visit, [property: Id(2)] byte[] Payload);

/// <summary>What the job keeps per key: how often it was visited, a checksum chained over every payload, and the latest payload.</summary>
[GenerateSerializer, Immutable, Alias("samples.LargeState.Entry")]
public sealed record KeyEntry([property: Id(0)] int Visits, [property: Id(1)] ulong Checksum, [property: Id(2)] byte[] Payload);

/// <summary>A key's final state, reduced to a digest when its last visit was applied.</summary>
[GenerateSerializer, Immutable, Alias("samples.LargeState.KeyDigest")]
public sealed record KeyDigest([property: Id(0)] long Key, [property: Id(1)] int Visits, [property: Id(2)] ulong Digest);

/// <summary>The final states of every key of one bucket (<c>key mod buckets</c>): how many keys, visits, and the sum of their digests.</summary>
[GenerateSerializer, Immutable, Alias("samples.LargeState.Summary")]
public sealed record BucketSummary([property: Id(0)] int Bucket, [property: Id(1)] long Keys, [property: Id(2)] long Visits, [property: Id(3)] ulong DigestSum);

/// <summary>
/// The deterministic data of the large-state job, so that a test can compute the expected result on its own: payloads
/// are pseudo-random bytes (they do not compress, so state on disk is as large as it looks).
/// </summary>
public static class LargeStateData
{
    /// <summary>The payload of visit <paramref name="visit"/> of key <paramref name="key"/>: <paramref name="size"/> pseudo-random bytes.</summary>
    public static byte[] Payload(long key, int visit, int size)
    {
        var payload = new byte[size];
        var state = ((ulong)key * 0x9E3779B97F4A7C15UL) ^ ((ulong)visit << 48) ^ 0xD1B54A32D192ED03UL;
        var span = payload.AsSpan();
        while (span.Length >= sizeof(ulong))
        {
            BinaryPrimitives.WriteUInt64LittleEndian(span, SplitMix64(ref state));
            span = span[sizeof(ulong)..];
        }

        if (span.Length > 0)
        {
            Span<byte> last = stackalloc byte[sizeof(ulong)];
            BinaryPrimitives.WriteUInt64LittleEndian(last, SplitMix64(ref state));
            last[..span.Length].CopyTo(span);
        }

        return payload;
    }

    /// <summary>The checksum after a visit with <paramref name="payload"/>; the chain starts at <see cref="InitialChecksum"/>, so order matters.</summary>
    public static ulong ChainChecksum(ulong previous, ReadOnlySpan<byte> payload) => XxHash64.HashToUInt64(payload, unchecked((long)previous));

    /// <summary>The checksum of a key before its first visit.</summary>
    public static ulong InitialChecksum(long key) => unchecked((ulong)key * 0xC2B2AE3D27D4EB4FUL);

    /// <summary>The digest of a key's final state.</summary>
    public static ulong Digest(long key, KeyEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var seed = unchecked((long)(entry.Checksum ^ ((ulong)key * 0x9E3779B97F4A7C15UL) ^ (ulong)entry.Visits));
        return XxHash64.HashToUInt64(entry.Payload, seed);
    }

    /// <summary>How many of the keys <c>0 .. keys-1</c> fall into <paramref name="bucket"/> of <paramref name="buckets"/>.</summary>
    public static long KeysInBucket(long keys, int buckets, int bucket) => (keys / buckets) + (bucket < keys % buckets ? 1 : 0);

    /// <summary>The bucket of <paramref name="key"/>.</summary>
    public static int BucketOf(long key, int buckets) => (int)(key % buckets);

    private static ulong SplitMix64(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
