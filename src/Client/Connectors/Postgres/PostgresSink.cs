using Npgsql;

namespace Platform.Connectors.Postgres;

/// <summary>How a <see cref="PostgresSink{T}"/> writes rows into its table.</summary>
public enum PostgresSinkMode
{
    /// <summary>Every record becomes a new row (<c>INSERT</c>).</summary>
    Append = 0,

    /// <summary>
    /// A record replaces the row with the same key (<c>INSERT ... ON CONFLICT (keys) DO UPDATE</c>); the key columns
    /// need a unique index or primary key. Within one transaction the last record of a key wins.
    /// </summary>
    Upsert = 1,
}

/// <summary>How a <see cref="PostgresSink{T}"/> makes its output exactly-once.</summary>
public enum PostgresCommitScheme
{
    /// <summary>
    /// Two-phase commit when the server allows prepared transactions (<c>max_prepared_transactions</c> &gt; 0),
    /// the staging scheme otherwise; decided when the subtask starts and said in a log line.
    /// </summary>
    Auto = 0,

    /// <summary>
    /// PostgreSQL's two-phase commit: <c>PREPARE TRANSACTION</c> at the barrier, <c>COMMIT PREPARED</c> when the
    /// checkpoint completes. Needs <c>max_prepared_transactions</c> &gt; 0 (at least the sink's parallelism).
    /// </summary>
    TwoPhaseCommit = 1,

    /// <summary>
    /// For servers without prepared transactions: rows are committed into a staging table at the barrier and moved
    /// into the target, together with the commit marker, in one local transaction when the checkpoint completes.
    /// </summary>
    Staging = 2,
}

/// <summary>Turns a record into the values of one row, in the order of <see cref="PostgresSink{T}.Columns"/>.</summary>
/// <typeparam name="T">The record type.</typeparam>
/// <remarks>Serialized into the job graph like every function: give implementations <c>[GenerateSerializer]</c>.</remarks>
public interface IPostgresRowMapper<in T>
{
    /// <summary>Returns one value per column (<c>null</c> for SQL NULL).</summary>
    object?[] Map(T record);
}

/// <summary>
/// What commits one pre-committed transaction of a <see cref="PostgresSink{T}"/>: its global transaction id, which
/// names the job, sink uid, subtask, attempt and checkpoint (<c>platform:{job}:{sink uid}:{subtask}:a{attempt}.{sequence}.{nonce}</c>).
/// </summary>
[GenerateSerializer, Alias("platform.PostgresCommittable")]
public sealed record PostgresCommittable
{
    /// <summary>The global transaction id: the prepared transaction's id, or the staged rows' id.</summary>
    [Id(0)] public required string TransactionId { get; init; }

    /// <summary>How it was pre-committed (<see cref="PostgresCommitScheme.TwoPhaseCommit"/> or <see cref="PostgresCommitScheme.Staging"/>).</summary>
    [Id(1)] public required PostgresCommitScheme Scheme { get; init; }

    /// <summary>The checkpoint it belongs to.</summary>
    [Id(2)] public long CheckpointId { get; init; }

    /// <summary>How many records were written into it (an upsert's rows may be fewer).</summary>
    [Id(3)] public long RecordCount { get; init; }
}

/// <summary>
/// Writes records into a PostgreSQL table, exactly once (Flink's JDBC exactly-once sink, on PostgreSQL's own two-phase
/// commit). Each parallel subtask writes into an open transaction; at a checkpoint's barrier the transaction is
/// pre-committed under a global transaction id that goes into the checkpoint, and committed once the checkpoint
/// completes. A commit is idempotent: every transaction also writes its id into <c>platform_sink_commits</c> (in the
/// target table's schema), so that a commit that finds no prepared transaction knows whether it committed before (the
/// id is there) or was lost (it is not: an error naming the id). On a fresh start or restore, every transaction of the
/// subtask that is not among the recovered committables is rolled back.
/// </summary>
/// <remarks>
/// <para>
/// Two schemes (<see cref="Scheme"/>): with <c>max_prepared_transactions</c> &gt; 0, <c>PREPARE TRANSACTION 'gid'</c> at
/// the barrier and <c>COMMIT PREPARED 'gid'</c> on completion; with <c>max_prepared_transactions = 0</c> the rows go,
/// inside the open transaction, into a staging table <c>{table}__platform_staging</c> tagged with the id, which is
/// committed at the barrier (durable, invisible in the target), and on completion one local transaction inserts the
/// commit marker (<c>ON CONFLICT DO NOTHING</c>: a second commit finds it and does nothing), moves the staged rows
/// into the target and deletes them from staging.
/// </para>
/// <para>
/// Table and column names are used exactly as given (quoted identifiers; <see cref="Table"/> may be
/// <c>schema.table</c>). The table must exist. Values come from <see cref="RowMapper"/>, or else from the record's
/// public properties named like the columns (case and underscores ignored), or, for one column, the record itself.
/// </para>
/// </remarks>
/// <typeparam name="T">The record type.</typeparam>
[GenerateSerializer, Alias("platform.PostgresSink`1")]
public sealed class PostgresSink<T> : ITwoPhaseCommittingSink<T, PostgresCommittable>, IValidatingFunction
{
    /// <summary>The Npgsql connection string; leave empty to use <see cref="ConnectionStringName"/>.</summary>
    [Id(0)] public string ConnectionString { get; set; } = "";

    /// <summary>The name of a connection string in the silo's configuration (<c>ConnectionStrings:{name}</c>).</summary>
    [Id(1)] public string? ConnectionStringName { get; set; }

    /// <summary>The target table, <c>table</c> or <c>schema.table</c>; it must exist.</summary>
    [Id(2)] public string Table { get; set; } = "";

    /// <summary>The columns written, in the order of the row mapper's values.</summary>
    [Id(3)] public string[] Columns { get; set; } = [];

    /// <summary>Maps a record to its row; <c>null</c> to read the record's properties named like the columns.</summary>
    [Id(4)] public IPostgresRowMapper<T>? RowMapper { get; set; }

    /// <summary>Append or upsert.</summary>
    [Id(5)] public PostgresSinkMode Mode { get; set; } = PostgresSinkMode.Append;

    /// <summary>The key columns of <see cref="PostgresSinkMode.Upsert"/> (a unique index or primary key on them must exist).</summary>
    [Id(6)] public string[] KeyColumns { get; set; } = [];

    /// <summary>How exactly-once is reached; <see cref="PostgresCommitScheme.Auto"/> asks the server.</summary>
    [Id(7)] public PostgresCommitScheme Scheme { get; set; } = PostgresCommitScheme.Auto;

    /// <summary>The most rows one <c>INSERT</c> statement carries (fewer when the columns would pass 65,535 parameters).</summary>
    [Id(8)] public int MaxRowsPerStatement { get; set; } = 1000;

    /// <inheritdoc />
    public IEnumerable<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(ConnectionString) && string.IsNullOrWhiteSpace(ConnectionStringName))
        {
            problems.Add("The PostgreSQL sink has no connection string: set PostgresSink.ConnectionString, or ConnectionStringName to a ConnectionStrings entry of the silos' configuration.");
        }
        else if (!string.IsNullOrWhiteSpace(ConnectionString) && PostgresSinkSql.ParseProblem(ConnectionString) is { } problem)
        {
            problems.Add(problem);
        }

        if (string.IsNullOrWhiteSpace(Table))
        {
            problems.Add("The PostgreSQL sink has no table: set PostgresSink.Table (table or schema.table).");
        }
        else if (Table.Split('.').Length > 2 || Table.Split('.').Any(string.IsNullOrWhiteSpace))
        {
            problems.Add($"The PostgreSQL sink's table '{Table}' is not 'table' or 'schema.table'.");
        }

        if (Columns.Length == 0)
        {
            problems.Add("The PostgreSQL sink has no columns: set PostgresSink.Columns to the columns its rows fill.");
        }

        if (Columns.Distinct(StringComparer.Ordinal).Count() != Columns.Length)
        {
            problems.Add($"The PostgreSQL sink's columns ({string.Join(", ", Columns)}) name a column twice.");
        }

        if (Mode == PostgresSinkMode.Upsert)
        {
            if (KeyColumns.Length == 0)
            {
                problems.Add("The PostgreSQL sink upserts but has no key columns: set PostgresSink.KeyColumns.");
            }

            var missing = KeyColumns.Where(k => !Columns.Contains(k, StringComparer.Ordinal)).ToList();
            if (missing.Count > 0)
            {
                problems.Add($"The PostgreSQL sink's key columns {string.Join(", ", missing)} are not among its columns ({string.Join(", ", Columns)}).");
            }
        }

        if (MaxRowsPerStatement < 1)
        {
            problems.Add($"PostgresSink.MaxRowsPerStatement is {MaxRowsPerStatement}; it must be at least 1.");
        }

        return problems;
    }

    /// <inheritdoc />
    public IPrecommittingSinkWriter<T, PostgresCommittable> CreatePrecommittingWriter(SinkWriterContext context)
    {
        ThrowIfInvalid(context);
        return new PostgresSinkWriter<T>(this, context);
    }

    /// <inheritdoc />
    public ISinkCommitter<PostgresCommittable> CreateCommitter(SinkWriterContext context)
    {
        ThrowIfInvalid(context);
        return new PostgresSinkCommitter(CreateSql(context));
    }

    internal PostgresSinkSql CreateSql(SinkWriterContext context) =>
        new(ConnectionString, ConnectionStringName, Table, Columns, KeyColumns, Mode, Scheme, context);

    private void ThrowIfInvalid(SinkWriterContext context)
    {
        var problems = Validate().ToList();
        if (problems.Count > 0)
        {
            throw new InvalidOperationException($"Sink '{context.OperatorName}': {string.Join(" ", problems)}");
        }
    }
}

/// <summary>Builds connection strings for the sink.</summary>
internal static class PostgresConnectionStrings
{
    /// <summary>
    /// The connection string with an application name identifying the sink subtask, so that <c>pg_stat_activity</c>
    /// shows which subtask holds a connection (PostgreSQL keeps 63 bytes of it).
    /// </summary>
    public static string WithApplicationName(string connectionString, string applicationName)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = applicationName.Length > 63 ? applicationName[..63] : applicationName };
        return builder.ConnectionString;
    }
}
