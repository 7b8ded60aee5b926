using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Serialization;
using Platform.Connectors;
using Platform.Connectors.Postgres;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Connectors;

/// <summary>A record the PostgreSQL sink tests write: its properties map to the columns <c>word</c> and <c>count</c>.</summary>
public sealed record PgWord(string Word, long Count);

/// <summary>Maps a <see cref="PgWord"/> to (word, count), doubling nothing: the mapper the tests serialize into a sink.</summary>
[GenerateSerializer, Alias("platform.tests.PgWordRowMapper")]
public sealed class PgWordRowMapper : IPostgresRowMapper<PgWord>
{
    /// <summary>A prefix put before every word, to show that the mapper (not the properties) made the row.</summary>
    [Id(0)] public string Prefix { get; set; } = "";

    /// <inheritdoc />
    public object?[] Map(PgWord record) => [Prefix + record.Word, record.Count];
}

/// <summary>
/// The PostgreSQL sink's writer and committer on a real server, driven through the two-phase-commit protocol by hand,
/// with crashes (a writer dropped and its connection killed, as when its process dies). One suite, both schemes.
/// </summary>
public abstract class PostgresSinkTests(PostgresServer server, PostgresCommitScheme expectedScheme)
{
    private const string SinkUid = "pg-sink";
    private static readonly IServiceProvider Services = new ServiceCollection().AddSerializer().AddLogging().BuildServiceProvider();
    private readonly string _job = $"job-{Guid.NewGuid():N}";

    [Fact]
    public async Task Rows_are_invisible_until_their_checkpoint_commits()
    {
        var table = await CreateTableAsync(primaryKey: false);
        var sink = Sink(table, PostgresSinkMode.Append);
        var logs = new LogCapture();
        var services = new ServiceCollection().AddLogging(logging => logging.AddProvider(logs)).BuildServiceProvider();
        await using var writer = sink.CreatePrecommittingWriter(Context(attempt: 1, services: services));
        await using var committer = sink.CreateCommitter(Context(attempt: 1, services: services));
        await committer.AbortLingeringTransactionsAsync([], default);
        Assert.Contains(logs.Messages, m => m.Contains($"exactly-once by {expectedScheme}", StringComparison.Ordinal));

        WriteRange(writer, 0, 250);
        await writer.FlushAsync(default);
        Assert.Equal(0L, await CountAsync(table));

        var committables = await writer.PrepareCommitAsync(1, default);
        var committable = Assert.Single(committables);
        Assert.Equal(expectedScheme, committable.Scheme);
        Assert.Equal(250, committable.RecordCount);
        Assert.StartsWith($"platform:{_job}:{SinkUid}:0:a1.", committable.TransactionId, StringComparison.Ordinal);
        Assert.Equal(0L, await CountAsync(table));
        Assert.Empty(await writer.PrepareCommitAsync(2, default));

        await committer.CommitAsync(1, committables, default);
        Assert.Equal(Range(0, 250), await ReadAsync(table));
    }

    [Fact]
    public async Task Upsert_keeps_the_last_record_of_each_key_across_checkpoints()
    {
        var table = await CreateTableAsync(primaryKey: true);
        await server.ExecuteAsync($"INSERT INTO {table} (word, count) VALUES ('w-a', 100)");
        var serializer = Services.GetRequiredService<Serializer>();

        // The sink crosses the serializer like a job graph does, row mapper included.
        var sink = serializer.Deserialize<PostgresSink<PgWord>>(serializer.SerializeToArray(
            Sink(table, PostgresSinkMode.Upsert, rowMapper: new PgWordRowMapper { Prefix = "w-" })))!;
        await using var writer = sink.CreatePrecommittingWriter(Context(attempt: 1));
        await using var committer = sink.CreateCommitter(Context(attempt: 1));
        await committer.AbortLingeringTransactionsAsync([], default);

        foreach (var (word, count) in new[] { ("a", 1L), ("b", 1L), ("a", 2L) })
        {
            writer.Write(new PgWord(word, count));
        }

        await writer.FlushAsync(default);
        var first = await writer.PrepareCommitAsync(1, default);
        Assert.Equal(new List<(string, long)> { ("w-a", 100L) }, await ReadAsync(table, ordered: true));
        await committer.CommitAsync(1, first, default);
        writer.Write(new PgWord("b", 5));
        writer.Write(new PgWord("c", 1));
        var second = await writer.PrepareCommitAsync(2, default);
        Assert.Equal(new List<(string, long)> { ("w-a", 2L), ("w-b", 1L) }, await ReadAsync(table, ordered: true));
        await committer.CommitAsync(2, second, default);

        Assert.Equal(new List<(string, long)> { ("w-a", 2L), ("w-b", 5L), ("w-c", 1L) }, await ReadAsync(table, ordered: true));
    }

    [Fact]
    public async Task A_pre_commit_of_a_killed_writer_is_committed_by_the_next_attempt_exactly_once()
    {
        var table = await CreateTableAsync(primaryKey: false);
        var sink = Sink(table, PostgresSinkMode.Append);
        var serializer = Services.GetRequiredService<Serializer>();

        // Attempt 1: checkpoint 1 takes records 0..99 and completes, but the process dies before it commits; 100..149 are in the open transaction.
        var writer = sink.CreatePrecommittingWriter(Context(attempt: 1));
        await sink.CreateCommitter(Context(attempt: 1)).AbortLingeringTransactionsAsync([], default);
        WriteRange(writer, 0, 100);
        await writer.FlushAsync(default);
        var checkpoint1 = serializer.SerializeToArray((await writer.PrepareCommitAsync(1, default)).ToList());
        WriteRange(writer, 100, 150);
        await writer.FlushAsync(default);
        await KillAsync(attempt: 1);
        Assert.Equal(0L, await CountAsync(table));

        // Attempt 2 restores checkpoint 1: commits its committables again, aborts the rest, replays from offset 100.
        var restored = serializer.Deserialize<List<PostgresCommittable>>(checkpoint1)!;
        await using var committer = sink.CreateCommitter(Context(attempt: 2, restored: 1));
        await committer.CommitAsync(1, restored, default);
        await committer.AbortLingeringTransactionsAsync(restored, default);
        Assert.Equal(Range(0, 100), await ReadAsync(table));

        await using var next = sink.CreatePrecommittingWriter(Context(attempt: 2, restored: 1));
        WriteRange(next, 100, 200);
        await next.FlushAsync(default);
        var checkpoint2 = await next.PrepareCommitAsync(2, default);
        await committer.CommitAsync(2, checkpoint2, default);

        Assert.Equal(Range(0, 200), await ReadAsync(table));
        Assert.Equal(0L, await LingeringAsync(subtask: 0));
    }

    [Fact]
    public async Task Transactions_begun_after_the_restored_checkpoint_are_rolled_back_and_other_subtasks_keep_theirs()
    {
        var table = await CreateTableAsync(primaryKey: false);
        var sink = Sink(table, PostgresSinkMode.Append);

        // Attempt 1: subtask 0 commits checkpoint 1 (0..99), pre-commits checkpoint 2 (100..149, never completed), then writes 150..159; subtask 1 pre-commits checkpoint 2.
        var writer = sink.CreatePrecommittingWriter(Context(attempt: 1));
        var otherWriter = sink.CreatePrecommittingWriter(Context(attempt: 1, subtask: 1));
        await using (var committer = sink.CreateCommitter(Context(attempt: 1)))
        {
            await committer.AbortLingeringTransactionsAsync([], default);
            WriteRange(writer, 0, 100);
            var checkpoint1 = await writer.PrepareCommitAsync(1, default);
            await committer.CommitAsync(1, checkpoint1, default);
            WriteRange(writer, 100, 150);
            Assert.Single(await writer.PrepareCommitAsync(2, default));
            WriteRange(writer, 150, 160);
            await writer.FlushAsync(default);
            WriteRange(otherWriter, 1000, 1010);
            var other = await otherWriter.PrepareCommitAsync(2, default);
            await KillAsync(attempt: 1);
            Assert.Equal(1L, await LingeringAsync(subtask: 0));

            // Attempt 2, subtask 0, restored from checkpoint 1: its commit again is a no-op, and the pre-commit of checkpoint 2 goes.
            await using var restoredCommitter = sink.CreateCommitter(Context(attempt: 2, restored: 1));
            await restoredCommitter.CommitAsync(1, checkpoint1, default);
            await restoredCommitter.AbortLingeringTransactionsAsync(checkpoint1, default);
            Assert.Equal(0L, await LingeringAsync(subtask: 0));
            Assert.Equal(1L, await LingeringAsync(subtask: 1));
            Assert.Equal(Range(0, 100), await ReadAsync(table));

            // Subtask 1's pre-commit was not touched: it still commits.
            await using var otherCommitter = sink.CreateCommitter(Context(attempt: 2, subtask: 1, restored: 1));
            await otherCommitter.CommitAsync(2, other, default);
        }

        await using var next = sink.CreatePrecommittingWriter(Context(attempt: 2, restored: 1));
        await using var nextCommitter = sink.CreateCommitter(Context(attempt: 2, restored: 1));
        WriteRange(next, 100, 200);
        await nextCommitter.CommitAsync(2, await next.PrepareCommitAsync(2, default), default);

        Assert.Equal(Range(0, 200).Concat(Range(1000, 1010)).ToList(), await ReadAsync(table));
    }

    [Fact]
    public async Task After_a_change_to_fewer_subtasks_the_subtask_that_takes_a_gone_one_over_aborts_its_transactions()
    {
        var table = await CreateTableAsync(primaryKey: false);
        var sink = Sink(table, PostgresSinkMode.Append);

        // Attempt 1 runs 4 subtasks; subtasks 2 and 3 pre-commit transactions that no completed checkpoint holds.
        foreach (var subtask in new[] { 2, 3 })
        {
            var writer = sink.CreatePrecommittingWriter(Context(attempt: 1, subtask: subtask, parallelism: 4));
            WriteRange(writer, subtask * 100, (subtask * 100) + 10);
            Assert.Single(await writer.PrepareCommitAsync(1, default));
        }

        await KillAsync(attempt: 1);

        // Attempt 2 runs 2: subtask 1 takes over former subtask 3 (3 mod 2 = 1), and leaves former subtask 2 to subtask 0.
        await using (var committer = sink.CreateCommitter(Context(attempt: 2, subtask: 1, parallelism: 2)))
        {
            await committer.AbortLingeringTransactionsAsync([], default);
        }

        Assert.Equal(0L, await LingeringAsync(subtask: 3));
        Assert.Equal(1L, await LingeringAsync(subtask: 2));
        await using (var committer = sink.CreateCommitter(Context(attempt: 2, subtask: 0, parallelism: 2)))
        {
            await committer.AbortLingeringTransactionsAsync([], default);
        }

        Assert.Equal(0L, await LingeringAsync(subtask: 2));
        Assert.Equal(0L, await CountAsync(table));
    }

    [Fact]
    public async Task A_second_commit_from_another_attempt_is_a_no_op()
    {
        var table = await CreateTableAsync(primaryKey: false);
        var sink = Sink(table, PostgresSinkMode.Append);
        await using var writer = sink.CreatePrecommittingWriter(Context(attempt: 1));
        WriteRange(writer, 0, 10);
        var committables = await writer.PrepareCommitAsync(1, default);
        await using (var committer = sink.CreateCommitter(Context(attempt: 1)))
        {
            await committer.CommitAsync(1, committables, default);
            await committer.CommitAsync(1, committables, default);
        }

        await using (var later = sink.CreateCommitter(Context(attempt: 2, restored: 1)))
        {
            await later.CommitAsync(1, committables, default);
            await later.AbortLingeringTransactionsAsync(committables, default);
        }

        Assert.Equal(Range(0, 10), await ReadAsync(table));
    }

    [Fact]
    public async Task A_restore_to_a_checkpoint_older_than_the_last_commit_recommits_nothing_and_fails_nothing()
    {
        var table = await CreateTableAsync(primaryKey: false);
        var sink = Sink(table, PostgresSinkMode.Append);
        var writer = sink.CreatePrecommittingWriter(Context(attempt: 1));
        await using var committer = sink.CreateCommitter(Context(attempt: 1));
        WriteRange(writer, 0, 10);
        var checkpoint1 = await writer.PrepareCommitAsync(1, default);
        WriteRange(writer, 10, 20);
        var checkpoint2 = await writer.PrepareCommitAsync(2, default);
        await committer.CommitAsync(1, checkpoint1, default);
        await committer.CommitAsync(2, checkpoint2, default);
        await KillAsync(attempt: 1);

        // Restored from checkpoint 1 (say, a retained checkpoint chosen by hand) although checkpoint 2 committed since.
        await using var restored = sink.CreateCommitter(Context(attempt: 2, restored: 1));
        await restored.CommitAsync(1, checkpoint1, default);
        await restored.AbortLingeringTransactionsAsync(checkpoint1, default);

        Assert.Equal(Range(0, 20), await ReadAsync(table));
        Assert.Equal(0L, await LingeringAsync(subtask: 0));
    }

    [Fact]
    public async Task Committing_a_transaction_that_was_rolled_back_fails_naming_it()
    {
        var table = await CreateTableAsync(primaryKey: false);
        var sink = Sink(table, PostgresSinkMode.Append);
        await using var writer = sink.CreatePrecommittingWriter(Context(attempt: 1));
        WriteRange(writer, 0, 10);
        var committable = Assert.Single(await writer.PrepareCommitAsync(1, default));

        // A later attempt that does not know it (restored from nothing) rolls it back; committing it then would lose records silently.
        await using var committer = sink.CreateCommitter(Context(attempt: 2));
        await committer.AbortLingeringTransactionsAsync([], default);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => committer.CommitAsync(1, [committable], default));

        Assert.Contains(committable.TransactionId, error.Message, StringComparison.Ordinal);
        Assert.Contains("lost", error.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await CountAsync(table));
    }

    [Fact]
    public async Task A_scheme_set_by_hand_runs_where_the_server_allows_it_and_fails_clearly_where_not()
    {
        var table = await CreateTableAsync(primaryKey: false);
        var staging = Sink(table, PostgresSinkMode.Append);
        staging.Scheme = PostgresCommitScheme.Staging;
        await using (var writer = staging.CreatePrecommittingWriter(Context(attempt: 1)))
        {
            WriteRange(writer, 0, 5);
            var committable = Assert.Single(await writer.PrepareCommitAsync(1, default));
            Assert.Equal(PostgresCommitScheme.Staging, committable.Scheme);
            await using var committer = staging.CreateCommitter(Context(attempt: 1));
            await committer.CommitAsync(1, [committable], default);
        }

        Assert.Equal(Range(0, 5), await ReadAsync(table));

        var twoPhase = Sink(table, PostgresSinkMode.Append);
        twoPhase.Scheme = PostgresCommitScheme.TwoPhaseCommit;
        await using var twoPhaseCommitter = twoPhase.CreateCommitter(Context(attempt: 2));
        if (server.MaxPreparedTransactions == 0)
        {
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => twoPhaseCommitter.AbortLingeringTransactionsAsync([], default));
            Assert.Contains("max_prepared_transactions = 0", error.Message, StringComparison.Ordinal);
        }
        else
        {
            await twoPhaseCommitter.AbortLingeringTransactionsAsync([], default);
        }
    }

    [Fact]
    public async Task A_missing_table_or_column_is_named_with_what_to_do()
    {
        var missingTable = Sink("no_such_table", PostgresSinkMode.Append);
        await using var committer = missingTable.CreateCommitter(Context(attempt: 1));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => committer.AbortLingeringTransactionsAsync([], default));
        Assert.Contains("\"no_such_table\" does not exist", error.Message, StringComparison.Ordinal);
        Assert.Contains("CREATE TABLE", error.Message, StringComparison.Ordinal);

        var table = await CreateTableAsync(primaryKey: false);
        var missingColumn = Sink(table, PostgresSinkMode.Append, columns: ["word", "total"], rowMapper: new PgWordRowMapper());
        await using var writer = missingColumn.CreatePrecommittingWriter(Context(attempt: 1));
        writer.Write(new PgWord("a", 1));
        error = await Assert.ThrowsAsync<InvalidOperationException>(async () => await writer.FlushAsync(default));
        Assert.Contains("has no column \"total\"", error.Message, StringComparison.Ordinal);

        var noKey = Sink(table, PostgresSinkMode.Upsert);
        await using var upsertCommitter = noKey.CreateCommitter(Context(attempt: 1));
        error = await Assert.ThrowsAsync<InvalidOperationException>(() => upsertCommitter.AbortLingeringTransactionsAsync([], default));
        Assert.Contains("no primary key or unique index", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_server_and_bad_settings_are_named()
    {
        var unreachable = Sink("t", PostgresSinkMode.Append, connectionString: $"Host=127.0.0.1;Port={Ports.Free(1)[0]};Username=platform;Timeout=2");
        await using var committer = unreachable.CreateCommitter(Context(attempt: 1));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => committer.AbortLingeringTransactionsAsync([], default));
        Assert.Contains("cannot connect to PostgreSQL at 127.0.0.1:", error.Message, StringComparison.Ordinal);

        var bad = new PostgresSink<PgWord> { ConnectionString = "Host=x;No Such Keyword=1", Table = "a.b.c", Mode = PostgresSinkMode.Upsert, Columns = ["word"], KeyColumns = ["id"] };
        var problems = bad.Validate().ToList();
        Assert.Contains(problems, p => p.Contains("connection string is not valid", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("'a.b.c' is not 'table' or 'schema.table'", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("key columns id are not among its columns", StringComparison.Ordinal));
        Assert.Empty(Sink("t", PostgresSinkMode.Append).Validate());
    }

    [Fact]
    public async Task A_named_connection_string_comes_from_the_silos_configuration()
    {
        var table = await CreateTableAsync(primaryKey: false);
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:sinkdb"] = server.ConnectionString })
            .Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration).BuildServiceProvider();
        var sink = Sink(table, PostgresSinkMode.Append, connectionString: "", connectionStringName: "sinkdb");
        Assert.Empty(sink.Validate());
        await using var writer = sink.CreatePrecommittingWriter(Context(attempt: 1, services: services));
        await using var committer = sink.CreateCommitter(Context(attempt: 1, services: services));
        WriteRange(writer, 0, 3);
        await committer.CommitAsync(1, await writer.PrepareCommitAsync(1, default), default);
        Assert.Equal(Range(0, 3), await ReadAsync(table));

        await using var missing = Sink(table, PostgresSinkMode.Append, connectionString: "", connectionStringName: "other").CreateCommitter(Context(attempt: 1, services: services));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => missing.AbortLingeringTransactionsAsync([], default));
        Assert.Contains("ConnectionStrings:other", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Keeps what is logged.</summary>
    private sealed class LogCapture : ILoggerProvider, ILogger
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _messages = new();

        public IReadOnlyCollection<string> Messages => _messages;

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _messages.Enqueue(formatter(state, exception));

        public void Dispose()
        {
        }
    }

    private static List<(string Word, long Count)> Range(int from, int to) =>
        [.. Enumerable.Range(from, to - from).Select(i => ($"w{i}", (long)i))];

    private static void WriteRange(IPrecommittingSinkWriter<PgWord, PostgresCommittable> writer, int from, int to)
    {
        for (var i = from; i < to; i++)
        {
            writer.Write(new PgWord($"w{i}", i));
        }
    }

    private PostgresSink<PgWord> Sink(string table, PostgresSinkMode mode, string[]? columns = null, IPostgresRowMapper<PgWord>? rowMapper = null,
        string? connectionString = null, string? connectionStringName = null) => new()
    {
        ConnectionString = connectionString ?? server.ConnectionString,
        ConnectionStringName = connectionStringName,
        Table = table,
        Columns = columns ?? ["word", "count"],
        RowMapper = rowMapper,
        Mode = mode,
        KeyColumns = mode == PostgresSinkMode.Upsert ? ["word"] : [],
        MaxRowsPerStatement = 64,
    };

    private SinkWriterContext Context(int attempt, int subtask = 0, long? restored = null, IServiceProvider? services = null, int parallelism = 2) => new()
    {
        JobId = _job,
        OperatorUid = SinkUid,
        OperatorName = "postgres sink",
        SubtaskIndex = subtask,
        Parallelism = parallelism,
        Attempt = attempt,
        RestoredCheckpointId = restored,
        Services = services ?? Services,
    };

    private async Task<string> CreateTableAsync(bool primaryKey)
    {
        var table = $"t_{Guid.NewGuid():N}"[..14];
        await server.ExecuteAsync(primaryKey
            ? $"CREATE TABLE {table} (word text PRIMARY KEY, count bigint NOT NULL)"
            : $"CREATE TABLE {table} (id bigserial PRIMARY KEY, word text NOT NULL, count bigint NOT NULL)");
        return table;
    }

    private async Task<long> CountAsync(string table) => (long)(await server.ScalarAsync($"SELECT count(*) FROM {table}"))!;

    private async Task<List<(string Word, long Count)>> ReadAsync(string table, bool ordered = false)
    {
        await using var connection = await server.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT word, count FROM {table} ORDER BY {(ordered ? "word" : "count")}", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(string, long)>();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetString(0), reader.GetInt64(1)));
        }

        return rows;
    }

    /// <summary>Pre-committed transactions of this job's sink subtask not committed yet: prepared ones, or staged ones.</summary>
    private async Task<long> LingeringAsync(int subtask)
    {
        var prefix = $"platform:{_job}:{SinkUid}:{subtask}:";
        var staged = await server.ScalarAsync("SELECT to_regclass('public.platform_sink_staged') IS NOT NULL") is true
            ? (long)(await server.ScalarAsync($"SELECT count(*) FROM public.platform_sink_staged WHERE starts_with(gid, '{prefix}')"))!
            : 0;
        return staged + (long)(await server.ScalarAsync($"SELECT count(*) FROM pg_prepared_xacts WHERE starts_with(gid, '{prefix}')"))!;
    }

    /// <summary>What a process death does to an attempt's writers: their connections go, the server rolls back what was not pre-committed.</summary>
    private async Task KillAsync(int attempt)
    {
        var pattern = $"platform-sink {SinkUid}/% a{attempt} {_job}%";
        await server.ExecuteAsync($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE '{pattern}'");
        await Poll.UntilAsync(
            async () => (long)(await server.ScalarAsync($"SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '{pattern}'"))! == 0,
            TimeSpan.FromSeconds(30),
            () => $"the connections of attempt {attempt} are gone");
    }
}

/// <summary>The transaction ids' naming, without a server.</summary>
public sealed class PostgresSinkNamingTests
{
    [Fact]
    public void Transaction_id_prefixes_keep_jobs_uids_and_subtasks_apart_and_fit_postgres()
    {
        // ':' inside a part is escaped: job "a:b" with uid "c" and job "a" with uid "b:c" must not share a prefix.
        Assert.NotEqual(PostgresSinkSql.GidPrefix("a:b", "c", 0), PostgresSinkSql.GidPrefix("a", "b:c", 0));
        Assert.Equal("platform:job-1:sink:3:", PostgresSinkSql.GidPrefix("job-1", "sink", 3));
        Assert.DoesNotContain("'", PostgresSinkSql.GidPrefix("o'clock", "sink", 0), StringComparison.Ordinal);

        // Subtask 1's prefix must not be a prefix of subtask 10's (the abort matches by prefix).
        Assert.False(PostgresSinkSql.GidPrefix("job", "sink", 10).StartsWith(PostgresSinkSql.GidPrefix("job", "sink", 1), StringComparison.Ordinal));

        var longJob = new string('j', 300);
        var hashed = PostgresSinkSql.GidPrefix(longJob, "sink", 7);
        Assert.True(hashed.Length <= 199 - 48, hashed);
        Assert.StartsWith(PostgresSinkSql.SinkPrefix(longJob, "sink"), hashed, StringComparison.Ordinal);
        Assert.EndsWith(":7:", hashed, StringComparison.Ordinal);
        Assert.NotEqual(hashed, PostgresSinkSql.GidPrefix(longJob + "x", "sink", 7));
    }
}

/// <summary>The suite on a server with prepared transactions: PostgreSQL's two-phase commit.</summary>
public sealed class PostgresSinkTwoPhaseCommitTests(PostgresServerFixture fixture)
    : PostgresSinkTests(fixture.Server, PostgresCommitScheme.TwoPhaseCommit), IClassFixture<PostgresServerFixture>;

/// <summary>The suite on a server with <c>max_prepared_transactions = 0</c>: the staging scheme.</summary>
public sealed class PostgresSinkStagingTests(PostgresServerWithoutPreparedTransactionsFixture fixture)
    : PostgresSinkTests(fixture.Server, PostgresCommitScheme.Staging), IClassFixture<PostgresServerWithoutPreparedTransactionsFixture>;
