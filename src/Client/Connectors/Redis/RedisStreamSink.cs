using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Platform.Connectors.Redis;

/// <summary>Turns a record into the fields of one Redis stream entry.</summary>
/// <typeparam name="T">The record type.</typeparam>
public interface IRedisStreamSerializer<in T>
{
    /// <summary>The fields of the entry that holds <paramref name="record"/>; at least one.</summary>
    NameValueEntry[] Serialize(T record);
}

/// <summary>Writes each record's invariant-culture text into one field (by default <c>value</c>).</summary>
/// <typeparam name="T">The record type.</typeparam>
[GenerateSerializer, Alias("platform.RedisStreamValueSerializer`1")]
public sealed class RedisStreamValueSerializer<T> : IRedisStreamSerializer<T>
{
    /// <summary>The field to write.</summary>
    [Id(0)] public string Field { get; set; } = "value";

    /// <inheritdoc />
    public NameValueEntry[] Serialize(T record) => [new(Field, Convert.ToString(record, CultureInfo.InvariantCulture) ?? "")];
}

/// <summary>
/// One pre-committed transaction of a <see cref="RedisStreamSink{T}"/>: the staging stream that holds its entries, and
/// where they go on commit. Stored in checkpoints.
/// </summary>
[GenerateSerializer, Alias("platform.RedisStreamCommittable")]
public sealed record RedisStreamCommittable
{
    /// <summary>The staging stream holding the transaction's entries until its commit.</summary>
    [Id(0)] public required string StagingKey { get; init; }

    /// <summary>The key whose presence says the transaction was committed.</summary>
    [Id(1)] public required string MarkerKey { get; init; }

    /// <summary>The stream the entries are appended to.</summary>
    [Id(2)] public required string TargetStream { get; init; }

    /// <summary>How many entries the transaction holds.</summary>
    [Id(3)] public required long Count { get; init; }

    /// <summary>The checkpoint the transaction was pre-committed for.</summary>
    [Id(4)] public required long CheckpointId { get; init; }
}

/// <summary>
/// Appends records to a Redis stream exactly once (a two-phase-commit sink). Between barriers a subtask stages its
/// records in a staging stream of its own (<c>{KeyPrefix}:staging:{job}:{sink uid}:{subtask}:{attempt}:{writer}:{sequence}</c>),
/// durable but invisible to readers of <see cref="StreamKey"/>. At a checkpoint's barrier the staging stream is closed
/// and becomes the checkpoint's committable; when the checkpoint completes, a Lua script moves its entries to
/// <see cref="StreamKey"/>, sets a commit marker and deletes the staging stream, so a second commit of the same
/// transaction finds the marker and does nothing.
/// </summary>
/// <remarks>
/// Each run of the script is atomic on the server and moves at most <see cref="CommitChunkSize"/> entries (so that a
/// large transaction does not stall the server) and records the id of the last entry it moved in
/// <c>{marker}:moved</c> in the same run, so a commit interrupted between chunks resumes exactly after it. Readers may see a large transaction appear in chunks. The
/// staging streams, the marker keys and <see cref="StreamKey"/> must live on one server (no Redis Cluster).
/// Commit markers and staging streams expire after <see cref="MarkerTimeToLive"/>: a checkpoint restored after that
/// long fails its commit (the staged entries are gone and no marker says they were appended) rather than writing twice.
/// Entry ids in the target are assigned by the server at commit time.
/// </remarks>
/// <typeparam name="T">The record type.</typeparam>
[GenerateSerializer, Alias("platform.RedisStreamSink`1")]
public sealed class RedisStreamSink<T> : ITwoPhaseCommittingSink<T, RedisStreamCommittable>, IValidatingFunction
{
    /// <summary>The StackExchange.Redis connection string, as the silos see the server (<c>127.0.0.1:6379</c>).</summary>
    [Id(0)] public string ConnectionString { get; set; } = "";

    /// <summary>The stream the committed records are appended to.</summary>
    [Id(1)] public string StreamKey { get; set; } = "";

    /// <summary>Turns records into entry fields; when <c>null</c>, each record's text goes into the field <c>value</c>.</summary>
    [Id(2)] public IRedisStreamSerializer<T>? Serializer { get; set; }

    /// <summary>How long commit markers (and staging streams not committed) are kept: the longest a checkpoint can be restored and committed again after.</summary>
    [Id(3)] public TimeSpan MarkerTimeToLive { get; set; } = TimeSpan.FromDays(7);

    /// <summary>The prefix of the staging and marker keys.</summary>
    [Id(4)] public string KeyPrefix { get; set; } = "platform:redis-sink";

    /// <summary>How many entries one run of the commit script moves.</summary>
    [Id(5)] public int CommitChunkSize { get; set; } = 10_000;

    /// <inheritdoc />
    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            yield return "The Redis stream sink has no connection string: set RedisStreamSink.ConnectionString (for example 127.0.0.1:6379).";
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
                problem = $"RedisStreamSink.ConnectionString is not a Redis connection string: {ex.Message}";
            }

            if (problem is not null)
            {
                yield return problem;
            }
        }

        if (string.IsNullOrEmpty(StreamKey))
        {
            yield return "The Redis stream sink has no stream: set RedisStreamSink.StreamKey.";
        }

        if (string.IsNullOrEmpty(KeyPrefix))
        {
            yield return "RedisStreamSink.KeyPrefix is empty; the staging keys need a prefix of their own.";
        }

        if (MarkerTimeToLive <= TimeSpan.Zero)
        {
            yield return $"RedisStreamSink.MarkerTimeToLive is {MarkerTimeToLive}; it must be positive (days, so that a restored checkpoint still finds its marker).";
        }

        if (CommitChunkSize <= 0)
        {
            yield return $"RedisStreamSink.CommitChunkSize is {CommitChunkSize}; it must be at least 1.";
        }
    }

    /// <summary>The prefix of every staging key of one subtask (what the abort on restore scans for).</summary>
    public static string StagingPrefix(string keyPrefix, string jobId, string sinkUid, int subtaskIndex) =>
        string.Create(CultureInfo.InvariantCulture, $"{SinkStagingPrefix(keyPrefix, jobId, sinkUid)}{subtaskIndex}:");

    private static string SinkStagingPrefix(string keyPrefix, string jobId, string sinkUid) =>
        $"{keyPrefix}:staging:{EscapePart(jobId)}:{EscapePart(sinkUid)}:";

    /// <inheritdoc />
    public IPrecommittingSinkWriter<T, RedisStreamCommittable> CreatePrecommittingWriter(SinkWriterContext context)
    {
        ThrowIfInvalid(context);
        return new Writer(this, context);
    }

    /// <inheritdoc />
    public ISinkCommitter<RedisStreamCommittable> CreateCommitter(SinkWriterContext context)
    {
        ThrowIfInvalid(context);
        return new Committer(this, context);
    }

    private void ThrowIfInvalid(SinkWriterContext context)
    {
        if (Validate().FirstOrDefault() is { } problem)
        {
            throw new InvalidOperationException($"Sink '{context.OperatorName}': {problem}");
        }
    }

    // Job ids and uids are free text: keep ':' as the separator, and '%' unambiguous.
    private static string EscapePart(string part) => part.Replace("%", "%25", StringComparison.Ordinal).Replace(":", "%3A", StringComparison.Ordinal);

    private static string MarkerKeyOf(string keyPrefix, string stagingKey) =>
        $"{keyPrefix}:committed:{stagingKey[(keyPrefix.Length + ":staging:".Length)..]}";

    private static ILogger LoggerOf(SinkWriterContext context) =>
        context.Services.GetService<ILoggerFactory>()?.CreateLogger("Platform.Connectors.Redis.RedisStreamSink") ?? NullLogger.Instance;

    private sealed class Writer : IPrecommittingSinkWriter<T, RedisStreamCommittable>
    {
        private readonly RedisStreamSink<T> _sink;
        private readonly SinkWriterContext _context;
        private readonly IRedisStreamSerializer<T> _serializer;
        private readonly RedisConnectionPool.Lease _lease;
        private readonly string _keyBase;
        private readonly List<NameValueEntry[]> _buffer = [];
        private long _sequence;
        private string? _stagingKey;
        private long _staged;

        public Writer(RedisStreamSink<T> sink, SinkWriterContext context)
        {
            _sink = sink;
            _context = context;
            _serializer = sink.Serializer ?? new RedisStreamValueSerializer<T>();

            // A random writer id keeps names unique even if a job id and attempt were ever used twice.
            var writer = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
            _keyBase = string.Create(CultureInfo.InvariantCulture, $"{StagingPrefix(sink.KeyPrefix, context.JobId, context.OperatorUid, context.SubtaskIndex)}{context.Attempt}:{writer}:");
            _lease = RedisConnectionPool.Acquire(sink.ConnectionString);
        }

        public void Write(T record) => _buffer.Add(_serializer.Serialize(record));

        public async ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            if (_buffer.Count == 0)
            {
                return;
            }

            _stagingKey ??= string.Create(CultureInfo.InvariantCulture, $"{_keyBase}{_sequence}");
            var database = (await _lease.GetAsync()).GetDatabase();
            var batch = database.CreateBatch();
            var adds = new Task[_buffer.Count + 1];
            for (var i = 0; i < _buffer.Count; i++)
            {
                adds[i] = batch.StreamAddAsync(_stagingKey, _buffer[i]);
            }

            // Staging left by a run that never comes back goes by itself.
            adds[^1] = batch.KeyExpireAsync(_stagingKey, _sink.MarkerTimeToLive);
            batch.Execute();
            try
            {
                await Task.WhenAll(adds);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                throw new IOException($"Sink '{_context.OperatorName}' (subtask {_context.SubtaskIndex}) cannot stage records in Redis stream '{_stagingKey}': {ex.Message}", ex);
            }

            _staged += _buffer.Count;
            _buffer.Clear();
        }

        public async ValueTask<IReadOnlyList<RedisStreamCommittable>> PrepareCommitAsync(long checkpointId, CancellationToken cancellationToken)
        {
            await FlushAsync(cancellationToken);
            if (_stagingKey is null)
            {
                return [];
            }

            var committable = new RedisStreamCommittable
            {
                StagingKey = _stagingKey,
                MarkerKey = MarkerKeyOf(_sink.KeyPrefix, _stagingKey),
                TargetStream = _sink.StreamKey,
                Count = _staged,
                CheckpointId = checkpointId,
            };
            _stagingKey = null;
            _staged = 0;
            _sequence++;
            return [committable];
        }

        public ValueTask FinishAsync(CancellationToken cancellationToken) => FlushAsync(cancellationToken);

        // Never commits: an open transaction stays staged until the next attempt aborts it (or it expires).
        public ValueTask DisposeAsync()
        {
            _lease.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    private sealed class Committer : ISinkCommitter<RedisStreamCommittable>
    {
        // KEYS: staging, marker, target, progress; ARGV: chunk size, time to live of marker and progress (ms), entry count.
        // Returns 1 when committed (now or before), 0 when entries are left to move, -1 when the transaction is lost.
        // The staging stream no longer changes once pre-committed, so the id of the last entry moved (progress) is where
        // the next run goes on; each run moves its chunk and records that id atomically.
        private const string CommitScript = """
            if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
            if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
            local chunk = tonumber(ARGV[1])
            local moved = redis.call('GET', KEYS[4])
            local entries = redis.call('XRANGE', KEYS[1], moved and ('(' .. moved) or '-', '+', 'COUNT', chunk)
            for _, entry in ipairs(entries) do
              redis.call('XADD', KEYS[3], '*', unpack(entry[2]))
            end
            if #entries < chunk then
              redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
              redis.call('DEL', KEYS[1], KEYS[4])
              return 1
            end
            redis.call('SET', KEYS[4], entries[#entries][1], 'PX', ARGV[2])
            return 0
            """;

        private readonly RedisStreamSink<T> _sink;
        private readonly SinkWriterContext _context;
        private readonly RedisConnectionPool.Lease _lease;
        private readonly ILogger _logger;

        public Committer(RedisStreamSink<T> sink, SinkWriterContext context)
        {
            _sink = sink;
            _context = context;
            _logger = LoggerOf(context);
            _lease = RedisConnectionPool.Acquire(sink.ConnectionString);
        }

        public async Task CommitAsync(long checkpointId, IReadOnlyList<RedisStreamCommittable> committables, CancellationToken cancellationToken)
        {
            var database = (await _lease.GetAsync()).GetDatabase();
            foreach (var committable in committables)
            {
                RedisKey[] keys = [committable.StagingKey, committable.MarkerKey, committable.TargetStream, committable.MarkerKey + ":moved"];
                RedisValue[] arguments = [_sink.CommitChunkSize, (long)_sink.MarkerTimeToLive.TotalMilliseconds, committable.Count];
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var outcome = (long)await database.ScriptEvaluateAsync(CommitScript, keys, arguments);
                    if (outcome == 1)
                    {
                        break;
                    }

                    if (outcome == -1)
                    {
                        throw new InvalidOperationException(
                            $"Sink '{_context.OperatorName}' (subtask {_context.SubtaskIndex}) cannot commit checkpoint {checkpointId}: the {committable.Count} entries staged in '{committable.StagingKey}' are gone " +
                            $"and no commit marker '{committable.MarkerKey}' says they were appended to '{committable.TargetStream}'. Either the Redis server lost its data, or the checkpoint is older than RedisStreamSink.MarkerTimeToLive ({_sink.MarkerTimeToLive}).");
                    }
                }

                RedisSinkLog.Committed(_logger, _context.OperatorName, _context.SubtaskIndex, checkpointId, committable.Count, committable.TargetStream);
            }
        }

        public async Task AbortLingeringTransactionsAsync(IReadOnlyCollection<RedisStreamCommittable> recovered, CancellationToken cancellationToken)
        {
            var keep = recovered.Select(c => c.StagingKey).ToHashSet(StringComparer.Ordinal);
            var sinkPrefix = SinkStagingPrefix(_sink.KeyPrefix, _context.JobId, _context.OperatorUid);
            var ownAttempt = string.Create(CultureInfo.InvariantCulture, $"{StagingPrefix(_sink.KeyPrefix, _context.JobId, _context.OperatorUid, _context.SubtaskIndex)}{_context.Attempt}:");
            var connection = await _lease.GetAsync();
            var database = connection.GetDatabase();
            var lingering = new List<RedisKey>();
            foreach (var server in connection.GetServers().Where(s => !s.IsReplica))
            {
                await foreach (var key in server.KeysAsync(database.Database, EscapeGlob(sinkPrefix) + "*", pageSize: 1000).WithCancellation(cancellationToken))
                {
                    var name = (string)key!;

                    // The current attempt's writer may already stage: its transactions are not lingering.
                    if (!keep.Contains(name) && !name.StartsWith(ownAttempt, StringComparison.Ordinal) && IsOurs(name[sinkPrefix.Length..]))
                    {
                        lingering.Add(key);
                    }
                }
            }

            if (lingering.Count > 0)
            {
                await database.KeyDeleteAsync([.. lingering]);
            }

            RedisSinkLog.Aborted(_logger, _context.OperatorName, _context.SubtaskIndex, lingering.Count, keep.Count);
        }

        public ValueTask DisposeAsync()
        {
            _lease.Dispose();
            return ValueTask.CompletedTask;
        }

        // This subtask's, and after a change to fewer subtasks those of gone subtasks j >= p with j mod p = i, whose
        // committables the runtime hands to this one.
        private bool IsOurs(string rest)
        {
            var colon = rest.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || !int.TryParse(rest.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var subtask))
            {
                return false;
            }

            var parallelism = _context.Parallelism;
            return subtask == _context.SubtaskIndex || (subtask >= parallelism && subtask % parallelism == _context.SubtaskIndex);
        }

        private static string EscapeGlob(string text)
        {
            var escaped = new StringBuilder(text.Length + 8);
            foreach (var c in text)
            {
                if (c is '*' or '?' or '[' or ']' or '\\')
                {
                    escaped.Append('\\');
                }

                escaped.Append(c);
            }

            return escaped.ToString();
        }
    }
}

/// <summary>The Redis stream sink's log messages.</summary>
internal static partial class RedisSinkLog
{
    [LoggerMessage(Level = LogLevel.Debug, Message = "Sink {Sink} subtask {Subtask} committed checkpoint {CheckpointId}: {Count} entries in {Stream}")]
    public static partial void Committed(ILogger logger, string sink, int subtask, long checkpointId, long count, string stream);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sink {Sink} subtask {Subtask} deleted {Deleted} lingering staging streams on start ({Recovered} recovered transactions kept)")]
    public static partial void Aborted(ILogger logger, string sink, int subtask, int deleted, int recovered);
}
