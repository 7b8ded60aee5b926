using System.Globalization;
using Platform.Samples.ExactlyOnce;

namespace Platform.Benchmarks.ExactlyOnce;

/// <summary>
/// The known input of the exactly-once benchmark and its ground truth. Record <c>seq</c> (0 ≤ seq &lt; records) goes to
/// stream <c>seq mod streams</c> and has a key of that stream's own (key <c>k{j·streams + stream}</c>, j skewed towards
/// 0: j = ⌊u³ · keysPerStream⌋ for a hash u of seq in [0, 1)), so each key is read from one stream, in sequence order,
/// and its i-th record must come out with count i whatever the interleaving of streams.
/// </summary>
internal sealed class KeyedInput
{
    private readonly string[] _keys;
    private readonly long[] _ranks;

    public KeyedInput(long records, int streams, int keys)
    {
        if (records % streams != 0)
        {
            throw new FormatException($"--records ({records:N0}) must be a multiple of --streams ({streams}): every stream ends after the same number of entries.");
        }

        if (keys < streams)
        {
            throw new FormatException($"--keys ({keys}) must be at least --streams ({streams}): every stream has keys of its own.");
        }

        Records = records;
        Streams = streams;
        var keysPerStream = keys / streams;
        Keys = keysPerStream * streams;
        _keys = new string[records];
        _ranks = new long[records];
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        for (long seq = 0; seq < records; seq++)
        {
            var stream = (int)(seq % streams);
            var u = (Mix((ulong)seq) >> 11) * (1.0 / (1UL << 53));
            var j = Math.Min(keysPerStream - 1, (int)(u * u * u * keysPerStream));
            var key = "k" + ((j * streams) + stream).ToString(CultureInfo.InvariantCulture);
            _keys[seq] = key;
            counts[key] = _ranks[seq] = counts.GetValueOrDefault(key) + 1;
        }

        HottestKeyRecords = counts.Values.Max();
        DistinctKeysUsed = counts.Count;
    }

    public long Records { get; }

    public int Streams { get; }

    /// <summary>Keys that records may have (a multiple of the streams).</summary>
    public int Keys { get; }

    /// <summary>Keys that records do have.</summary>
    public int DistinctKeysUsed { get; }

    /// <summary>Records of the most frequent key (the skew).</summary>
    public long HottestKeyRecords { get; }

    public long EntriesPerStream => Records / Streams;

    public string KeyOf(long seq) => _keys[seq];

    public int StreamOf(long seq) => (int)(seq % Streams);

    /// <summary>Compares a sink's committed output with the ground truth: one output per input, with the input's key and its rank in the key.</summary>
    public SinkCheck Check(IEnumerable<KeyedRunningCount> output)
    {
        var seen = new int[Records];
        long lines = 0;
        long unexpected = 0;
        foreach (var record in output)
        {
            lines++;
            if (record.Seq < 0 || record.Seq >= Records || record.Key != _keys[record.Seq] || record.Count != _ranks[record.Seq])
            {
                unexpected++;
                continue;
            }

            seen[record.Seq]++;
        }

        long duplicates = 0;
        long missing = 0;
        foreach (var n in seen)
        {
            if (n == 0)
            {
                missing++;
            }
            else
            {
                duplicates += n - 1;
            }
        }

        return new SinkCheck(lines, duplicates, missing, unexpected);
    }

    // SplitMix64's finalizer: a well-spread, deterministic hash of the sequence number.
    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>What one sink committed against the ground truth.</summary>
/// <param name="Records">Outputs committed.</param>
/// <param name="Duplicates">Outputs beyond one per expected output.</param>
/// <param name="Missing">Expected outputs absent.</param>
/// <param name="Unexpected">Outputs that are no expected output (a wrong key or count, an unknown sequence number).</param>
internal sealed record SinkCheck(long Records, long Duplicates, long Missing, long Unexpected)
{
    public bool Exact => Duplicates == 0 && Missing == 0 && Unexpected == 0;
}
