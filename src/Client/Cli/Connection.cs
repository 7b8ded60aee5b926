using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Platform.Client;

namespace Platform.Cli;

/// <summary>Where the cluster is: its gateways and ids, from the options, the environment, or the silo host's defaults.</summary>
internal sealed record ConnectionSettings(string Gateway, IReadOnlyList<IPEndPoint> Gateways, string ClusterId, string ServiceId)
{
    /// <summary>The gateway of a silo host started with no configuration (src/Silo: gateway port 30000 on 127.0.0.1).</summary>
    public const string DefaultGateway = "127.0.0.1:30000";

    /// <summary>The cluster and service id of a silo host started with no configuration.</summary>
    public const string DefaultId = "dev";

    public const string GatewayVariable = "PLATFORM_GATEWAY";
    public const string ClusterIdVariable = "PLATFORM_CLUSTER_ID";
    public const string ServiceIdVariable = "PLATFORM_SERVICE_ID";

    /// <summary>Reads the settings: an option wins over its environment variable, which wins over the default.</summary>
    /// <exception cref="CliException">The gateway is not <c>host:port</c> (bad usage) or its host name does not resolve.</exception>
    public static ConnectionSettings Resolve(string? gateway, string? clusterId, string? serviceId)
    {
        var text = FirstSet(gateway, Environment.GetEnvironmentVariable(GatewayVariable)) ?? DefaultGateway;
        var endpoints = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(ParseEndpoint).ToList();
        if (endpoints.Count == 0)
        {
            throw new CliException(ExitCodes.BadUsage, $"The gateway '{text}' is empty; give host:port, for example {DefaultGateway}.");
        }

        return new ConnectionSettings(
            text,
            endpoints,
            FirstSet(clusterId, Environment.GetEnvironmentVariable(ClusterIdVariable)) ?? DefaultId,
            FirstSet(serviceId, Environment.GetEnvironmentVariable(ServiceIdVariable)) ?? DefaultId);
    }

    /// <summary>How the settings read in a message: the gateway and the cluster id.</summary>
    public string Describe() => $"gateway {Gateway} (cluster id '{ClusterId}')";

    private static string? FirstSet(params string?[] values) => values.FirstOrDefault(v => !string.IsNullOrWhiteSpace(v))?.Trim();

    private static IPEndPoint ParseEndpoint(string text)
    {
        // host:port, or [v6 address]:port.
        var colon = text.LastIndexOf(':');
        var host = colon > 0 ? text[..colon].Trim('[', ']') : "";
        if (colon <= 0 || host.Length == 0
            || !int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw new CliException(ExitCodes.BadUsage, $"The gateway '{text}' is not host:port (a port from 1 to 65535); for example {DefaultGateway}.");
        }

        if (IPAddress.TryParse(host, out var address))
        {
            return new IPEndPoint(address, port);
        }

        try
        {
            var addresses = Dns.GetHostAddresses(host);
            var chosen = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault();
            return chosen is not null
                ? new IPEndPoint(chosen, port)
                : throw new CliException(ExitCodes.CannotConnect, $"Cannot connect to gateway {text}: host '{host}' has no address.");
        }
        catch (SocketException ex)
        {
            throw new CliException(ExitCodes.CannotConnect, $"Cannot connect to gateway {text}: host '{host}' does not resolve ({ex.Message}).", ex);
        }
    }
}

/// <summary>An Orleans client connected to the cluster's gateway, and the <see cref="PlatformClient"/> over it.</summary>
internal sealed class Connection : IAsyncDisposable
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);
    private readonly IHost _host;

    private Connection(IHost host, ConnectionSettings settings)
    {
        _host = host;
        Settings = settings;
        Platform = new PlatformClient(host.Services.GetRequiredService<IClusterClient>());
    }

    /// <summary>Where the client is connected.</summary>
    public ConnectionSettings Settings { get; }

    /// <summary>The platform's client.</summary>
    public PlatformClient Platform { get; }

    /// <summary>Connects to the gateway; <paramref name="verbose"/> lets the Orleans client log warnings to stderr.</summary>
    /// <exception cref="CliException">The gateway cannot be reached (<see cref="ExitCodes.CannotConnect"/>).</exception>
    public static async Task<Connection> OpenAsync(ConnectionSettings settings, bool verbose, CancellationToken cancellationToken)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });

        // Ctrl+C belongs to the command line (it cancels the command), not to the client's host.
        builder.Services.AddSingleton<IHostLifetime, NoSignalsLifetime>();
        builder.Logging.ClearProviders();
        if (verbose)
        {
            builder.Logging.AddProvider(new StandardErrorLoggerProvider());
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
        }

        builder.UseOrleansClient(client => client
            .UseStaticClustering([.. settings.Gateways])
            .Configure<ClusterOptions>(options =>
            {
                options.ClusterId = settings.ClusterId;
                options.ServiceId = settings.ServiceId;
            })
            // A command line reports a gateway that does not answer at once; Orleans would otherwise keep retrying.
            .UseConnectionRetryFilter((_, _) => Task.FromResult(false)));

        var host = builder.Build();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ConnectTimeout);
        try
        {
            await host.StartAsync(timeout.Token);
            return new Connection(host, settings);
        }
        catch (Exception ex)
        {
            await StopAsync(host);
            if (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(cancellationToken);
            }

            var reason = ex is OperationCanceledException ? $"no answer within {ConnectTimeout.TotalSeconds:0} s" : Errors.Innermost(ex).Message;
            throw new CliException(
                ExitCodes.CannotConnect,
                $"Cannot connect to the cluster at {settings.Describe()}: {reason.TrimEnd('.')}. " +
                $"Is a silo running there? Set the gateway with --gateway or {ConnectionSettings.GatewayVariable}, the cluster id with --cluster-id or {ConnectionSettings.ClusterIdVariable}.",
                ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await StopAsync(_host);

    private static async Task StopAsync(IHost host)
    {
        using var timeout = new CancellationTokenSource(StopTimeout);
        try
        {
            await host.StopAsync(timeout.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or OrleansException or InvalidOperationException)
        {
            // Closing a client that never connected, or whose gateway is gone: nothing is left to release but the host.
        }
        finally
        {
            host.Dispose();
        }
    }

    /// <summary>A host lifetime that reacts to no signal.</summary>
    private sealed class NoSignalsLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Writes the Orleans client's log lines to stderr (with --verbose).</summary>
    private sealed class StandardErrorLoggerProvider : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                Console.Error.WriteLine($"{logLevel.ToString().ToLowerInvariant()}: {category}: {formatter(state, exception)}" +
                                        (exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message})"));
        }
    }
}
