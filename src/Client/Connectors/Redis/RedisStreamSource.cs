using System.Diagnostics;
using StackExchange.Redis;

namespace Platform.Connectors.Redis;

/// <summary>Where a <see cref="RedisStreamSource{T}"/> ends.</summary>
[GenerateSerializer, Alias("platform.RedisStreamBoundedness")]
public enum RedisStreamBoundedness
{
    /// <summary>Never: the source waits for new entries forever.</summary>
    Unbounded = 0,

    /// <summary>
    /// Each stream ends at the last entry it held when the reader first read it. A restored reader resolves this again,
    /// so entries added in between are read too.
    /// </summary>
    LatestAtStart = 1,

    /// <summary>
    /// Each stream ends after its first <see cref="RedisStreamSource{T}.EntriesPerStream"/> entries (counted among the
    /// entries the stream holds, so trimming shifts it); the source waits until that many exist.
    /// </summary>
    EntryCount = 2,
}

/// <summary>Where a <see cref="RedisStreamSource{T}"/> starts reading a stream for which the checkpoint holds no position.</summary>
[GenerateSerializer, Alias("platform.RedisStreamStartPosition")]
public enum RedisStreamStartPosition
{
    /// <summary>At the stream's first entry.</summary>
    Earliest = 0,

    /// <summary>After the stream's last entry when the reader first reads it: only entries added later are read.</summary>
    Latest = 1,
}

/// <summary>Turns one Redis stream entry into a record.</summary>
/// <typeparam name="T">The record type.</typeparam>
public interface IRedisStreamDeserializer<out T>
{
    /// <summary>Deserializes <paramref name="entry"/> of stream <paramref name="streamKey"/>; throws when it cannot.</summary>
    T Deserialize(string streamKey, StreamEntry entry);
}

/// <summary>Reads one field of each entry (by default <c>value</c>) as a string.</summary>
[GenerateSerializer, Alias("platform.RedisStreamValueDeserializer")]
public sealed class RedisStreamValueDeserializer : IRedisStreamDeserializer<string>
{
    /// <summary>The field to read.</summary>
    [Id(0)] public string Field { get; set; } = "value";

    /// <inheritdoc />
    public string Deserialize(string streamKey, StreamEntry entry)
    {
        var value = entry[Field];
        return value.IsNull
            ? throw new InvalidDataException($"The entry has no field '{Field}' (it has {string.Join(", ", entry.Values.Select(v => $"'{v.Name}'"))}).")
            : (string)value!;
    }
}

/// <summary>
/// Reads Redis Streams (<c>XREAD</c> by entry id), one split per stream: subtask <c>i</c> of <c>p</c> reads the streams
/// whose index in <see cref="StreamKeys"/> is <c>i</c> modulo <c>p</c>. The position of a split is the id of the last
/// entry read from it; it is stored in every checkpoint (<see cref="ISplitPositionsReader"/>), and a restored reader,
/// at any parallelism, continues strictly after it. See docs/source-splits.md.
/// </summary>
/// <remarks>
/// <see cref="ISourceReader{T}.Offset"/> is the number of records the subtask read (carried over restores), for metrics
/// only: the split positions are what a restore resumes from. An entry the deserializer throws on is a poison record
/// (<see cref="PoisonRecordException"/>, naming the stream and entry id; the reader has moved past it). Reads never block: a batch is fetched in the background,
/// and <see cref="ISourceReader{T}.TryRead"/> answers <see cref="ReadStatus.NothingAvailable"/> while none is buffered.
/// </remarks>
/// <typeparam name="T">The record type.</typeparam>
[GenerateSerializer, Alias("platform.RedisStreamSource`1")]
public sealed class RedisStreamSource<T> : ISourceFunction<T>, IValidatingFunction
{
    /// <summary>The StackExchange.Redis connection string, as the silos see the server (<c>127.0.0.1:6379</c>).</summary>
    [Id(0)] public string ConnectionString { get; set; } = "";

    /// <summary>The streams to read, one split each; their order decides which subtask reads which.</summary>
    [Id(1)] public List<string> StreamKeys { get; set; } = [];

    /// <summary>Turns entries into records; when <c>null</c>, a source of strings reads the field <c>value</c>.</summary>
    [Id(2)] public IRedisStreamDeserializer<T>? Deserializer { get; set; }

    /// <summary>Where the source ends; <see cref="RedisStreamBoundedness.Unbounded"/> unless set.</summary>
    [Id(3)] public RedisStreamBoundedness Boundedness { get; set; }

    /// <summary>With <see cref="RedisStreamBoundedness.EntryCount"/>: how many entries of each stream are read.</summary>
    [Id(4)] public long EntriesPerStream { get; set; }

    /// <summary>Where a stream without a checkpointed position is read from.</summary>
    [Id(5)] public RedisStreamStartPosition StartPosition { get; set; }

    /// <summary>How many entries one <c>XREAD</c> fetches per stream.</summary>
    [Id(6)] public int BatchSize { get; set; } = 1000;

    /// <summary>How long a reader that found nothing new waits before it asks the server again.</summary>
    [Id(7)] public TimeSpan IdlePollInterval { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <inheritdoc />
    public bool IsBounded => Boundedness != RedisStreamBoundedness.Unbounded;

    /// <inheritdoc />
    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            yield return "The Redis stream source has no connection string: set RedisStreamSource.ConnectionString (for example 127.0.0.1:6379).";
        }
        else
        {
            string? problem = null;
            try
            {
                _ = ConfigurationOptions.Parse(ConnectionString);
            }
            catch (ArgumentException ex)
            {
                problem = $"RedisStreamSource.ConnectionString is not a Redis connection string: {ex.Message}";
            }

            if (problem is not null)
            {
                yield return problem;
            }
        }

        if (StreamKeys.Count == 0 || StreamKeys.Any(string.IsNullOrEmpty))
        {
            yield return "The Redis stream source needs at least one stream key in RedisStreamSource.StreamKeys, none empty.";
        }

        foreach (var duplicate in StreamKeys.GroupBy(k => k, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            yield return $"The Redis stream '{duplicate.Key}' is listed {duplicate.Count()} times in RedisStreamSource.StreamKeys; each stream is one split and must be listed once.";
        }

        if (Deserializer is null && typeof(T) != typeof(string))
        {
            yield return $"The Redis stream source of {typeof(T).Name} needs RedisStreamSource.Deserializer (only a source of strings has a default).";
        }

        if (BatchSize <= 0)
        {
            yield return $"RedisStreamSource.BatchSize is {BatchSize}; it must be at least 1.";
        }

        if (Boundedness == RedisStreamBoundedness.EntryCount && EntriesPerStream < 0)
        {
            yield return $"RedisStreamSource.EntriesPerStream is {EntriesPerStream}; it must not be negative.";
        }
    }

    /// <inheritdoc />
    public ISourceReader<T> CreateReader(SourceReaderContext context)
    {
        if (Validate().FirstOrDefault() is { } problem)
        {
            throw new InvalidOperationException($"Source '{context.OperatorName}': {problem}");
        }

        return new Reader(this, context);
    }

    /// <summary>One stream and where this reader is in it.</summary>
    private sealed class Split(string key)
    {
        public string Key { get; } = key;

        /// <summary>The id of the last entry returned; <c>null</c> until a <see cref="RedisStreamStartPosition.Latest"/> start is resolved.</summary>
        public RedisStreamId? Position { get; set; }

        /// <summary>The id of the last entry fetched into the buffer (the next fetch continues after it).</summary>
        public RedisStreamId Fetched { get; set; }

        /// <summary>Whether <see cref="Stop"/> is known.</summary>
        public bool StopResolved { get; set; }

        /// <summary>The last entry to read (bounded sources); <c>null</c> once resolved means nothing at all.</summary>
        public RedisStreamId? Stop { get; set; }

        public bool Exhausted => StopResolved && (Stop is not { } stop || Position >= stop);

        public bool FetchedAll => StopResolved && (Stop is not { } stop || Fetched >= stop);
    }

    private sealed record FetchRequest(string[] ResolveStart, (string Key, RedisStreamId After)[] Read, string[] ResolveStop);

    private sealed record FetchResult(
        Dictionary<string, RedisStreamId> Starts,
        RedisStream[] Streams,
        Dictionary<string, RedisStreamId?> Stops);

    private sealed class Reader : ISourceReader<T>, ISplitPositionsReader
    {
        // The n-th entry's id, or nil while the stream holds fewer; pages so that the server's memory stays small.
        private const string NthEntryIdScript = """
            local n = tonumber(ARGV[1])
            if redis.call('XLEN', KEYS[1]) < n then return false end
            local start = '-'
            local last = false
            while n > 0 do
              local entries = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', math.min(n, 1000))
              if #entries == 0 then return false end
              last = entries[#entries][1]
              n = n - #entries
              start = '(' .. last
            end
            return last
            """;

        private readonly RedisStreamSource<T> _source;
        private readonly SourceReaderContext _context;
        private readonly IRedisStreamDeserializer<T> _deserializer;
        private readonly RedisConnectionPool.Lease _lease;
        private readonly Dictionary<string, Split> _splits = new(StringComparer.Ordinal);
        private readonly Queue<(Split Split, StreamEntry Entry)> _buffer = new();
        private readonly long _idlePollTicks;
        private Task<FetchResult>? _fetch;
        private long _nextFetchTimestamp;
        private long _offset;

        public Reader(RedisStreamSource<T> source, SourceReaderContext context)
        {
            _source = source;
            _context = context;
            _deserializer = source.Deserializer ?? (IRedisStreamDeserializer<T>)(object)new RedisStreamValueDeserializer();
            _offset = context.StartOffset ?? 0;
            _idlePollTicks = (long)(source.IdlePollInterval.TotalSeconds * Stopwatch.Frequency);
            for (var i = context.SubtaskIndex; i < source.StreamKeys.Count; i += context.Parallelism)
            {
                var split = new Split(source.StreamKeys[i]);
                if (context.RestoredSplitPositions?.TryGetValue(split.Key, out var restored) == true)
                {
                    try
                    {
                        split.Position = RedisStreamId.Parse(restored);
                    }
                    catch (FormatException ex)
                    {
                        throw new InvalidOperationException($"Source '{context.OperatorName}': the checkpointed position of Redis stream '{split.Key}' is unreadable: {ex.Message}", ex);
                    }
                }
                else if (source.StartPosition == RedisStreamStartPosition.Earliest)
                {
                    split.Position = RedisStreamId.Zero;
                }

                split.Fetched = split.Position ?? RedisStreamId.Zero;
                if (source.Boundedness == RedisStreamBoundedness.EntryCount && source.EntriesPerStream == 0)
                {
                    split.StopResolved = true; // With no stop: nothing to read.
                }

                _splits.Add(split.Key, split);
            }

            _lease = RedisConnectionPool.Acquire(source.ConnectionString);
        }

        /// <summary>The number of records this subtask read, across restores; not a position (see the split positions).</summary>
        public long Offset => _offset;

        /// <inheritdoc />
        public IReadOnlyDictionary<string, string> SplitPositions =>
            _splits.Values.Where(s => s.Position is not null).ToDictionary(s => s.Key, s => s.Position!.Value.ToString(), StringComparer.Ordinal);

        /// <inheritdoc />
        public ReadStatus TryRead(out T record)
        {
            if (_fetch is { IsCompleted: true } done)
            {
                _fetch = null;
                Apply(done);
            }

            if (_buffer.TryDequeue(out var next))
            {
                // Past the entry whether it reads or not: a poison record policy of Skip goes on after it.
                next.Split.Position = RedisStreamId.Parse((string)next.Entry.Id!);
                _offset++;
                StartFetchIfDue();
                try
                {
                    record = _deserializer.Deserialize(next.Split.Key, next.Entry);
                }
                catch (Exception ex)
                {
                    throw new PoisonRecordException(
                        next.Split.Key,
                        (string)next.Entry.Id!,
                        string.Join(", ", next.Entry.Values.Select(v => $"{v.Name}={v.Value}")),
                        $"Source '{_context.OperatorName}' (subtask {_context.SubtaskIndex}) cannot deserialize entry {next.Entry.Id} of Redis stream '{next.Split.Key}': {ex.Message}",
                        ex);
                }

                return ReadStatus.Record;
            }

            record = default!;
            if (_source.IsBounded && _splits.Values.All(s => s.Exhausted))
            {
                return ReadStatus.EndOfInput;
            }

            StartFetchIfDue();
            return ReadStatus.NothingAvailable;
        }

        private void StartFetchIfDue()
        {
            // One batch in reserve keeps the record loop fed while the next one travels.
            if (_fetch is not null || _buffer.Count >= _source.BatchSize || Stopwatch.GetTimestamp() < _nextFetchTimestamp)
            {
                return;
            }

            var bounded = _source.IsBounded;
            var resolveStart = _splits.Values.Where(s => s.Position is null).Select(s => s.Key).ToArray();
            var read = _splits.Values.Where(s => s.Position is not null && !(bounded && s.FetchedAll)).Select(s => (s.Key, s.Fetched)).ToArray();
            var resolveStop = bounded ? _splits.Values.Where(s => !s.StopResolved).Select(s => s.Key).ToArray() : [];
            if (resolveStart.Length == 0 && read.Length == 0 && resolveStop.Length == 0)
            {
                return;
            }

            _fetch = FetchAsync(new FetchRequest(resolveStart, read, resolveStop));
        }

        // Reads no reader state: it runs beside the record loop, and only TryRead applies its result.
        private async Task<FetchResult> FetchAsync(FetchRequest request)
        {
            var database = (await _lease.GetAsync()).GetDatabase();
            var starts = new Dictionary<string, RedisStreamId>(StringComparer.Ordinal);
            foreach (var (key, latest) in await Task.WhenAll(request.ResolveStart.Select(async key => (key, await LatestAsync(database, key)))))
            {
                starts[key] = latest ?? RedisStreamId.Zero;
            }

            RedisStream[] streams = request.Read.Length == 0
                ? []
                : await database.StreamReadAsync([.. request.Read.Select(r => new StreamPosition(r.Key, r.After.ToString()))], _source.BatchSize);

            // Resolved after the read, so that everything the read returned existed when the stop was decided.
            var stops = new Dictionary<string, RedisStreamId?>(StringComparer.Ordinal);
            foreach (var (key, stop, resolved) in await Task.WhenAll(request.ResolveStop.Select(key => ResolveStopAsync(database, key))))
            {
                if (resolved)
                {
                    stops[key] = stop;
                }
            }

            return new FetchResult(starts, streams, stops);
        }

        private static async Task<RedisStreamId?> LatestAsync(IDatabase database, string key)
        {
            var last = await database.StreamRangeAsync(key, count: 1, messageOrder: Order.Descending);
            return last.Length == 0 ? null : RedisStreamId.Parse((string)last[0].Id!);
        }

        private async Task<(string Key, RedisStreamId? Stop, bool Resolved)> ResolveStopAsync(IDatabase database, string key)
        {
            if (_source.Boundedness == RedisStreamBoundedness.LatestAtStart)
            {
                return (key, await LatestAsync(database, key), true);
            }

            var nth = await database.ScriptEvaluateAsync(NthEntryIdScript, [key], [_source.EntriesPerStream]);
            return nth.IsNull ? (key, null, false) : (key, RedisStreamId.Parse((string)nth!), true);
        }

        private void Apply(Task<FetchResult> fetch)
        {
            if (!fetch.IsCompletedSuccessfully)
            {
                var error = fetch.Exception?.GetBaseException() ?? new OperationCanceledException("The fetch was cancelled.");
                throw new IOException(
                    $"Source '{_context.OperatorName}' (subtask {_context.SubtaskIndex}) cannot read Redis streams {string.Join(", ", _splits.Keys.Select(k => $"'{k}'"))}: {error.Message}",
                    error);
            }

            var result = fetch.Result;
            foreach (var (key, start) in result.Starts)
            {
                var split = _splits[key];
                split.Position = start;
                split.Fetched = start;
            }

            foreach (var (key, stop) in result.Stops)
            {
                _splits[key].StopResolved = true;
                _splits[key].Stop = stop;
            }

            var fetched = 0;
            foreach (var stream in result.Streams)
            {
                var split = _splits[(string)stream.Key!];
                foreach (var entry in stream.Entries)
                {
                    var id = RedisStreamId.Parse((string)entry.Id!);
                    if (id <= split.Fetched || (split.StopResolved && (split.Stop is not { } stop || id > stop)))
                    {
                        continue; // Beyond the end of a bounded split.
                    }

                    split.Fetched = id;
                    _buffer.Enqueue((split, entry));
                    fetched++;
                }
            }

            // Nothing new: wait a little before asking again, rather than spinning on the server.
            _nextFetchTimestamp = fetched == 0 && result.Starts.Count == 0 && result.Stops.Count == 0
                ? Stopwatch.GetTimestamp() + _idlePollTicks
                : 0;
        }

        public void Dispose()
        {
            // A fetch still under way must not surface as an unobserved exception once its connection closes.
            _fetch?.ContinueWith(static f => _ = f.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            _lease.Dispose();
        }
    }
}
