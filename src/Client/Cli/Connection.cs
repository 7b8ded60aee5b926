using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Platform.Client;
using Platform.Security;
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
    public const string ConnectTimeoutVariable = "PLATFORM_CONNECT_TIMEOUT";
    public const string TlsCertificateVariable = "PLATFORM_TLS_CERTIFICATE";
    public const string TlsKeyVariable = "PLATFORM_TLS_KEY";
    public const string TlsCaVariable = "PLATFORM_TLS_CA";
    public const string TlsPasswordVariable = "PLATFORM_TLS_PASSWORD";

    /// <summary>
    /// The default connect timeout (Flink's <c>client.timeout</c> is 60 s too): a command line started among many others
    /// on a busy machine needs seconds of CPU before its first call, so a short timeout reports a healthy cluster as down.
    /// </summary>
    public const int DefaultConnectTimeoutSeconds = 60;

    /// <summary>How long to wait for the cluster to accept the client.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(DefaultConnectTimeoutSeconds);

    /// <summary>Which option or variable set <see cref="ConnectTimeout"/>, or null for the default.</summary>
    public string? ConnectTimeoutSource { get; init; }

    /// <summary>
    /// The Redis connection string of the cluster's membership table (silos with <c>Orleans:Clustering:ProviderType</c> =
    /// <c>Redis</c>); when set, the client finds the gateways there instead of <see cref="Gateways"/>.
    /// </summary>
    public ConfigurationOptions? Redis { get; init; }

    /// <summary>Which option or variable named <see cref="Redis"/> (<c>--redis</c> or <c>PLATFORM_REDIS</c>).</summary>
    public string? RedisSource { get; init; }

    /// <summary>Mutual TLS to the gateways (silos with <c>Silo:Tls</c>), or null for plain TCP.</summary>
    public ClusterTlsSettings? Tls { get; init; }

    /// <summary>
    /// Reads the settings: an option wins over its environment variable, which wins over the default; a Redis server
    /// (<c>--redis</c>, <c>PLATFORM_REDIS</c>) and a gateway given at the same level are bad usage.
    /// </summary>
    /// <exception cref="CliException">
    /// The gateway is not <c>host:port</c> or the Redis connection string cannot be read (bad usage), or the gateway's host
    /// name does not resolve.
    /// </exception>
    public static ConnectionSettings Resolve(string? gateway, string? clusterId, string? serviceId, string? redis = null, string? connectTimeout = null, ClusterTlsSettings? tls = null)
    {
        var (timeout, timeoutSource) = ResolveConnectTimeout(connectTimeout);
        return ResolveCluster(gateway, clusterId, serviceId, redis) with { ConnectTimeout = timeout, ConnectTimeoutSource = timeoutSource, Tls = tls };
    }

    /// <summary>
    /// This client's TLS settings from the options and their variables (the password only from
    /// <see cref="TlsPasswordVariable"/>), or null without a certificate.
    /// </summary>
    /// <exception cref="CliException">A file is missing or unreadable, or a key or authority is given without a certificate (bad usage).</exception>
    public static ClusterTlsSettings? ResolveTls(string? certificate, string? key, string? authority)
    {
        var settings = new ClusterTlsSettings
        {
            CertificatePath = FirstSet(certificate, Environment.GetEnvironmentVariable(TlsCertificateVariable)),
            KeyPath = FirstSet(key, Environment.GetEnvironmentVariable(TlsKeyVariable)),
            CertificateAuthorityPath = FirstSet(authority, Environment.GetEnvironmentVariable(TlsCaVariable)),
            Password = Environment.GetEnvironmentVariable(TlsPasswordVariable) is { Length: > 0 } password ? password : null,
        };
        var problems = ClusterTls.Problems(settings, name => name switch
        {
            nameof(ClusterTlsSettings.CertificatePath) => OptionName("--tls-certificate", certificate, TlsCertificateVariable),
            nameof(ClusterTlsSettings.KeyPath) => OptionName("--tls-key", key, TlsKeyVariable),
            nameof(ClusterTlsSettings.CertificateAuthorityPath) => OptionName("--tls-ca", authority, TlsCaVariable),
            _ => name,
        });
        if (problems.Count > 0)
        {
            throw new CliException(ExitCodes.BadUsage, string.Join(" ", problems));
        }

        return settings.Enabled ? settings : null;

        static string OptionName(string option, string? given, string variable) => FirstSet(given) is null && FirstSet(Environment.GetEnvironmentVariable(variable)) is not null ? variable : option;
    }

    private static (TimeSpan Timeout, string? Source) ResolveConnectTimeout(string? option)
    {
        var (text, source) = FirstSet(option) is { } o ? (o, "--connect-timeout")
            : FirstSet(Environment.GetEnvironmentVariable(ConnectTimeoutVariable)) is { } v ? (v, ConnectTimeoutVariable)
            : (null, null);
        if (text is null)
        {
            return (TimeSpan.FromSeconds(DefaultConnectTimeoutSeconds), null);
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !double.IsFinite(seconds) || seconds <= 0 || seconds > 3600)
        {
            throw new CliException(ExitCodes.BadUsage, $"{source} '{text}' is not a number of seconds from 0 to 3600 (exclusive of 0); for example {DefaultConnectTimeoutSeconds}.");
        }

        return (TimeSpan.FromSeconds(seconds), source);
    }

    private static ConnectionSettings ResolveCluster(string? gateway, string? clusterId, string? serviceId, string? redis)
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
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);

    // Refusals are retried this long at most: a silo restarting opens its gateway within seconds, and a gateway
    // nobody listens on should not keep a user waiting the whole connect timeout.
    private static readonly TimeSpan RefusedGrace = TimeSpan.FromSeconds(5);
    private readonly IHost _host;

    private Connection(IHost host, ConnectionSettings settings)
    {
        _host = host;
        Settings = settings;
        Platform = host.Services.GetRequiredService<PlatformClient>();
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
        var started = Stopwatch.GetTimestamp();
        var attempts = new ConnectAttempts();

        // Ctrl+C belongs to the command line (it cancels the command), not to the client's host.
        builder.Services.AddSingleton<IHostLifetime, NoSignalsLifetime>();
        builder.Logging.ClearProviders();
        if (verbose)
        {
            builder.Logging.AddProvider(new StandardErrorLoggerProvider());
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
        }

        builder.Services.AddPlatformClient();
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

            if (settings.Tls is { } tls)
            {
                client.UseClusterTls(tls);
            }

            client.Configure<ClusterOptions>(options =>
            {
                options.ClusterId = settings.ClusterId;
                options.ServiceId = settings.ServiceId;
            });

            // Refused connections (a silo restarting, a gateway not open yet) are retried with backoff until the deadline;
            // Orleans' own default would retry forever.
            client.UseConnectionRetryFilter(async (exception, token) =>
            {
                attempts.Record(exception);
                var delay = attempts.NextDelay();
                var elapsed = Stopwatch.GetElapsedTime(started);
                if (elapsed + delay >= settings.ConnectTimeout || (IsRefused(exception) && elapsed >= RefusedGrace))
                {
                    return false;
                }

                try
                {
                    await Task.Delay(delay, token);
                    return true;
                }
                catch (OperationCanceledException)
                {
                    return false;
                }
            });
        });

        var host = builder.Build();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(settings.ConnectTimeout);
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

            var waited = Stopwatch.GetElapsedTime(started);
            throw new CliException(ExitCodes.CannotConnect, await DescribeFailureAsync(settings, ex, attempts, waited), ex);
        }
    }

    // What was waited for, and what to do: a refused connection means nothing listens there; a gateway that accepts
    // connections but did not let the client in within the timeout is busy, not down.
    private static async Task<string> DescribeFailureAsync(ConnectionSettings settings, Exception failure, ConnectAttempts attempts, TimeSpan waited)
    {
        var ids = $"the cluster id with --cluster-id or {ConnectionSettings.ClusterIdVariable}, the service id with --service-id or {ConnectionSettings.ServiceIdVariable}";
        var timeoutHint = $"raise the timeout with --connect-timeout or {ConnectionSettings.ConnectTimeoutVariable} (now {settings.ConnectTimeout.TotalSeconds:0.#} s)";
        var tries = attempts.Count > 0 ? $" ({attempts.Count + 1} attempts over {waited.TotalSeconds:0.#} s)" : "";
        if (settings.Redis is not null)
        {
            var reason = failure is OperationCanceledException ? $"the client was not let in within {settings.ConnectTimeout.TotalSeconds:0.#} s"
                // The Redis client goes on to advise abortConnect=false, which is not the cure for a server that is down.
                : Errors.Innermost(failure) is RedisConnectionException redisError ? redisError.Message.Split(". ", 2)[0]
                : Errors.Innermost(attempts.Last ?? failure).Message;
            return $"Cannot connect to the cluster at {settings.Describe()}: {reason.TrimEnd('.')}{tries}. " +
                   $"Is Redis ({settings.RedisSource}) up, and a silo of that cluster running? Set {ids}; {timeoutHint}.";
        }

        var refused = IsRefused(failure) || (attempts.Last is { } last && IsRefused(last));
        if (!refused && await AcceptsConnectionsAsync(settings.Gateways))
        {
            // A TLS gateway drops a plain client, and either side drops a peer whose certificate it does not trust.
            var tls = settings.Tls is null
                ? "a busy machine or silo, other cluster or service ids, or silos that require TLS (Silo:Tls)"
                : "a busy machine or silo, other cluster or service ids, or certificates the other side does not trust";
            var tlsHint = settings.Tls is null
                ? $"; if the silos use TLS, connect with --tls-certificate, --tls-key and --tls-ca (or {ConnectionSettings.TlsCertificateVariable}, {ConnectionSettings.TlsKeyVariable}, {ConnectionSettings.TlsCaVariable})"
                : "; over TLS, this client's certificate must be issued by an authority the silos trust (Silo:Tls:CertificateAuthorityPath), and the silos' by --tls-ca";
            return $"Cannot connect to the cluster at {settings.Describe()}: the gateway accepts connections, but the client was not let in " +
                   $"within {settings.ConnectTimeout.TotalSeconds:0.#} s{tries} ({tls}: {Errors.Innermost(attempts.Last ?? failure).Message.TrimEnd('.')}). " +
                   $"Check {ids}{tlsHint}; {timeoutHint}.";
        }

        var cause = failure is OperationCanceledException && attempts.Last is null ? $"no answer within {settings.ConnectTimeout.TotalSeconds:0.#} s" : Errors.Innermost(attempts.Last ?? failure).Message;
        return $"Cannot connect to the cluster at {settings.Describe()}: {cause.TrimEnd('.')}{tries}. " +
               $"Is a silo running there? Set the gateway with --gateway or {ConnectionSettings.GatewayVariable} (or the silos' Redis with --redis or {ConnectionSettings.RedisVariable}), {ids}.";
    }

    private static bool IsRefused(Exception exception) =>
        Errors.Innermost(exception) is SocketException { SocketErrorCode: SocketError.ConnectionRefused };

    private static async Task<bool> AcceptsConnectionsAsync(IReadOnlyList<IPEndPoint> gateways)
    {
        foreach (var gateway in gateways)
        {
            using var socket = new Socket(gateway.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            using var probe = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await socket.ConnectAsync(gateway, probe.Token);
                return true;
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException)
            {
                // Try the next one.
            }
        }

        return false;
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

/// <summary>The failed connection attempts of one client start, and the backoff before the next (0.1 s doubling to 2 s).</summary>
internal sealed class ConnectAttempts
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(2);

    /// <summary>How many attempts failed.</summary>
    public int Count { get; private set; }

    /// <summary>The last attempt's failure.</summary>
    public Exception? Last { get; private set; }

    public void Record(Exception failure)
    {
        Count++;
        Last = failure;
    }

    public TimeSpan NextDelay() => TimeSpan.FromTicks(Math.Min(MaxDelay.Ticks, FirstDelay.Ticks << Math.Min(Count - 1, 10)));
}
