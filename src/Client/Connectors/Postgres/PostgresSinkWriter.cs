using System.Reflection;
using System.Security.Cryptography;
using Npgsql;

namespace Platform.Connectors.Postgres;

/// <summary>
/// Writes one subtask's rows into an open transaction on a connection of its own (not pooled, so that closing it,
/// or the process dying, rolls back what is not pre-committed). Append rows go to the server at every flush, inside the
/// transaction; upsert rows are kept in memory, the last one per key, and written at the pre-commit, so that a key's
/// row is locked only from the pre-commit to the commit.
/// </summary>
internal sealed class PostgresSinkWriter<T> : IPrecommittingSinkWriter<T, PostgresCommittable>
{
    /// <summary>PostgreSQL's limit on the parameters of one statement.</summary>
    private const int MaxParameters = 65_535;

    private readonly PostgresSinkSql _sql;
    private readonly Func<T, object?[]> _map;
    private readonly int[] _keyIndexes;
    private readonly int _rowsPerStatement;
    private readonly string _nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
    private readonly List<object?[]> _appends = [];
    private readonly Dictionary<object?[], object?[]> _upserts = new(KeyComparer.Instance);
    private readonly Dictionary<int, string> _insertSql = [];
    private NpgsqlConnection? _connection;
    private bool _inTransaction;
    private long _records;
    private long _ordinal;
    private long _sequence;
    private string? _gid;

    public PostgresSinkWriter(PostgresSink<T> sink, SinkWriterContext context)
    {
        _sql = sink.CreateSql(context);
        _map = sink.RowMapper is { } mapper ? mapper.Map : PropertyMapper(sink.Columns, context.OperatorName);
        _keyIndexes = [.. sink.KeyColumns.Select(k => Array.IndexOf(sink.Columns, k))];
        var width = sink.Columns.Length + 2;
        _rowsPerStatement = Math.Max(1, Math.Min(sink.MaxRowsPerStatement, MaxParameters / width));
    }

    /// <inheritdoc />
    public void Write(T record)
    {
        var row = _map(record);
        if (row.Length != _sql.Columns.Length)
        {
            throw new InvalidOperationException(
                $"Sink '{_sql.Context.OperatorName}': the row mapper returned {row.Length} values for {_sql.Columns.Length} columns ({string.Join(", ", _sql.Columns)}).");
        }

        _records++;
        if (_sql.Mode == PostgresSinkMode.Upsert)
        {
            var key = new object?[_keyIndexes.Length];
            for (var i = 0; i < key.Length; i++)
            {
                key[i] = row[_keyIndexes[i]];
            }

            _upserts[key] = row;
        }
        else
        {
            _appends.Add(row);
        }
    }

    /// <inheritdoc />
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        if (_appends.Count == 0)
        {
            return;
        }

        await WriteRowsAsync(_appends, cancellationToken);
        _appends.Clear();
    }

    /// <inheritdoc />
    public ValueTask FinishAsync(CancellationToken cancellationToken) => FlushAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<PostgresCommittable>> PrepareCommitAsync(long checkpointId, CancellationToken cancellationToken)
    {
        await FlushAsync(cancellationToken);
        if (_upserts.Count > 0)
        {
            await WriteRowsAsync([.. _upserts.Values], cancellationToken);
            _upserts.Clear();
        }

        if (!_inTransaction)
        {
            return [];
        }

        var scheme = _sql.Scheme;
        var gid = _gid!;
        await using (var batch = new NpgsqlBatch(_connection))
        {
            var marker = new NpgsqlBatchCommand(_sql.MarkerSql(scheme));
            _sql.AddMarkerParameters(marker, gid, checkpointId, _records);
            batch.BatchCommands.Add(marker);
            batch.BatchCommands.Add(new NpgsqlBatchCommand(scheme == PostgresCommitScheme.TwoPhaseCommit ? $"PREPARE TRANSACTION {PostgresSinkSql.Literal(gid)}" : "COMMIT"));
            try
            {
                await batch.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (PostgresException ex)
            {
                throw new InvalidOperationException(
                    $"Sink '{_sql.Context.OperatorName}' subtask {_sql.Context.SubtaskIndex} could not pre-commit '{gid}' ({_records} records) for checkpoint {checkpointId}: {ex.MessageText}{(ex.Hint is { } hint ? $" ({hint})" : "")}", ex);
            }
        }

        var committable = new PostgresCommittable { TransactionId = gid, Scheme = scheme, CheckpointId = checkpointId, RecordCount = _records };
        _inTransaction = false;
        _gid = null;
        _records = 0;
        _ordinal = 0;
        return [committable];
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        // Never commits: closing the unpooled connection rolls back the open transaction; prepared ones stay for the next attempt.
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
            _connection = null;
        }
    }

    private async Task WriteRowsAsync(IReadOnlyList<object?[]> rows, CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            var connection = await _sql.OpenAsync(writer: true, cancellationToken);
            try
            {
                await _sql.EnsureReadyAsync(connection, announce: false, cancellationToken);
            }
            catch
            {
                await connection.DisposeAsync();
                throw;
            }

            _connection = connection;
        }

        var staging = _sql.Scheme == PostgresCommitScheme.Staging;
        await using var batch = new NpgsqlBatch(_connection);
        if (!_inTransaction)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN"));
            _gid = _sql.Gid(++_sequence, _nonce);
        }

        for (var start = 0; start < rows.Count; start += _rowsPerStatement)
        {
            var count = Math.Min(_rowsPerStatement, rows.Count - start);
            if (!_insertSql.TryGetValue(count, out var text))
            {
                text = _sql.InsertSql(count, staging);
                if (count == _rowsPerStatement)
                {
                    _insertSql[count] = text;
                }
            }

            var command = new NpgsqlBatchCommand(text);
            for (var i = start; i < start + count; i++)
            {
                foreach (var value in rows[i])
                {
                    command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
                }

                if (staging)
                {
                    command.Parameters.Add(new NpgsqlParameter { Value = _gid });
                    command.Parameters.Add(new NpgsqlParameter { Value = _ordinal++ });
                }
            }

            batch.BatchCommands.Add(command);
        }

        try
        {
            await batch.ExecuteNonQueryAsync(cancellationToken);
            _inTransaction = true;
        }
        catch (PostgresException ex)
        {
            throw new InvalidOperationException(
                $"Sink '{_sql.Context.OperatorName}' subtask {_sql.Context.SubtaskIndex} could not write {rows.Count} rows: {ex.MessageText}{(ex.Detail is { } detail ? $" ({detail})" : "")}", ex);
        }
    }

    private static Func<T, object?[]> PropertyMapper(string[] columns, string operatorName)
    {
        static string Normalize(string name) => name.Replace("_", "", StringComparison.Ordinal).ToUpperInvariant();
        var members = typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0).Cast<MemberInfo>()
            .Concat(typeof(T).GetFields(BindingFlags.Public | BindingFlags.Instance))
            .ToList();
        var getters = new List<Func<T, object?>>();
        foreach (var column in columns)
        {
            var member = members.FirstOrDefault(m => Normalize(m.Name) == Normalize(column));
            switch (member)
            {
                case PropertyInfo property:
                    getters.Add(record => property.GetValue(record));
                    break;
                case FieldInfo field:
                    getters.Add(record => field.GetValue(record));
                    break;
                case null when columns.Length == 1:
                    getters.Add(record => record);
                    break;
                default:
                    throw new InvalidOperationException(
                        $"Sink '{operatorName}': {typeof(T).Name} has no public property or field for column '{column}'; name one like the column or set PostgresSink.RowMapper.");
            }
        }

        var array = getters.ToArray();
        return record =>
        {
            var row = new object?[array.Length];
            for (var i = 0; i < array.Length; i++)
            {
                row[i] = array[i](record);
            }

            return row;
        };
    }

    /// <summary>Compares upsert keys by their values.</summary>
    private sealed class KeyComparer : IEqualityComparer<object?[]>
    {
        public static readonly KeyComparer Instance = new();

        public bool Equals(object?[]? x, object?[]? y) => x is not null && y is not null && x.AsSpan().SequenceEqual(y);

        public int GetHashCode(object?[] key)
        {
            var hash = new HashCode();
            foreach (var value in key)
            {
                hash.Add(value);
            }

            return hash.ToHashCode();
        }
    }
}
