using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Platform.Connectors.Postgres;

/// <summary>
/// What the writer and the committer of one <see cref="PostgresSink{T}"/> subtask share: names, the resolved table,
/// the scheme, and the SQL of both schemes.
/// </summary>
internal sealed partial class PostgresSinkSql
{
    /// <summary>PostgreSQL's limit on a global transaction id, in bytes (GIDSIZE - 1).</summary>
    private const int MaxGidLength = 199;

    /// <summary>"undefined_object": <c>COMMIT PREPARED</c> / <c>ROLLBACK PREPARED</c> of an id that is not prepared.</summary>
    private const string UndefinedObject = "42704";

    private readonly string? _connectionString;
    private readonly string? _connectionStringName;
    private readonly string _table;
    private readonly PostgresCommitScheme _wantedScheme;
    private Resolved? _resolved;

    public PostgresSinkSql(string connectionString, string? connectionStringName, string table, string[] columns, string[] keyColumns,
        PostgresSinkMode mode, PostgresCommitScheme scheme, SinkWriterContext context)
    {
        _connectionString = string.IsNullOrWhiteSpace(connectionString) ? null : connectionString;
        _connectionStringName = connectionStringName;
        _table = table;
        Columns = columns;
        KeyColumns = keyColumns;
        Mode = mode;
        _wantedScheme = scheme;
        Context = context;
        Logger = context.Services.GetService<ILoggerFactory>()?.CreateLogger("Platform.Connectors.Postgres.PostgresSink") ?? NullLogger.Instance;
        Prefix = GidPrefix(context.JobId, context.OperatorUid, context.SubtaskIndex);
    }

    public SinkWriterContext Context { get; }

    public ILogger Logger { get; }

    public string[] Columns { get; }

    public string[] KeyColumns { get; }

    public PostgresSinkMode Mode { get; }

    /// <summary>What every transaction id of this (job, sink uid, subtask) starts with.</summary>
    public string Prefix { get; }

    /// <summary>The scheme in force; known once <see cref="EnsureReadyAsync"/> ran.</summary>
    public PostgresCommitScheme Scheme => Ready.Scheme;

    private Resolved Ready => _resolved ?? throw new InvalidOperationException("The PostgreSQL sink is not open yet.");

    /// <summary>
    /// <c>platform:{job}:{sink uid}:{subtask}:</c> with the parts escaped (no ':' or quote inside them), or, when that
    /// would leave too little room in the 199 bytes of a transaction id, the job and uid replaced by a hash of them.
    /// </summary>
    public static string GidPrefix(string jobId, string operatorUid, int subtaskIndex) =>
        $"{SinkPrefix(jobId, operatorUid)}{subtaskIndex.ToString(CultureInfo.InvariantCulture)}:";

    /// <summary>What the transaction ids of every subtask of a (job, sink uid) start with.</summary>
    public static string SinkPrefix(string jobId, string operatorUid)
    {
        var prefix = $"platform:{Uri.EscapeDataString(jobId)}:{Uri.EscapeDataString(operatorUid)}:";
        if (prefix.Length <= MaxGidLength - 58)
        {
            return prefix;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{jobId}\n{operatorUid}")))[..32];
        return $"platform:h{hash}:";
    }

    /// <summary>
    /// Whether this subtask aborts transaction <paramref name="gid"/> of its (job, sink uid) when lingering: its own, and
    /// those of former subtasks j that are gone after a change to fewer subtasks and whose committables the runtime
    /// gives to this one (j &gt;= parallelism, j mod parallelism = this subtask).
    /// </summary>
    public bool Owns(string gid)
    {
        var sinkPrefix = SinkPrefix(Context.JobId, Context.OperatorUid);
        if (!gid.StartsWith(sinkPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        var rest = gid.AsSpan(sinkPrefix.Length);
        var end = rest.IndexOf(':');
        if (end <= 0 || !int.TryParse(rest[..end], NumberStyles.None, CultureInfo.InvariantCulture, out var subtask))
        {
            return false;
        }

        return subtask == Context.SubtaskIndex
            || (subtask >= Context.Parallelism && subtask % Context.Parallelism == Context.SubtaskIndex);
    }

    /// <summary>
    /// The id of this attempt's writer's transaction number <paramref name="sequence"/>; <paramref name="nonce"/> (random
    /// per writer) keeps ids apart should an attempt number ever be deployed twice.
    /// </summary>
    public string Gid(long sequence, string nonce) =>
        $"{Prefix}a{Context.Attempt.ToString(CultureInfo.InvariantCulture)}.{sequence.ToString(CultureInfo.InvariantCulture)}.{nonce}";

    /// <summary>Returns a message when <paramref name="connectionString"/> does not parse.</summary>
    public static string? ParseProblem(string connectionString)
    {
        try
        {
            _ = new NpgsqlConnectionStringBuilder(connectionString);
            return null;
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidCastException)
        {
            return $"The PostgreSQL sink's connection string is not valid: {ex.Message}";
        }
    }

    /// <summary>
    /// Opens a connection, with an error that says where to. Unless the connection string names one, the application
    /// name (<c>pg_stat_activity</c>) says whose it is: <c>platform-sink</c> (a writer, not pooled, so that closing it
    /// rolls back its open transaction) or <c>platform-commit</c> (a committer, pooled), then
    /// <c>{sink uid}/{subtask} a{attempt} {job}</c>, cut at PostgreSQL's 63 bytes.
    /// </summary>
    public async Task<NpgsqlConnection> OpenAsync(bool writer, CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(ResolveConnectionString());
        if (string.IsNullOrEmpty(builder.ApplicationName))
        {
            var name = $"{(writer ? "platform-sink" : "platform-commit")} {Context.OperatorUid}/{Context.SubtaskIndex} a{Context.Attempt} {Context.JobId}";
            builder.ApplicationName = name.Length > 63 ? name[..63] : name;
        }

        if (writer)
        {
            builder.Pooling = false;
        }

        var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            return connection;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            await connection.DisposeAsync();
            throw new InvalidOperationException(
                $"Sink '{Context.OperatorName}' cannot connect to PostgreSQL at {builder.Host}:{builder.Port} (database '{builder.Database ?? builder.Username}'): {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Once per writer or committer: checks the table and its columns (and the upsert key's unique index), decides
    /// the scheme, and creates the sink's own tables when missing.
    /// </summary>
    public async Task EnsureReadyAsync(NpgsqlConnection connection, bool announce, CancellationToken cancellationToken)
    {
        if (_resolved is not null)
        {
            return;
        }

        var parts = _table.Split('.');
        var quotedName = string.Join('.', parts.Select(Quote));
        string schema;
        string relation;
        await using (var command = new NpgsqlCommand(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(@name)", connection))
        {
            command.Parameters.AddWithValue("name", quotedName);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                throw new InvalidOperationException(
                    $"Sink '{Context.OperatorName}': table {quotedName} does not exist in database '{connection.Database}' on {connection.Host}:{connection.Port}. "
                    + $"Create it before the job starts, e.g. CREATE TABLE {quotedName} ({string.Join(", ", Columns.Select(c => Quote(c) + " ..."))}"
                    + (Mode == PostgresSinkMode.Upsert ? $", PRIMARY KEY ({string.Join(", ", KeyColumns.Select(Quote))}))" : ")")
                    + "; names are case-sensitive (quoted as given).");
            }

            schema = reader.GetString(0);
            relation = reader.GetString(1);
        }

        var target = $"{Quote(schema)}.{Quote(relation)}";
        var existing = new List<string>();
        await using (var command = new NpgsqlCommand(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass(@name) AND attnum > 0 AND NOT attisdropped ORDER BY attnum", connection))
        {
            command.Parameters.AddWithValue("name", target);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                existing.Add(reader.GetString(0));
            }
        }

        var missing = Columns.Where(c => !existing.Contains(c, StringComparer.Ordinal)).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidOperationException(
                $"Sink '{Context.OperatorName}': table {target} has no column {string.Join(", ", missing.Select(Quote))} (it has {string.Join(", ", existing.Select(Quote))}); "
                + "add the column or change PostgresSink.Columns (names are case-sensitive).");
        }

        if (Mode == PostgresSinkMode.Upsert)
        {
            await using var command = new NpgsqlCommand(
                """
                SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass(@name) AND i.indisunique AND i.indpred IS NULL
                  AND (SELECT array_agg(a.attname::text COLLATE "C" ORDER BY a.attname::text COLLATE "C") FROM pg_attribute a
                       WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) = @keys::text[] AND array_length(i.indkey, 1) = @count)
                """, connection);
            command.Parameters.AddWithValue("name", target);
            command.Parameters.AddWithValue("keys", KeyColumns.Order(StringComparer.Ordinal).ToArray());
            command.Parameters.AddWithValue("count", KeyColumns.Length);
            if (await command.ExecuteScalarAsync(cancellationToken) is not true)
            {
                throw new InvalidOperationException(
                    $"Sink '{Context.OperatorName}' upserts on ({string.Join(", ", KeyColumns.Select(Quote))}) but {target} has no primary key or unique index on exactly these columns; "
                    + $"add one (ALTER TABLE {target} ADD PRIMARY KEY ({string.Join(", ", KeyColumns.Select(Quote))})).");
            }
        }

        var maxPrepared = await MaxPreparedTransactionsAsync(connection, cancellationToken);
        var scheme = _wantedScheme switch
        {
            PostgresCommitScheme.Auto => maxPrepared > 0 ? PostgresCommitScheme.TwoPhaseCommit : PostgresCommitScheme.Staging,
            PostgresCommitScheme.TwoPhaseCommit when maxPrepared == 0 => throw new InvalidOperationException(
                $"Sink '{Context.OperatorName}' is set to two-phase commit but the server at {connection.Host}:{connection.Port} has max_prepared_transactions = 0; "
                + "set it above the sink's parallelism (postgresql.conf, then restart the server) or use PostgresCommitScheme.Auto or Staging."),
            var wanted => wanted,
        };

        // The staging table is named after the target; PostgreSQL keeps 63 bytes of a name.
        var stagingName = $"{relation}__platform_staging";
        if (Encoding.UTF8.GetByteCount(stagingName) > 63)
        {
            stagingName = $"platform_staging_{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(relation)))[..16]}";
        }

        var resolved = new Resolved(
            scheme,
            target,
            $"{Quote(schema)}.platform_sink_commits",
            $"{Quote(schema)}.platform_sink_staged",
            $"{Quote(schema)}.{Quote(stagingName)}");
        await CreateOwnTablesAsync(connection, resolved, cancellationToken);
        _resolved = resolved;
        if (announce)
        {
            LogScheme(Logger, Context.OperatorName, Context.SubtaskIndex, target, scheme, maxPrepared);
        }

        if (scheme == PostgresCommitScheme.TwoPhaseCommit && maxPrepared < Context.Parallelism * 2)
        {
            LogFewPreparedTransactions(Logger, Context.OperatorName, maxPrepared, Context.Parallelism);
        }
    }

    /// <summary>Reads <c>max_prepared_transactions</c>.</summary>
    public static async Task<int> MaxPreparedTransactionsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SHOW max_prepared_transactions", connection);
        return int.Parse((string)(await command.ExecuteScalarAsync(cancellationToken))!, CultureInfo.InvariantCulture);
    }

    /// <summary>The SQL of a multi-row insert of <paramref name="rows"/> rows into the target (append or upsert) or into staging.</summary>
    public string InsertSql(int rows, bool staging)
    {
        var builder = new StringBuilder();
        var columns = string.Join(", ", Columns.Select(Quote));
        builder.Append("INSERT INTO ").Append(staging ? Ready.Staging : Ready.Target).Append(" (").Append(columns);
        var width = Columns.Length;
        if (staging)
        {
            builder.Append(", platform_gid, platform_ord");
            width += 2;
        }

        builder.Append(") VALUES ");
        for (var row = 0; row < rows; row++)
        {
            builder.Append(row == 0 ? "(" : ", (");
            for (var column = 0; column < width; column++)
            {
                builder.Append(column == 0 ? "$" : ", $").Append((row * width) + column + 1);
            }

            builder.Append(')');
        }

        if (!staging && Mode == PostgresSinkMode.Upsert)
        {
            builder.Append(OnConflict());
        }

        return builder.ToString();
    }

    /// <summary>The SQL that records a pre-committed transaction: the commit marker (two-phase commit) or the staged entry.</summary>
    public string MarkerSql(PostgresCommitScheme scheme) =>
        $"INSERT INTO {(scheme == PostgresCommitScheme.TwoPhaseCommit ? Ready.Commits : Ready.Staged)} (gid, job_id, sink_uid, subtask, checkpoint_id, record_count) VALUES ($1, $2, $3, $4, $5, $6)";

    /// <summary>Adds the parameters of <see cref="MarkerSql"/>.</summary>
    public void AddMarkerParameters(NpgsqlBatchCommand command, string gid, long checkpointId, long records)
    {
        command.Parameters.Add(new NpgsqlParameter { Value = gid });
        command.Parameters.Add(new NpgsqlParameter { Value = Context.JobId });
        command.Parameters.Add(new NpgsqlParameter { Value = Context.OperatorUid });
        command.Parameters.Add(new NpgsqlParameter { Value = Context.SubtaskIndex });
        command.Parameters.Add(new NpgsqlParameter { Value = checkpointId });
        command.Parameters.Add(new NpgsqlParameter { Value = records });
    }

    /// <summary>
    /// Commits one committable. Two-phase commit: <c>COMMIT PREPARED</c>; staging: one local transaction that deletes
    /// the staged entry, records the marker and moves the rows. Either way, a committable that is gone is a success
    /// when its marker is there (it committed before) and an error naming it when not (it was lost).
    /// </summary>
    public async Task CommitAsync(NpgsqlConnection connection, PostgresCommittable committable, CancellationToken cancellationToken)
    {
        var committed = committable.Scheme == PostgresCommitScheme.TwoPhaseCommit
            ? await CommitPreparedAsync(connection, committable.TransactionId, cancellationToken)
            : await CommitStagedAsync(connection, committable.TransactionId, cancellationToken);
        if (committed)
        {
            LogCommitted(Logger, Context.OperatorName, Context.SubtaskIndex, committable.TransactionId, committable.RecordCount);
            return;
        }

        if (await IsMarkedCommittedAsync(connection, committable.TransactionId, cancellationToken))
        {
            LogAlreadyCommitted(Logger, Context.OperatorName, Context.SubtaskIndex, committable.TransactionId);
            return;
        }

        throw new InvalidOperationException(
            $"Sink '{Context.OperatorName}' subtask {Context.SubtaskIndex}: transaction '{committable.TransactionId}' of checkpoint {committable.CheckpointId} "
            + $"({committable.RecordCount} records) is neither {(committable.Scheme == PostgresCommitScheme.TwoPhaseCommit ? "prepared (pg_prepared_xacts)" : "staged")} "
            + $"nor committed ({Ready.Commits}): it was rolled back by someone else, and its records are lost.");
    }

    /// <summary>
    /// Rolls back every transaction this subtask <see cref="Owns"/> that is not among <paramref name="recovered"/>:
    /// prepared transactions and staged entries alike, so that a change of scheme leaves nothing behind.
    /// </summary>
    public async Task<int> AbortLingeringAsync(NpgsqlConnection connection, IReadOnlyCollection<PostgresCommittable> recovered, CancellationToken cancellationToken)
    {
        var keep = recovered.Select(c => c.TransactionId).ToArray();
        var sinkPrefix = SinkPrefix(Context.JobId, Context.OperatorUid);
        var prepared = await GidsAsync(connection, "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, @prefix) AND gid <> ALL(@keep)",
            sinkPrefix, keep, cancellationToken);
        var aborted = 0;
        foreach (var gid in prepared)
        {
            try
            {
                await using var command = new NpgsqlCommand($"ROLLBACK PREPARED {Literal(gid)}", connection);
                await command.ExecuteNonQueryAsync(cancellationToken);
                aborted++;
                LogAborted(Logger, Context.OperatorName, Context.SubtaskIndex, gid);
            }
            catch (PostgresException ex) when (ex.SqlState == UndefinedObject)
            {
                // Gone meanwhile: nothing to roll back.
            }
        }

        // Staged entries (the staging scheme), where that scheme ever ran in this schema.
        await using (var exists = new NpgsqlCommand("SELECT to_regclass(@staged) IS NOT NULL AND to_regclass(@staging) IS NOT NULL", connection))
        {
            exists.Parameters.AddWithValue("staged", Ready.Staged);
            exists.Parameters.AddWithValue("staging", Ready.Staging);
            if (await exists.ExecuteScalarAsync(cancellationToken) is not true)
            {
                return aborted;
            }
        }

        var staged = await GidsAsync(connection, $"SELECT gid FROM {Ready.Staged} WHERE starts_with(gid, @prefix) AND gid <> ALL(@keep)", sinkPrefix, keep, cancellationToken);
        if (staged.Count == 0)
        {
            return aborted;
        }

        await using (var delete = new NpgsqlCommand(
            $"WITH gone AS (DELETE FROM {Ready.Staged} WHERE gid = ANY(@gids) RETURNING gid), "
            + $"staged_rows AS (DELETE FROM {Ready.Staging} s USING gone WHERE s.platform_gid = gone.gid) SELECT gid FROM gone", connection))
        {
            delete.Parameters.AddWithValue("gids", staged.ToArray());
            await using var reader = await delete.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                aborted++;
                LogAborted(Logger, Context.OperatorName, Context.SubtaskIndex, reader.GetString(0));
            }
        }

        return aborted;
    }

    /// <summary>The ids a query returns, keeping those this subtask <see cref="Owns"/>.</summary>
    private async Task<List<string>> GidsAsync(NpgsqlConnection connection, string sql, string sinkPrefix, string[] keep, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("prefix", sinkPrefix);
        command.Parameters.AddWithValue("keep", keep);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var gids = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            var gid = reader.GetString(0);
            if (Owns(gid))
            {
                gids.Add(gid);
            }
        }

        return gids;
    }

    /// <summary>Quotes an identifier as given.</summary>
    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>A string literal (standard conforming strings).</summary>
    public static string Literal(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    private string ResolveConnectionString()
    {
        if (_connectionString is not null)
        {
            return _connectionString;
        }

        var configuration = Context.Services.GetService<IConfiguration>();
        var value = configuration?.GetConnectionString(_connectionStringName!);
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new InvalidOperationException(
                $"Sink '{Context.OperatorName}': the silo's configuration has no connection string '{_connectionStringName}' (ConnectionStrings:{_connectionStringName}); add it or set PostgresSink.ConnectionString.");
        }

        return ParseProblem(value) is { } problem ? throw new InvalidOperationException($"Sink '{Context.OperatorName}': ConnectionStrings:{_connectionStringName}: {problem}") : value;
    }

    private string OnConflict()
    {
        var keys = string.Join(", ", KeyColumns.Select(Quote));
        var updated = Columns.Where(c => !KeyColumns.Contains(c, StringComparer.Ordinal)).ToList();
        return updated.Count == 0
            ? $" ON CONFLICT ({keys}) DO NOTHING"
            : $" ON CONFLICT ({keys}) DO UPDATE SET {string.Join(", ", updated.Select(c => $"{Quote(c)} = EXCLUDED.{Quote(c)}"))}";
    }

    private static async Task<bool> CommitPreparedAsync(NpgsqlConnection connection, string gid, CancellationToken cancellationToken)
    {
        try
        {
            await using var command = new NpgsqlCommand($"COMMIT PREPARED {Literal(gid)}", connection);
            await command.ExecuteNonQueryAsync(cancellationToken);
            return true;
        }
        catch (PostgresException ex) when (ex.SqlState == UndefinedObject)
        {
            return false;
        }
    }

    private async Task<bool> CommitStagedAsync(NpgsqlConnection connection, string gid, CancellationToken cancellationToken)
    {
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        // Deleting the staged entry first locks it: a second commit of the same id running now waits, then finds it gone and the marker there.
        long checkpointId;
        long records;
        await using (var command = new NpgsqlCommand($"DELETE FROM {Ready.Staged} WHERE gid = @gid RETURNING checkpoint_id, record_count", connection, transaction))
        {
            command.Parameters.AddWithValue("gid", gid);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                return false;
            }

            checkpointId = reader.GetInt64(0);
            records = reader.GetInt64(1);
        }

        var columns = string.Join(", ", Columns.Select(Quote));
        var move = Mode == PostgresSinkMode.Upsert
            ? $"INSERT INTO {Ready.Target} ({columns}) SELECT {columns} FROM (SELECT DISTINCT ON ({string.Join(", ", KeyColumns.Select(Quote))}) {columns} FROM {Ready.Staging} "
              + $"WHERE platform_gid = $1 ORDER BY {string.Join(", ", KeyColumns.Select(Quote))}, platform_ord DESC) AS latest{OnConflict()}"
            : $"INSERT INTO {Ready.Target} ({columns}) SELECT {columns} FROM {Ready.Staging} WHERE platform_gid = $1 ORDER BY platform_ord";
        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            var marker = new NpgsqlBatchCommand(MarkerSql(PostgresCommitScheme.TwoPhaseCommit));
            AddMarkerParameters(marker, gid, checkpointId, records);
            batch.BatchCommands.Add(marker);
            var insert = new NpgsqlBatchCommand(move);
            insert.Parameters.Add(new NpgsqlParameter { Value = gid });
            batch.BatchCommands.Add(insert);
            var delete = new NpgsqlBatchCommand($"DELETE FROM {Ready.Staging} WHERE platform_gid = $1");
            delete.Parameters.Add(new NpgsqlParameter { Value = gid });
            batch.BatchCommands.Add(delete);
            await batch.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return true;
    }

    private async Task<bool> IsMarkedCommittedAsync(NpgsqlConnection connection, string gid, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"SELECT EXISTS (SELECT 1 FROM {Ready.Commits} WHERE gid = @gid)", connection);
        command.Parameters.AddWithValue("gid", gid);
        return await command.ExecuteScalarAsync(cancellationToken) is true;
    }

    private async Task CreateOwnTablesAsync(NpgsqlConnection connection, Resolved resolved, CancellationToken cancellationToken)
    {
        var columns = string.Join(", ", Columns.Select(Quote));
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        // One subtask at a time: CREATE TABLE IF NOT EXISTS is not safe against a concurrent one.
        var sql = $"""
            SELECT pg_advisory_xact_lock(hashtext('platform_sink_setup'));
            CREATE TABLE IF NOT EXISTS {resolved.Commits} (
              gid text PRIMARY KEY, job_id text NOT NULL, sink_uid text NOT NULL, subtask integer NOT NULL,
              checkpoint_id bigint NOT NULL, record_count bigint NOT NULL, written_at timestamptz NOT NULL DEFAULT now());
            """;
        if (resolved.Scheme == PostgresCommitScheme.Staging)
        {
            sql += $"""

                CREATE TABLE IF NOT EXISTS {resolved.Staged} (
                  gid text PRIMARY KEY, job_id text NOT NULL, sink_uid text NOT NULL, subtask integer NOT NULL,
                  checkpoint_id bigint NOT NULL, record_count bigint NOT NULL, written_at timestamptz NOT NULL DEFAULT now());
                """;
        }

        await using (var command = new NpgsqlCommand(sql, connection, transaction))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        // Only when missing: ALTER TABLE would wait for every open transaction that writes into the staging table.
        if (resolved.Scheme == PostgresCommitScheme.Staging)
        {
            await using var exists = new NpgsqlCommand("SELECT to_regclass(@staging) IS NOT NULL", connection, transaction);
            exists.Parameters.AddWithValue("staging", resolved.Staging);
            if (await exists.ExecuteScalarAsync(cancellationToken) is not true)
            {
                await using var command = new NpgsqlCommand(
                    $"""
                    CREATE TABLE {resolved.Staging} AS SELECT {columns} FROM {resolved.Target} WITH NO DATA;
                    ALTER TABLE {resolved.Staging} ADD COLUMN platform_gid text NOT NULL, ADD COLUMN platform_ord bigint NOT NULL;
                    CREATE INDEX {Quote(StagingIndexName(resolved.Staging))} ON {resolved.Staging} (platform_gid);
                    """, connection, transaction);
                await command.ExecuteNonQueryAsync(cancellationToken);
            }
        }

        await transaction.CommitAsync(cancellationToken);
    }

    private static string StagingIndexName(string staging) =>
        $"platform_staging_gid_{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(staging)))[..16]}";

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Sink '{Sink}' subtask {Subtask} writes {Target} exactly-once by {Scheme} (max_prepared_transactions = {MaxPrepared})")]
    private static partial void LogScheme(ILogger logger, string sink, int subtask, string target, PostgresCommitScheme scheme, int maxPrepared);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Sink '{Sink}': max_prepared_transactions is {MaxPrepared}, fewer than two per subtask of its parallelism {Parallelism}; PREPARE TRANSACTION may fail when checkpoints overlap with commits")]
    private static partial void LogFewPreparedTransactions(ILogger logger, string sink, int maxPrepared, int parallelism);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "Sink '{Sink}' subtask {Subtask} committed '{Gid}' ({Records} records)")]
    private static partial void LogCommitted(ILogger logger, string sink, int subtask, string gid, long records);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Sink '{Sink}' subtask {Subtask}: '{Gid}' was committed before; nothing to do")]
    private static partial void LogAlreadyCommitted(ILogger logger, string sink, int subtask, string gid);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Sink '{Sink}' subtask {Subtask} rolled back lingering transaction '{Gid}'")]
    private static partial void LogAborted(ILogger logger, string sink, int subtask, string gid);

    /// <summary>The table and scheme found at open.</summary>
    private sealed record Resolved(PostgresCommitScheme Scheme, string Target, string Commits, string Staged, string Staging);
}
