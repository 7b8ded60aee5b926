namespace Platform.Tests.Infrastructure;

/// <summary>One <see cref="PostgresServer"/> with prepared transactions (<c>max_prepared_transactions = 16</c>), shared by the tests of a class.</summary>
public sealed class PostgresServerFixture : IAsyncLifetime
{
    private PostgresServer? _server;

    /// <summary>The running server.</summary>
    public PostgresServer Server => _server ?? throw new InvalidOperationException("The PostgreSQL server has not started.");

    /// <inheritdoc />
    public async Task InitializeAsync() => _server = await PostgresServer.StartAsync(maxPreparedTransactions: 16);

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

/// <summary>One <see cref="PostgresServer"/> without prepared transactions (<c>max_prepared_transactions = 0</c>), shared by the tests of a class.</summary>
public sealed class PostgresServerWithoutPreparedTransactionsFixture : IAsyncLifetime
{
    private PostgresServer? _server;

    /// <summary>The running server.</summary>
    public PostgresServer Server => _server ?? throw new InvalidOperationException("The PostgreSQL server has not started.");

    /// <inheritdoc />
    public async Task InitializeAsync() => _server = await PostgresServer.StartAsync(maxPreparedTransactions: 0);

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
