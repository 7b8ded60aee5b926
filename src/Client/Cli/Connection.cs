using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Platform.Client;
using StackExchange.Redis;

namespace Platform.Cli;

/// <summary>
/// Where the cluster is: its gateways (static), or the Redis server whose membership table lists them (<see cref="Redis"/>),
/// and its ids; from the options, the environment, or the silo host's defaults.
/// </summary>
internal sealed record ConnectionSettings(string Gateway, IReadOnlyList<IPEndPoint> Gateways, string ClusterId, string ServiceId)
{
    /// <summary>The gateway of a silo host started with no configuration (src/Silo: gateway port 30000 on 127.0.0.1).</summary>
    public const string DefaultGateway = "127.0.0.1:30000";

    /// <summary>The cluster and service id of a silo host started with no configuration.</summary>
    public const string DefaultId = "dev";

    public const string GatewayVariable = "PLATFORM_GATEWAY";
    public const string RedisVariable = "PLATFORM_REDIS";
    public const string ClusterIdVariable = "PLATFORM_CLUSTER_ID";
    public const string ServiceIdVariable = "PLATFORM_SERVICE_ID";

    /// <summary>
    /// The Redis connection string of the cluster's membership table (silos with <c>Orleans:Clustering:ProviderType</c> =
    /// <c>Redis</c>); when set, the client finds the gateways there instead of <see cref="Gateways"/>.
    /// </summary>
    public ConfigurationOptions? Redis { get; init; }

    /// <summary>Which option or variable named <see cref="Redis"/> (<c>--redis</c> or <c>PLATFORM_REDIS</c>).</summary>
    public string? RedisSource { get; init; }

    /// <summary>
    /// Reads the settings: an option wins over its environment variable, which wins over the default; a Redis server
    /// (<c>--redis</c>, <c>PLATFORM_REDIS</c>) and a gateway given at the same level are bad usage.
    /// </summary>
    /// <exception cref="CliException">
    /// The gateway is not <c>host:port</c> or the Redis connection string cannot be read (bad usage), or the gateway's host
    /// name does not resolve.
    /// </exception>
    public static ConnectionSettings Resolve(string? gateway, string? clusterId, string? serviceId, string? redis = null)
    {
        var clusterIdValue = FirstSet(clusterId, Environment.GetEnvironmentVariable(ClusterIdVariable)) ?? DefaultId;
        var serviceIdValue = FirstSet(serviceId, Environment.GetEnvironmentVariable(ServiceIdVariable)) ?? DefaultId;
        var (redisText, redisSource) = (FirstSet(gateway), FirstSet(redis)) switch
        {
            ({ }, { }) => throw new CliException(ExitCodes.BadUsage, "Give either --gateway or --redis, not both."),
            (null, { } option) => (option, "--redis"),
            ({ }, null) => (null, null),
            (null, null) => (FirstSet(Environment.GetEnvironmentVariable(GatewayVariable)), FirstSet(Environment.GetEnvironmentVariable(RedisVariable))) switch
            {
                ({ }, { }) => throw new CliException(ExitCodes.BadUsage, $"Both {GatewayVariable} and {RedisVariable} are set; unset one, or choose with --gateway or --redis."),
                (_, { } variable) => (variable, RedisVariable),
                _ => ((string?)null, (string?)null),
            },
        };

        if (redisText is not null)
        {
            ConfigurationOptions options;
            try
            {
                options = ConfigurationOptions.Parse(redisText);
            }
            catch (ArgumentException ex)
            {
                throw new CliException(ExitCodes.BadUsage, $"{redisSource} is not a Redis connection string ({ex.Message}); for example 127.0.0.1:6379.", ex);
            }

            if (options.EndPoints.Count == 0)
            {
                throw new CliException(ExitCodes.BadUsage, $"{redisSource} names no Redis server; for example 127.0.0.1:6379.");
            }

            // Shown in messages; never the password.
            var shown = string.Join(",", options.EndPoints.Select(EndPointCollection.ToString));
            return new ConnectionSettings(shown, [], clusterIdValue, serviceIdValue) { Redis = options, RedisSource = redisSource };
        }

        var text = FirstSet(gateway, Environment.GetEnvironmentVariable(GatewayVariable)) ?? DefaultGateway;
        var endpoints = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(ParseEndpoint).ToList();
        if (endpoints.Count == 0)
        {
            throw new CliException(ExitCodes.BadUsage, $"The gateway '{text}' is empty; give host:port, for example {DefaultGateway}.");
        }

        return new ConnectionSettings(text, endpoints, clusterIdValue, serviceIdValue);
    }


    /// <summary>How the settings read in a message: the gateway or Redis server, and the cluster id.</summary>
    public string Describe() => Redis is null
        ? $"gateway {Gateway} (cluster id '{ClusterId}')"
        : $"Redis {Gateway} (cluster id '{ClusterId}', service id '{ServiceId}')";

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

        builder.UseOrleansClient(client =>
        {
            if (settings.Redis is { } redis)
            {
                // Gateway discovery: the silos' Redis membership table lists the active ones (ServiceId/members/ClusterId).
                client.UseRedisClustering(options => options.ConfigurationOptions = redis.Clone());
            }
            else
            {
                client.UseStaticClustering([.. settings.Gateways]);
            }

            client.Configure<ClusterOptions>(options =>
            {
                options.ClusterId = settings.ClusterId;
                options.ServiceId = settings.ServiceId;
            });

            // A command line reports a gateway that does not answer at once; Orleans would otherwise keep retrying.
            client.UseConnectionRetryFilter((_, _) => Task.FromResult(false));
        });

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

            var reason = ex is OperationCanceledException ? $"no answer within {ConnectTimeout.TotalSeconds:0} s"
                // The Redis client goes on to advise abortConnect=false, which is not the cure for a server that is down.
                : Errors.Innermost(ex) is RedisConnectionException redisError ? redisError.Message.Split(". ", 2)[0]
                : Errors.Innermost(ex).Message;
            throw new CliException(
                ExitCodes.CannotConnect,
                $"Cannot connect to the cluster at {settings.Describe()}: {reason.TrimEnd('.')}. " +
                (settings.Redis is null
                    ? $"Is a silo running there? Set the gateway with --gateway or {ConnectionSettings.GatewayVariable} (or the silos' Redis with --redis or {ConnectionSettings.RedisVariable}), "
                    : $"Is Redis ({settings.RedisSource}) up, and a silo of that cluster running? Set ") +
                $"the cluster id with --cluster-id or {ConnectionSettings.ClusterIdVariable}, the service id with --service-id or {ConnectionSettings.ServiceIdVariable}.",
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
