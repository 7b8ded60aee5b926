using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime;

namespace Platform.AppHost;

/// <summary>An Orleans client, in the AppHost's process, connected to the silos' gateways (static clustering).</summary>
internal sealed class ClusterConnection : IAsyncDisposable
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);
    private readonly IHost _host;

    private ClusterConnection(IHost host)
    {
        _host = host;
        Client = host.Services.GetRequiredService<IClusterClient>();
    }

    /// <summary>The connected client.</summary>
    public IClusterClient Client { get; }

    /// <summary>
    /// Connects to the cluster's gateways, retrying while they come up, and waits until every silo is an active member
    /// of the cluster.
    /// </summary>
    public static async Task<ClusterConnection> ConnectAsync(DemoSettings cluster, ConsoleOutput console, CancellationToken cancellationToken)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });

        // The AppHost's own host handles Ctrl+C and SIGTERM (it stops the whole application); the client host must not.
        builder.Services.AddSingleton<IHostLifetime, ManualLifetime>();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new PrefixedConsoleLoggerProvider(console, "client"));
        builder.Logging.SetMinimumLevel(LogLevel.Warning);

        var connectDeadline = DateTimeOffset.UtcNow + ConnectTimeout;
        builder.UseOrleansClient(client => client
            .UseStaticClustering(cluster.Gateways)
            .Configure<ClusterOptions>(options =>
            {
                options.ClusterId = cluster.ClusterId;
                options.ServiceId = DemoSettings.ServiceId;
            })
            .UseConnectionRetryFilter(async (_, token) =>
            {
                if (DateTimeOffset.UtcNow >= connectDeadline)
                {
                    return false;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(500), token);
                return true;
            }));

        var host = builder.Build();
        try
        {
            await host.StartAsync(cancellationToken);
            var connection = new ClusterConnection(host);
            await connection.WaitForActiveSilosAsync(cluster.Silos.Count, cancellationToken);
            console.Info($"client connected to {string.Join(", ", cluster.Gateways.Select(g => g.ToString()))}; {cluster.Silos.Count} active silo(s)");
            return connection;
        }
        catch
        {
            await StopAsync(host);
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await StopAsync(_host);

    private async Task WaitForActiveSilosAsync(int expected, CancellationToken cancellationToken)
    {
        var management = Client.GetGrain<IManagementGrain>(0);
        var deadline = DateTimeOffset.UtcNow + ConnectTimeout;
        var active = 0;
        while (true)
        {
            active = (await management.GetHosts(onlyActive: true).WaitAsync(cancellationToken)).Count;
            if (active >= expected)
            {
                return;
            }

            if (DateTimeOffset.UtcNow >= deadline)
            {
                throw new AppHostException($"Only {active} of {expected} silos joined the cluster within {ConnectTimeout.TotalSeconds:0} s.");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken);
        }
    }

    private static async Task StopAsync(IHost host)
    {
        using var timeout = new CancellationTokenSource(StopTimeout);
        try
        {
            await host.StopAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            // The application stops the silos next either way.
        }
        finally
        {
            host.Dispose();
        }
    }

    /// <summary>A host lifetime that reacts to no signal: the AppHost owns Ctrl+C and SIGTERM.</summary>
    private sealed class ManualLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Writes the client's log lines to the console with a <c>[client]</c> prefix.</summary>
    private sealed class PrefixedConsoleLoggerProvider(ConsoleOutput console, string prefix) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(console, prefix, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(ConsoleOutput console, string prefix, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var message = formatter(state, exception);
                var line = $"[{prefix}] {logLevel.ToString().ToLowerInvariant()}: {category}: {message}" + (exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message})");
                if (logLevel >= LogLevel.Warning)
                {
                    console.ErrorLine(line);
                }
                else
                {
                    console.Line(line);
                }
            }
        }
    }
}
