using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Platform.Connectors;
using Platform.Connectors.Redis;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;
using StackExchange.Redis;

namespace Platform.Tests.Connectors;

/// <summary>Reads entry <c>value</c> as an integer (a source of a type other than string needs a deserializer).</summary>
[GenerateSerializer, Alias("tests.IntValueDeserializer")]
public sealed class IntValueDeserializer : IRedisStreamDeserializer<int>
{
    /// <inheritdoc />
    public int Deserialize(string streamKey, StreamEntry entry) => int.Parse((string)entry["value"]!, CultureInfo.InvariantCulture);
}

/// <summary>
/// The Redis Streams source and sink against a real redis-server: the source's split positions across restores at other
/// parallelisms, and the sink's two-phase commit driven as the runtime drives it, with crashes in between.
/// </summary>
public sealed class RedisStreamTests(RedisServerFixture redis) : IClassFixture<RedisServerFixture>, IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private static readonly IServiceProvider Services = new ServiceCollection().AddLogging().BuildServiceProvider();
    private readonly string _run = Guid.NewGuid().ToString("N")[..8];
    private ConnectionMultiplexer _connection = null!;

    private IDatabase Database => _connection.GetDatabase();

    public async Task InitializeAsync() => _connection = await ConnectionMultiplexer.ConnectAsync(redis.Server.ConnectionString);

    public async Task DisposeAsync() => await _connection.DisposeAsync();

    // ---- source ----

    [Theory]
    [InlineData(2, 3)]
    [InlineData(3, 1)]
    [InlineData(2, 2)]
    [InlineData(1, 4)]
    public async Task Source_reads_every_entry_exactly_once_across_a_restore_at_another_parallelism(int before, int after)
    {
        var lengths = new[] { 0, 1, 250, 1000, 1777 };
        var keys = lengths.Select((_, i) => $"{_run}:in:{i}").ToList();
        var expected = new List<string>();
        for (var s = 0; s < keys.Count; s++)
        {
            expected.AddRange(await AddAsync(keys[s], Enumerable.Range(0, lengths[s]).Select(i => $"{keys[s]}/{i}")));
        }

        var source = new RedisStreamSource<string>
        {
            ConnectionString = redis.Server.ConnectionString,
            StreamKeys = keys,
            Boundedness = RedisStreamBoundedness.LatestAtStart,
            BatchSize = 300,
        };

        // First attempt: each subtask reads some records, checkpoints (between two records), reads on and crashes.
        var output = new List<string>();
        var checkpoint = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < before; i++)
        {
            var reader = source.CreateReader(SourceContext(i, before));
            var read = await ReadAsync(reader, max: 300 + (97 * i));
            output.AddRange(read.Records);
            Assert.Equal(read.Records.Count, reader.Offset);
            foreach (var (split, position) in ((ISplitPositionsReader)reader).SplitPositions)
            {
                checkpoint.Add(split, position);
            }

            _ = await ReadAsync(reader, max: 50); // After the checkpoint: lost with the crash, read again below.
        }

        Assert.NotEmpty(output);
        Assert.True(output.Count < expected.Count, "the first attempt must stop before the end for the restore to mean anything");

        // Second attempt, at another parallelism, from the union of the checkpointed positions.
        for (var i = 0; i < after; i++)
        {
            using var reader = source.CreateReader(SourceContext(i, after, checkpoint));
            var read = await ReadAsync(reader);
            Assert.True(read.Ended, $"subtask {i} of {after} reached the end of its bounded splits");
            output.AddRange(read.Records);
        }

        Assert.Equal(expected.Order(StringComparer.Ordinal), output.Order(StringComparer.Ordinal));

        // Per stream, in entry order.
        foreach (var key in keys)
        {
            var ofStream = output.Where(r => r.StartsWith(key + "/", StringComparison.Ordinal)).ToList();
            Assert.Equal(expected.Where(r => r.StartsWith(key + "/", StringComparison.Ordinal)), ofStream);
        }
    }

    [Fact]
    public async Task Restored_source_continues_strictly_after_the_checkpointed_entry_id()
    {
        var key = $"{_run}:in";
        await AddAsync(key, Enumerable.Range(0, 10).Select(i => $"r{i}"));
        var ids = (await Database.StreamRangeAsync(key)).Select(e => (string)e.Id!).ToList();
        var source = new RedisStreamSource<string> { ConnectionString = redis.Server.ConnectionString, StreamKeys = [key], Boundedness = RedisStreamBoundedness.LatestAtStart };

        using var reader = source.CreateReader(SourceContext(0, 1, new Dictionary<string, string> { [key] = ids[3] }, startOffset: 4));
        var read = await ReadAsync(reader);

        Assert.Equal(Enumerable.Range(4, 6).Select(i => $"r{i}"), read.Records);
        Assert.Equal(10, reader.Offset);
        Assert.Equal(ids[9], ((ISplitPositionsReader)reader).SplitPositions[key]);
    }

    [Fact]
    public async Task Unbounded_source_answers_nothing_available_when_caught_up_and_reads_entries_added_later()
    {
        var key = $"{_run}:in";
        await AddAsync(key, Enumerable.Range(0, 10).Select(i => $"a{i}"));
        var source = new RedisStreamSource<string> { ConnectionString = redis.Server.ConnectionString, StreamKeys = [key] };
        Assert.False(source.IsBounded);

        using var reader = source.CreateReader(SourceContext(0, 1));
        var first = await ReadAsync(reader, max: 10);
        Assert.Equal(ReadStatus.NothingAvailable, reader.TryRead(out _));

        await AddAsync(key, Enumerable.Range(10, 5).Select(i => $"a{i}"));
        var second = await ReadAsync(reader, max: 5);

        Assert.Equal(Enumerable.Range(0, 15).Select(i => $"a{i}"), first.Records.Concat(second.Records));
        Assert.False(first.Ended || second.Ended);
    }

    [Fact]
    public async Task Entry_count_bound_waits_for_that_many_entries_and_ends_after_them()
    {
        var key = $"{_run}:in";
        await AddAsync(key, Enumerable.Range(0, 30).Select(i => $"c{i}"));
        var source = new RedisStreamSource<string>
        {
            ConnectionString = redis.Server.ConnectionString,
            StreamKeys = [key],
            Boundedness = RedisStreamBoundedness.EntryCount,
            EntriesPerStream = 2_500,
            BatchSize = 700,
        };

        using var reader = source.CreateReader(SourceContext(0, 1));
        var first = await ReadAsync(reader, max: 30);
        Assert.Equal(ReadStatus.NothingAvailable, reader.TryRead(out _));

        await AddAsync(key, Enumerable.Range(30, 3_000).Select(i => $"c{i}"));
        var rest = await ReadAsync(reader);

        Assert.True(rest.Ended);
        Assert.Equal(Enumerable.Range(0, 2_500).Select(i => $"c{i}"), first.Records.Concat(rest.Records));
    }

    [Fact]
    public async Task Latest_at_start_bound_ignores_entries_added_after_the_first_read()
    {
        var key = $"{_run}:in";
        await AddAsync(key, Enumerable.Range(0, 20).Select(i => $"l{i}"));
        var source = new RedisStreamSource<string> { ConnectionString = redis.Server.ConnectionString, StreamKeys = [key], Boundedness = RedisStreamBoundedness.LatestAtStart, BatchSize = 5 };

        using var reader = source.CreateReader(SourceContext(0, 1));
        var first = await ReadAsync(reader, max: 1);
        await AddAsync(key, Enumerable.Range(20, 10).Select(i => $"l{i}"));
        var rest = await ReadAsync(reader);

        Assert.True(rest.Ended);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"l{i}"), first.Records.Concat(rest.Records));
    }

    [Fact]
    public async Task Latest_start_position_reads_only_entries_added_after_the_reader_started()
    {
        var key = $"{_run}:in";
        await AddAsync(key, Enumerable.Range(0, 10).Select(i => $"old{i}"));
        var source = new RedisStreamSource<string> { ConnectionString = redis.Server.ConnectionString, StreamKeys = [key], StartPosition = RedisStreamStartPosition.Latest };

        using var reader = source.CreateReader(SourceContext(0, 1));
        await Poll.UntilAsync(
            () => reader.TryRead(out _) == ReadStatus.NothingAvailable && ((ISplitPositionsReader)reader).SplitPositions.ContainsKey(key),
            Timeout,
            () => "the reader resolved the stream's latest entry as its start");
        await AddAsync(key, Enumerable.Range(0, 5).Select(i => $"new{i}"));
        var read = await ReadAsync(reader, max: 5);

        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"new{i}"), read.Records);
    }

    [Fact]
    public async Task Source_throws_a_poison_record_naming_the_stream_and_entry_it_cannot_deserialize_and_goes_on_after_it()
    {
        var key = $"{_run}:in";
        await Database.StreamAddAsync(key, "value", "1");
        var bad = await Database.StreamAddAsync(key, "value", "not a number");
        await Database.StreamAddAsync(key, "value", "3");
        var source = new RedisStreamSource<int> { ConnectionString = redis.Server.ConnectionString, StreamKeys = [key], Deserializer = new IntValueDeserializer(), Boundedness = RedisStreamBoundedness.LatestAtStart };

        using var reader = source.CreateReader(SourceContext(0, 1));
        var error = await Assert.ThrowsAsync<PoisonRecordException>(() => ReadAsync(reader));

        Assert.Equal((key, (string)bad!, "value=not a number"), (error.Split, error.Offset, error.RawRecord));
        Assert.Contains(key, error.Message, StringComparison.Ordinal);
        Assert.Contains((string)bad!, error.Message, StringComparison.Ordinal);
        Assert.Contains("'source'", error.Message, StringComparison.Ordinal);
        Assert.Equal((string)bad!, ((ISplitPositionsReader)reader).SplitPositions[key]); // Moved past it, so it can be skipped.
        Assert.Equal(["3"], (await ReadAsync(reader)).Records);
    }

    [Fact]
    public void Source_settings_are_checked()
    {
        var source = new RedisStreamSource<int> { ConnectionString = "127.0.0.1:1", StreamKeys = ["a", "b", "a"] };

        var problems = source.Validate().ToList();

        Assert.Contains(problems, p => p.Contains("'a' is listed 2 times", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("Deserializer", StringComparison.Ordinal));
        Assert.Throws<InvalidOperationException>(() => source.CreateReader(SourceContext(0, 1)));
    }

    // ---- sink ----

    [Fact]
    public async Task Sink_output_is_exactly_once_across_crashes_double_commits_and_older_restores()
    {
        var target = $"{_run}:out";
        var sink = Sink(target);
        var job = $"job:{_run}*";

        // Attempt 0, a fresh start.
        var writer0 = sink.CreatePrecommittingWriter(SinkContext(job, 0, attempt: 0));
        var committer0 = sink.CreateCommitter(SinkContext(job, 0, attempt: 0));
        await committer0.AbortLingeringTransactionsAsync([], default);
        await WriteAsync(writer0, 0, 100);
        Assert.Equal(0, await Database.StreamLengthAsync(target)); // Staged, not visible.
        var c1 = await writer0.PrepareCommitAsync(1, default);
        await WriteAsync(writer0, 100, 150);
        var c2 = await writer0.PrepareCommitAsync(2, default);
        Assert.Equal(new long[] { 100, 50 }, c1.Concat(c2).Select(c => c.Count));

        await committer0.CommitAsync(1, c1, default);
        await committer0.CommitAsync(1, c1, default); // A lost acknowledgement: committed twice.
        Assert.Equal(Values(0, 100), await TargetAsync(target));
        await WriteAsync(writer0, 150, 200); // The open transaction, flushed, when the process dies.

        // Attempt 1 restores from checkpoint 2, whose completion was never delivered: its state holds c1 and c2.
        var (writer1, committer1) = await RestoreAsync(sink, job, attempt: 1, (1, c1), (2, c2));
        Assert.Equal(Values(0, 150), await TargetAsync(target));
        Assert.Empty(await StagingKeysAsync(job));
        await WriteAsync(writer1, 150, 200);
        _ = await writer1.PrepareCommitAsync(3, default); // Pre-committed, but checkpoint 3 never completes.

        // Attempt 2 restores from checkpoint 2 again: checkpoint 3's transaction goes.
        var (writer2, committer2) = await RestoreAsync(sink, job, attempt: 2, (1, c1), (2, c2));
        Assert.Empty(await StagingKeysAsync(job));
        await WriteAsync(writer2, 150, 200);
        var c3 = await writer2.PrepareCommitAsync(3, default);
        await committer2.CommitAsync(3, c3, default);
        await writer2.DisposeAsync();
        await committer2.DisposeAsync();
        Assert.Equal(Values(0, 200), await TargetAsync(target));

        // Attempt 3 is restored from checkpoint 1, older than the last commit: nothing is appended again.
        _ = await RestoreAsync(sink, job, attempt: 3, (1, c1));
        Assert.Equal(Values(0, 200), await TargetAsync(target));

        var ttl = await Database.KeyTimeToLiveAsync(c1[0].MarkerKey);
        Assert.NotNull(ttl);
        Assert.InRange(ttl.Value, TimeSpan.FromDays(6.9), TimeSpan.FromDays(7));
        Assert.False(await Database.KeyExistsAsync(c1[0].StagingKey));
    }

    [Fact]
    public async Task Sink_commits_a_large_transaction_in_chunks_in_order()
    {
        var target = $"{_run}:out";
        var sink = Sink(target);
        sink.CommitChunkSize = 100;
        await using var writer = sink.CreatePrecommittingWriter(SinkContext("job", 0, attempt: 0));
        await using var committer = sink.CreateCommitter(SinkContext("job", 0, attempt: 0));
        await WriteAsync(writer, 0, 1_050);

        var committables = await writer.PrepareCommitAsync(1, default);
        await committer.CommitAsync(1, committables, default);
        await committer.CommitAsync(1, committables, default);

        Assert.Equal(Values(0, 1_050), await TargetAsync(target));
        Assert.Empty(await writer.PrepareCommitAsync(2, default)); // Nothing written since.
    }

    [Fact]
    public async Task Sink_commits_a_transaction_larger_than_one_lua_unpack_with_the_default_chunk_size()
    {
        // 12,000 entries: one run of the script moves 10,000, more than Lua's unpack takes at once.
        var target = $"{_run}:out";
        var sink = Sink(target);
        await using var writer = sink.CreatePrecommittingWriter(SinkContext("job", 0, attempt: 0));
        await using var committer = sink.CreateCommitter(SinkContext("job", 0, attempt: 0));
        await WriteAsync(writer, 0, 12_000);

        var committables = await writer.PrepareCommitAsync(1, default);
        await committer.CommitAsync(1, committables, default);

        Assert.Equal(Values(0, 12_000), await TargetAsync(target));
        Assert.False(await Database.KeyExistsAsync(committables[0].StagingKey));
    }

    [Fact]
    public async Task Sink_commit_cut_between_chunks_resumes_after_the_last_entry_moved()
    {
        var target = $"{_run}:out";
        var sink = Sink(target);
        sink.CommitChunkSize = 100;
        await using var writer = sink.CreatePrecommittingWriter(SinkContext("job", 0, attempt: 0));
        await WriteAsync(writer, 0, 1_000);
        var committables = await writer.PrepareCommitAsync(1, default);

        // As a process that died after three runs of the script left it: 300 entries moved, and how far it got.
        var staged = await Database.StreamRangeAsync(committables[0].StagingKey, count: 300);
        foreach (var entry in staged)
        {
            await Database.StreamAddAsync(target, entry.Values);
        }

        await Database.StringSetAsync(committables[0].MarkerKey + ":moved", (string)staged[^1].Id!);
        await using var committer = sink.CreateCommitter(SinkContext("job", 0, attempt: 1));
        await committer.CommitAsync(1, committables, default);

        Assert.Equal(Values(0, 1_000), await TargetAsync(target));
        Assert.False(await Database.KeyExistsAsync(committables[0].MarkerKey + ":moved"));
    }

    [Fact]
    public async Task Sink_commit_of_a_lost_transaction_fails_naming_it()
    {
        var sink = Sink($"{_run}:out");
        await using var writer = sink.CreatePrecommittingWriter(SinkContext("job", 0, attempt: 0));
        await using var committer = sink.CreateCommitter(SinkContext("job", 0, attempt: 0));
        await WriteAsync(writer, 0, 3);
        var committables = await writer.PrepareCommitAsync(1, default);
        await Database.KeyDeleteAsync(committables[0].StagingKey);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => committer.CommitAsync(1, committables, default));

        Assert.Contains(committables[0].StagingKey, error.Message, StringComparison.Ordinal);
        Assert.Contains("checkpoint 1", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, await Database.StreamLengthAsync($"{_run}:out"));
    }

    [Fact]
    public async Task Sink_abort_deletes_only_this_subtasks_lingering_transactions()
    {
        var sink = Sink($"{_run}:out");
        var job = $"job:{_run}";
        var others = new[] { SinkContext(job, 1, attempt: 0), SinkContext(job + "x", 0, attempt: 0), SinkContext(job + ":0", 0, attempt: 0) };
        foreach (var context in others.Append(SinkContext(job, 0, attempt: 0)))
        {
            var writer = sink.CreatePrecommittingWriter(context);
            await WriteAsync(writer, 0, 2);
            _ = await writer.PrepareCommitAsync(1, default);
            await WriteAsync(writer, 2, 4);
        }

        Assert.Equal(2, (await StagingKeysAsync(job, 0)).Count);
        var kept = (await StagingKeysAsync(job, 1)).Concat(await StagingKeysAsync(job + "x", 0)).Concat(await StagingKeysAsync(job + ":0", 0)).ToList();
        Assert.Equal(6, kept.Count);

        await using var committer = sink.CreateCommitter(SinkContext(job, 0, attempt: 1));
        await committer.AbortLingeringTransactionsAsync([], default);

        Assert.Empty(await StagingKeysAsync(job, 0));
        foreach (var key in kept)
        {
            Assert.True(await Database.KeyExistsAsync(key), $"{key} of another subtask or job survives");
        }
    }

    [Fact]
    public async Task Source_positions_and_sink_committables_in_one_checkpoint_give_exactly_once_output_across_a_crash()
    {
        var keys = Enumerable.Range(0, 3).Select(i => $"{_run}:in:{i}").ToList();
        var expected = new List<string>();
        foreach (var key in keys)
        {
            expected.AddRange(await AddAsync(key, Enumerable.Range(0, 1_500).Select(i => $"{key}/{i}")));
        }

        var target = $"{_run}:out";
        var source = new RedisStreamSource<string> { ConnectionString = redis.Server.ConnectionString, StreamKeys = keys, Boundedness = RedisStreamBoundedness.LatestAtStart, BatchSize = 200 };
        var sink = new RedisStreamSink<string> { ConnectionString = redis.Server.ConnectionString, StreamKey = target };
        const int parallelism = 2;
        var job = $"job-{_run}";

        // What the runtime keeps per completed checkpoint: every subtask's split positions, and its committables.
        var positions = new Dictionary<string, string>(StringComparer.Ordinal);
        var pending = new List<RedisStreamCommittable>[parallelism];
        long checkpoint = 0;

        // Attempt 0: three checkpoints complete; the fourth is pre-committed but never completes; then the process dies.
        var readers = Enumerable.Range(0, parallelism).Select(i => source.CreateReader(SourceContext(i, parallelism))).ToArray();
        var writers = Enumerable.Range(0, parallelism).Select(i => sink.CreatePrecommittingWriter(SinkContext(job, i, attempt: 0))).ToArray();
        var committers = Enumerable.Range(0, parallelism).Select(i => sink.CreateCommitter(SinkContext(job, i, attempt: 0))).ToArray();
        for (var n = 1; n <= 4; n++)
        {
            var taken = new Dictionary<string, string>(StringComparer.Ordinal);
            var committables = new List<RedisStreamCommittable>[parallelism];
            for (var i = 0; i < parallelism; i++)
            {
                foreach (var record in (await ReadAsync(readers[i], max: 211)).Records)
                {
                    writers[i].Write(record);
                }

                await writers[i].FlushAsync(default);
                foreach (var (split, position) in ((ISplitPositionsReader)readers[i]).SplitPositions)
                {
                    taken[split] = position;
                }

                committables[i] = [.. await writers[i].PrepareCommitAsync(n, default)];
            }

            if (n < 4)
            {
                positions = taken;
                pending = committables;
                checkpoint = n;
                for (var i = 0; i < parallelism; i++)
                {
                    // Subtask 1 never hears that checkpoint 3 completed.
                    if (n < 3 || i == 0)
                    {
                        await committers[i].CommitAsync(n, pending[i], default);
                    }
                }
            }
        }

        foreach (var writer in writers)
        {
            writer.Write("written after the last barrier, lost with the process");
            await writer.FlushAsync(default);
        }

        // Attempt 1 restores from checkpoint 3: commit its committables again, abort the rest, read on to the end.
        var output = new List<string>();
        for (var i = 0; i < parallelism; i++)
        {
            var context = SinkContext(job, i, attempt: 1, restoredCheckpoint: checkpoint);
            await using var committer = sink.CreateCommitter(context);
            await committer.CommitAsync(checkpoint, pending[i], default);
            await committer.AbortLingeringTransactionsAsync(pending[i], default);
            await using var writer = sink.CreatePrecommittingWriter(context);
            using var reader = source.CreateReader(SourceContext(i, parallelism, positions));
            var rest = await ReadAsync(reader);
            Assert.True(rest.Ended);
            foreach (var record in rest.Records)
            {
                writer.Write(record);
            }

            await writer.FinishAsync(default);
            await committer.CommitAsync(checkpoint + 1, await writer.PrepareCommitAsync(checkpoint + 1, default), default);
        }

        Assert.Equal(expected.Order(StringComparer.Ordinal), (await TargetAsync(target)).Order(StringComparer.Ordinal));
        Assert.Empty((await StagingKeysAsync(job, 0)).Concat(await StagingKeysAsync(job, 1)));
    }

    [Fact]
    public void Source_sink_and_committable_survive_the_orleans_serializer()
    {
        var serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Orleans.Serialization.Serializer>();
        var source = new RedisStreamSource<int>
        {
            ConnectionString = "127.0.0.1:6379",
            StreamKeys = ["a", "b"],
            Deserializer = new IntValueDeserializer(),
            Boundedness = RedisStreamBoundedness.EntryCount,
            EntriesPerStream = 12,
            StartPosition = RedisStreamStartPosition.Latest,
            BatchSize = 7,
        };
        var sink = new RedisStreamSink<int> { ConnectionString = "127.0.0.1:6379", StreamKey = "out", Serializer = new RedisStreamValueSerializer<int> { Field = "n" }, CommitChunkSize = 5 };
        var committable = new RedisStreamCommittable { StagingKey = "s", MarkerKey = "m", TargetStream = "t", Count = 3, CheckpointId = 9 };

        var source2 = Assert.IsType<RedisStreamSource<int>>(serializer.Deserialize<object>(serializer.SerializeToArray<object>(source)));
        var sink2 = Assert.IsType<RedisStreamSink<int>>(serializer.Deserialize<object>(serializer.SerializeToArray<object>(sink)));

        Assert.Equal(["a", "b"], source2.StreamKeys);
        Assert.IsType<IntValueDeserializer>(source2.Deserializer);
        Assert.Equal((RedisStreamBoundedness.EntryCount, 12L, RedisStreamStartPosition.Latest, 7), (source2.Boundedness, source2.EntriesPerStream, source2.StartPosition, source2.BatchSize));
        Assert.Equal("n", Assert.IsType<RedisStreamValueSerializer<int>>(sink2.Serializer).Field);
        Assert.Equal((sink.StreamKey, sink.CommitChunkSize, sink.MarkerTimeToLive), (sink2.StreamKey, sink2.CommitChunkSize, sink2.MarkerTimeToLive));
        Assert.Equal(committable, serializer.Deserialize<RedisStreamCommittable>(serializer.SerializeToArray(committable)));
    }

    [Fact]
    public async Task Sink_abort_after_a_change_to_fewer_subtasks_also_deletes_the_gone_subtasks_lingering_transactions()
    {
        var sink = Sink($"{_run}:out");
        var job = $"job:{_run}";
        for (var subtask = 0; subtask < 5; subtask++)
        {
            var writer = sink.CreatePrecommittingWriter(SinkContext(job, subtask, attempt: 0, parallelism: 5));
            await WriteAsync(writer, 0, 2);
        }

        // From 5 subtasks to 2: subtask 0 takes over 2 and 4, subtask 1 takes over 3.
        await using var committer = sink.CreateCommitter(SinkContext(job, 0, attempt: 1, parallelism: 2));
        await committer.AbortLingeringTransactionsAsync([], default);

        var left = await Task.WhenAll(Enumerable.Range(0, 5).Select(async s => (await StagingKeysAsync(job, s)).Count > 0));
        Assert.Equal(new[] { false, true, false, true, false }, left);
    }

    // ---- helpers ----

    private RedisStreamSink<int> Sink(string target) => new() { ConnectionString = redis.Server.ConnectionString, StreamKey = target };

    private static SourceReaderContext SourceContext(int subtask, int parallelism, IReadOnlyDictionary<string, string>? restored = null, long? startOffset = null) => new()
    {
        JobId = "job",
        OperatorName = "source",
        SubtaskIndex = subtask,
        Parallelism = parallelism,
        StartOffset = startOffset,
        RestoredSplitPositions = restored,
        Services = Services,
    };

    private static SinkWriterContext SinkContext(string job, int subtask, int attempt, long? restoredCheckpoint = null, int parallelism = 2) => new()
    {
        JobId = job,
        OperatorUid = "sink-uid",
        OperatorName = "sink",
        SubtaskIndex = subtask,
        Parallelism = parallelism,
        Attempt = attempt,
        RestoredCheckpointId = restoredCheckpoint,
        Services = Services,
    };

    /// <summary>As the runtime starts a restored subtask: commits each checkpoint's committables again, then aborts the rest.</summary>
    private static async Task<(IPrecommittingSinkWriter<int, RedisStreamCommittable> Writer, ISinkCommitter<RedisStreamCommittable> Committer)> RestoreAsync(
        RedisStreamSink<int> sink, string job, int attempt, params (long Checkpoint, IReadOnlyList<RedisStreamCommittable> Committables)[] state)
    {
        var context = SinkContext(job, 0, attempt, restoredCheckpoint: state.Max(s => s.Checkpoint));
        var writer = sink.CreatePrecommittingWriter(context);
        var committer = sink.CreateCommitter(context);
        foreach (var (checkpoint, committables) in state)
        {
            await committer.CommitAsync(checkpoint, committables, default);
        }

        await committer.AbortLingeringTransactionsAsync([.. state.SelectMany(s => s.Committables)], default);
        return (writer, committer);
    }

    private static async Task WriteAsync(IPrecommittingSinkWriter<int, RedisStreamCommittable> writer, int from, int to)
    {
        for (var i = from; i < to; i++)
        {
            writer.Write(i);
            if (i % 37 == 0)
            {
                await writer.FlushAsync(default);
            }
        }

        await writer.FlushAsync(default);
    }

    private static List<string> Values(int from, int to) => [.. Enumerable.Range(from, to - from).Select(i => i.ToString(CultureInfo.InvariantCulture))];

    private async Task<List<string>> TargetAsync(string target) => [.. (await Database.StreamRangeAsync(target)).Select(e => (string)e["value"]!)];

    private async Task<List<string>> StagingKeysAsync(string job, int subtask = 0)
    {
        var prefix = RedisStreamSink<int>.StagingPrefix("platform:redis-sink", job, "sink-uid", subtask);
        var server = _connection.GetServers().Single();
        var keys = new List<string>();
        await foreach (var key in server.KeysAsync(pattern: "platform:redis-sink:staging:*"))
        {
            if (((string)key!).StartsWith(prefix, StringComparison.Ordinal))
            {
                keys.Add((string)key!);
            }
        }

        return keys;
    }

    private async Task<List<string>> AddAsync(string key, IEnumerable<string> values)
    {
        // Pipelined on one connection: the server receives them in order.
        var added = values.ToList();
        await Task.WhenAll(added.Select(value => Database.StreamAddAsync(key, "value", value)));
        return added;
    }

    private static async Task<(List<string> Records, bool Ended)> ReadAsync<T>(ISourceReader<T> reader, int? max = null)
    {
        var records = new List<string>();
        var ended = false;
        await Poll.UntilAsync(
            () =>
            {
                while (max is null || records.Count < max)
                {
                    var status = reader.TryRead(out var record);
                    if (status == ReadStatus.Record)
                    {
                        records.Add(Convert.ToString(record, CultureInfo.InvariantCulture)!);
                        continue;
                    }

                    ended = status == ReadStatus.EndOfInput;
                    return ended;
                }

                return true;
            },
            Timeout,
            () => $"the reader read {(max is null ? "to the end" : $"{max} records")} (it read {records.Count})");
        return (records, ended);
    }
}
