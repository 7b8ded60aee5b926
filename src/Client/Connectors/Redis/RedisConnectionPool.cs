using StackExchange.Redis;

namespace Platform.Connectors.Redis;

/// <summary>
/// One <see cref="IConnectionMultiplexer"/> per connection string in a process, shared by every reader, writer and
/// committer that uses it (StackExchange.Redis multiplexes all of them over one connection), and closed when the last
/// lease goes.
/// </summary>
internal static class RedisConnectionPool
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, Entry> Entries = new(StringComparer.Ordinal);

    /// <summary>Leases the connection to <paramref name="connectionString"/>; connecting happens in the background.</summary>
    /// <exception cref="ArgumentException">The connection string cannot be parsed.</exception>
    public static Lease Acquire(string connectionString)
    {
        lock (Gate)
        {
            if (!Entries.TryGetValue(connectionString, out var entry))
            {
                var options = ConfigurationOptions.Parse(connectionString);

                // Keep reconnecting after a server restart instead of failing every later command.
                options.AbortOnConnectFail = false;
                entry = new Entry(ConnectionMultiplexer.ConnectAsync(options));
                Entries.Add(connectionString, entry);
            }

            entry.References++;
            return new Lease(connectionString, entry);
        }
    }

    private static void Release(string connectionString, Entry entry)
    {
        lock (Gate)
        {
            if (--entry.References > 0)
            {
                return;
            }

            Entries.Remove(connectionString);
        }

        // Closing waits for the socket; never on the caller's (possibly a grain's) thread.
        _ = entry.Connection.ContinueWith(
            static connecting =>
            {
                if (connecting.IsCompletedSuccessfully)
                {
                    connecting.Result.Dispose();
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.None,
            TaskScheduler.Default);
    }

    internal sealed class Entry(Task<ConnectionMultiplexer> connection)
    {
        public Task<ConnectionMultiplexer> Connection { get; } = connection;

        public int References { get; set; }
    }

    /// <summary>A use of a pooled connection; dispose it once.</summary>
    public sealed class Lease : IDisposable
    {
        private readonly string _connectionString;
        private readonly Entry _entry;
        private int _disposed;

        internal Lease(string connectionString, Entry entry)
        {
            _connectionString = connectionString;
            _entry = entry;
        }

        /// <summary>Completes once the connection is set up (it reconnects by itself afterwards).</summary>
        public async Task<IConnectionMultiplexer> GetAsync() => await _entry.Connection;

        /// <inheritdoc />
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Release(_connectionString, _entry);
            }
        }
    }
}
