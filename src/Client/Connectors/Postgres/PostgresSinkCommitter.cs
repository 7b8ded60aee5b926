namespace Platform.Connectors.Postgres;

/// <summary>Commits the transactions a <see cref="PostgresSinkWriter{T}"/> pre-committed; a connection per call, from the pool.</summary>
internal sealed class PostgresSinkCommitter(PostgresSinkSql sql) : ISinkCommitter<PostgresCommittable>
{
    /// <inheritdoc />
    public async Task CommitAsync(long checkpointId, IReadOnlyList<PostgresCommittable> committables, CancellationToken cancellationToken)
    {
        if (committables.Count == 0)
        {
            return;
        }

        await using var connection = await sql.OpenAsync(writer: false, cancellationToken);
        await sql.EnsureReadyAsync(connection, announce: false, cancellationToken);
        foreach (var committable in committables)
        {
            await sql.CommitAsync(connection, committable, cancellationToken);
        }
    }

    /// <inheritdoc />
    public async Task AbortLingeringTransactionsAsync(IReadOnlyCollection<PostgresCommittable> recovered, CancellationToken cancellationToken)
    {
        // Runs once at every start, fresh or restored: where the scheme in force is said.
        await using var connection = await sql.OpenAsync(writer: false, cancellationToken);
        await sql.EnsureReadyAsync(connection, announce: true, cancellationToken);
        await sql.AbortLingeringAsync(connection, recovered, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
