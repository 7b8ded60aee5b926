using StackExchange.Redis;

namespace Platform.Silo.Hosting;

/// <summary>
/// Redis clustering (package <c>Microsoft.Orleans.Clustering.Redis</c>) as .NET Aspire configures it: <c>Orleans:Clustering:ProviderType</c>
/// = <c>Redis</c> with <c>Orleans:Clustering:ServiceKey</c> naming a connection string (<c>ConnectionStrings:{key}</c>), or
/// the package's own <c>Orleans:Clustering:ConnectionString</c> / <c>ConnectionName</c>.
/// </summary>
/// <remarks>
/// With a service key, the package resolves a keyed <see cref="IConnectionMultiplexer"/> that Aspire's Redis client
/// integration (<c>AddKeyedRedisClient</c>) would register; the silo host registers that connection itself. Without one of
/// the three keys the package fails with a message that names none of them, so the host checks them first.
/// </remarks>
internal static class RedisClustering
{
    public const string ServiceKeyKey = "Orleans:Clustering:ServiceKey";
    public const string ConnectionStringKey = "Orleans:Clustering:ConnectionString";
    public const string ConnectionNameKey = "Orleans:Clustering:ConnectionName";

    /// <summary>How long the startup check waits for the Redis server, unless the connection string sets <c>connectTimeout</c>.</summary>
    private const int StartupConnectTimeoutMs = 5000;

    /// <summary>Whether <paramref name="configuration"/> selects Redis clustering (the package's names: <c>Redis</c>, <c>AzureRedisCache</c>).</summary>
    public static bool IsSelected(IConfiguration configuration) =>
        configuration[SiloConfiguration.ClusteringProviderTypeKey] is { } type
        && (type.Equals("Redis", StringComparison.OrdinalIgnoreCase) || type.Equals("AzureRedisCache", StringComparison.OrdinalIgnoreCase));

    /// <summary>Adds a problem for each missing, empty or unreadable Redis clustering setting, each naming its key.</summary>
    public static void Validate(IConfiguration configuration, List<string> problems)
    {
        if (!IsSelected(configuration))
        {
            return;
        }

        var source = Resolve(configuration, problems);
        if (source is null)
        {
            return;
        }

        try
        {
            _ = ConfigurationOptions.Parse(source.ConnectionString);
        }
        catch (ArgumentException ex)
        {
            problems.Add($"{source.Key} is not a Redis connection string ({ex.Message}); for example 127.0.0.1:6379 or redis.example:6380,ssl=true,password=...");
        }
    }

    /// <summary>
    /// Connects to the Redis server the clustering settings name, so that an unreachable server stops the silo with an
    /// error naming the setting, before Orleans tries. Returns the connection when the package is to share it (a service
    /// key), else closes it and returns <c>null</c>.
    /// </summary>
    /// <exception cref="SiloStartupException">The server does not answer.</exception>
    public static async Task<(string ServiceKey, IConnectionMultiplexer Connection)?> ConnectAsync(IConfiguration configuration)
    {
        var source = Resolve(configuration, problems: null)!;
        var options = ConfigurationOptions.Parse(source.ConnectionString);
        if (!source.ConnectionString.Contains("connectTimeout", StringComparison.OrdinalIgnoreCase))
        {
            options.ConnectTimeout = StartupConnectTimeoutMs;
        }

        // Fail now rather than keep retrying in the background: a silo without its membership table cannot join.
        options.AbortOnConnectFail = true;
        IConnectionMultiplexer connection;
        try
        {
            connection = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
        }
        catch (RedisConnectionException ex)
        {
            // The client's own message goes on to advise abortConnect=false, which is not the cure here: keep its first sentence.
            var reason = ex.Message.Split(". ", 2)[0].TrimEnd('.');
            throw new SiloStartupException(
                $"The Redis server for clustering ({source.Key} = {string.Join(",", options.EndPoints.Select(EndPointCollection.ToString))}) cannot be reached " +
                $"within {options.ConnectTimeout} ms: {reason}. Start it, or correct {source.Key}.",
                ex);
        }

        if (configuration[ServiceKeyKey] is { Length: > 0 } serviceKey)
        {
            return (serviceKey, connection);
        }

        await connection.DisposeAsync().ConfigureAwait(false);
        return null;
    }

    /// <summary>Where the connection string comes from (the setting that holds it) and its value; <c>null</c> (with a problem added) when none is usable.</summary>
    private static ConnectionSource? Resolve(IConfiguration configuration, List<string>? problems)
    {
        var serviceKey = configuration[ServiceKeyKey];
        var connectionString = configuration[ConnectionStringKey];
        var connectionName = configuration[ConnectionNameKey];

        // The package's order: a service key first, then a connection string, then a connection name.
        if (!string.IsNullOrEmpty(serviceKey))
        {
            return FromConnectionStrings(serviceKey, $"named by {ServiceKeyKey}");
        }

        if (!string.IsNullOrEmpty(connectionString))
        {
            return new ConnectionSource(ConnectionStringKey, connectionString);
        }

        if (!string.IsNullOrEmpty(connectionName))
        {
            return FromConnectionStrings(connectionName, $"named by {ConnectionNameKey}");
        }

        problems?.Add(
            $"{SiloConfiguration.ClusteringProviderTypeKey} is '{configuration[SiloConfiguration.ClusteringProviderTypeKey]}' but no Redis server is configured: " +
            $"set {ServiceKeyKey} to the name of a connection string (ConnectionStrings:<name>, as .NET Aspire does), or {ConnectionStringKey}.");
        return null;

        ConnectionSource? FromConnectionStrings(string name, string why)
        {
            var key = $"ConnectionStrings:{name}";
            if (configuration[key] is { } value && !string.IsNullOrWhiteSpace(value))
            {
                return new ConnectionSource(key, value);
            }

            problems?.Add(configuration[key] is null
                ? $"{key} ({why}) is not set; it is the Redis connection string for clustering (environment variable ConnectionStrings__{name})."
                : $"{key} ({why}) is empty; it is the Redis connection string for clustering (environment variable ConnectionStrings__{name}).");
            return null;
        }
    }

    private sealed record ConnectionSource(string Key, string ConnectionString);
}
