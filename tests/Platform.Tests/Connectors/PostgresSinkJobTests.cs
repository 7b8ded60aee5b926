using Npgsql;
using Platform.Checkpointing;
using Platform.Connectors;
using Platform.Connectors.Postgres;
using Platform.Graph;
using Platform.Runtime;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Connectors;

/// <summary>Maps n to the row (n mod 50, n): with an upsert on the residue, each key ends at the last n of its residue.</summary>
[GenerateSerializer, Alias("platform.tests.ResidueRowMapper")]
public sealed class ResidueRowMapper : IPostgresRowMapper<long>
{
    /// <summary>How many keys.</summary>
    public const int Keys = 50;

    /// <inheritdoc />
    public object?[] Map(long record) => [record % Keys, record];
}

/// <summary>
/// A job writing into PostgreSQL through the runtime's two-phase commit, on a real cluster and a real server, failing
/// once mid-run: the table holds exactly the expected rows, each once (issue 12, point 3).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PostgresSinkJobTests(ClusterFixture fixture, PostgresServerFixture prepared, PostgresServerWithoutPreparedTransactionsFixture unprepared)
    : IClassFixture<PostgresServerFixture>, IClassFixture<PostgresServerWithoutPreparedTransactionsFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Theory]
    [InlineData(PostgresCommitScheme.TwoPhaseCommit, PostgresSinkMode.Append)]
    [InlineData(PostgresCommitScheme.Staging, PostgresSinkMode.Append)]
    [InlineData(PostgresCommitScheme.TwoPhaseCommit, PostgresSinkMode.Upsert)]
    [InlineData(PostgresCommitScheme.Staging, PostgresSinkMode.Upsert)]
    public async Task The_table_holds_every_record_exactly_once_across_a_failure(PostgresCommitScheme scheme, PostgresSinkMode mode)
    {
        const long records = 12_000;
        var server = scheme == PostgresCommitScheme.TwoPhaseCommit ? prepared.Server : unprepared.Server;
        var table = $"job_{Guid.NewGuid():N}"[..16];
        await server.ExecuteAsync(mode == PostgresSinkMode.Append
            ? $"CREATE TABLE {table} (id bigserial PRIMARY KEY, k bigint NOT NULL, n bigint NOT NULL)"
            : $"CREATE TABLE {table} (k bigint PRIMARY KEY, n bigint NOT NULL)");
        var sink = new PostgresSink<long>
        {
            ConnectionString = server.ConnectionString,
            Table = table,
            Columns = ["k", "n"],
            RowMapper = new ResidueRowMapper(),
            Mode = mode,
            KeyColumns = mode == PostgresSinkMode.Upsert ? ["k"] : [],
        };
        var job = new StreamJobBuilder("postgres-sink")
        {
            DefaultParallelism = 2,
            Checkpointing = new CheckpointingSettings
            {
                Interval = TimeSpan.FromMilliseconds(200),
                Storage = CheckpointStorageKind.FileSystem,
                Directory = TestData.NewDirectory("checkpoints"),
            },
            RestartStrategy = RestartStrategy.FixedDelayRestart(20, TimeSpan.FromMilliseconds(100)),
        };
        job.AddSource(new SequenceSource { Count = records, RecordsPerSecondPerSubtask = 1_500 }, "numbers").Uid("numbers")
            .Map(new FailOnDemand<long>(), "fail-on-demand").Uid("fail-on-demand")
            .SinkTo(sink, "postgres").Uid("postgres");

        var jobId = await fixture.Platform.SubmitAsync(job);
        await Poll.UntilAsync(
            async () => await CommittedAsync(server, jobId) >= 2,
            Timeout,
            () => "the sink committed two transactions");
        FailureSwitch.Arm(jobId);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.True(status.Restarts >= 1, "the injected failure did not restart the job");
        var rows = await ReadAsync(server, table);
        if (mode == PostgresSinkMode.Append)
        {
            var duplicates = rows.GroupBy(r => r.N).Where(g => g.Count() > 1).Select(g => g.Key).Take(10).ToList();
            Assert.True(duplicates.Count == 0, $"written more than once: {string.Join(", ", duplicates)}");
            var missing = Enumerable.Range(0, (int)records).Select(i => (long)i).Except(rows.Select(r => r.N)).Take(10).ToList();
            Assert.True(missing.Count == 0, $"never written: {string.Join(", ", missing)} (of {rows.Count} rows)");
            Assert.Equal(records, rows.Count);
        }
        else
        {
            // Each key holds the last number of its residue.
            var expected = Enumerable.Range(0, ResidueRowMapper.Keys).Select(k => ((long)k, records - ResidueRowMapper.Keys + k)).ToList();
            Assert.Equal(expected, rows.Select(r => (r.K, r.N)).OrderBy(r => r.K).ToList());
        }

        Assert.Equal(0L, (long)(await server.ScalarAsync($"SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'platform:{jobId}:%'"))!);
        if (scheme == PostgresCommitScheme.Staging)
        {
            Assert.Equal(0L, (long)(await server.ScalarAsync($"SELECT count(*) FROM platform_sink_staged WHERE job_id = '{jobId}'"))!);
        }
    }

    /// <summary>How many transactions of the job were committed (none before the sink created its marker table).</summary>
    private static async Task<long> CommittedAsync(PostgresServer server, string jobId) =>
        await server.ScalarAsync("SELECT to_regclass('platform_sink_commits') IS NOT NULL") is true
            ? (long)(await server.ScalarAsync($"SELECT count(*) FROM platform_sink_commits WHERE job_id = '{jobId}'"))!
            : 0;

    private static async Task<List<(long K, long N)>> ReadAsync(PostgresServer server, string table)
    {
        await using var connection = await server.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT k, n FROM {table}", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(long, long)>();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetInt64(0), reader.GetInt64(1)));
        }

        return rows;
    }
}
