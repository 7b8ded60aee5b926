using Orleans.Persistence;
using Orleans.Serialization;
using Orleans.Storage;
using StackExchange.Redis;

namespace Platform.Silo.Hosting;

/// <summary>
/// The Redis servers the Orleans section names, as .NET Aspire configures them: Redis clustering
/// (<c>Orleans:Clustering:ProviderType</c> = <c>Redis</c>, package <c>Microsoft.Orleans.Clustering.Redis</c>) and Redis grain
/// storage (<c>Orleans:GrainStorage:{name}:ProviderType</c> = <c>Redis</c>, package <c>Microsoft.Orleans.Persistence.Redis</c>),
/// each with <c>ServiceKey</c> naming a connection string (<c>ConnectionStrings:{key}</c>), or the packages' own
/// <c>ConnectionString</c> / <c>ConnectionName</c>.
/// </summary>
/// <remarks>
/// With a service key, the packages resolve a keyed <see cref="IConnectionMultiplexer"/> that Aspire's Redis client
/// integration (<c>AddKeyedRedisClient</c>) would register; the silo host registers that connection itself. Without one of
/// the three keys the packages fail with a message that names none of them, so the host checks them first.
/// </remarks>
internal static class RedisConnections
{
    public const string ClusteringServiceKeyKey = "Orleans:Clustering:ServiceKey";
    public const string ClusteringConnectionStringKey = "Orleans:Clustering:ConnectionString";
    public const string GrainStorageSection = "Orleans:GrainStorage";

    /// <summary>How long the startup check waits for a Redis server, unless the connection string sets <c>connectTimeout</c>.</summary>
    private const int StartupConnectTimeoutMs = 5000;

    /// <summary>Adds a problem for each missing, empty or unreadable Redis setting, each naming its key.</summary>
    public static void Validate(IConfiguration configuration, List<string> problems)
    {
        foreach (var use in Uses(configuration))
        {
            var source = Resolve(configuration, use, problems);
            if (source is null)
            {
                continue;
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
    }

    /// <summary>
    /// Connects to every Redis server the settings name (once per connection string), so that an unreachable server
    /// stops the silo with an error naming the setting, before Orleans tries; registers the connections named by a
    /// service key as keyed <see cref="IConnectionMultiplexer"/> services, and closes the others.
    /// </summary>
    /// <exception cref="SiloStartupException">A server does not answer.</exception>
    public static async Task RegisterAsync(IConfiguration configuration, IServiceCollection services)
    {
        var connections = new Dictionary<string, IConnectionMultiplexer>(StringComparer.Ordinal);
        var keyed = new Dictionary<string, IConnectionMultiplexer>(StringComparer.Ordinal);
        try
        {
            foreach (var use in Uses(configuration))
            {
                var source = Resolve(configuration, use, problems: null)!;
                if (!connections.TryGetValue(source.ConnectionString, out var connection))
                {
                    connection = await ConnectAsync(use, source).ConfigureAwait(false);
                    connections.Add(source.ConnectionString, connection);
                }

                if (use.Section[ServiceKey] is { Length: > 0 } serviceKey)
                {
                    keyed.TryAdd(serviceKey, connection);
                }
            }
        }
        catch
        {
            foreach (var connection in connections.Values)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }

        foreach (var (serviceKey, connection) in keyed)
        {
            // A factory, not an instance, so that the container disposes it with the host.
            services.AddKeyedSingleton(serviceKey, (_, _) => connection);
        }

        foreach (var connection in connections.Values.Except(keyed.Values))
        {
            // The package makes its own from the connection string.
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Makes Redis grain storage of the platform's own state (<paramref name="names"/>) write Orleans' binary format, as
    /// the file-system storage does, unless the configuration picks a serializer (<c>SerializerKey</c>); the JSON default
    /// is not made for the platform's state types.
    /// </summary>
    public static void UseBinaryStateFormat(IConfiguration configuration, IServiceCollection services, params string[] names)
    {
        foreach (var use in Uses(configuration).Where(u => u.StorageName is not null && names.Contains(u.StorageName, StringComparer.Ordinal)))
        {
            if (string.IsNullOrEmpty(use.Section["SerializerKey"]))
            {
                services.AddOptions<RedisStorageOptions>(use.StorageName).Configure<Serializer>((options, serializer) =>
                    options.GrainStorageSerializer = new OrleansGrainStorageSerializer(serializer));
            }
        }
    }

    private const string ServiceKey = "ServiceKey";

    /// <summary>Each section that selects a Redis provider: clustering, and grain storages by name.</summary>
    private static IEnumerable<RedisUse> Uses(IConfiguration configuration)
    {
        var clustering = configuration.GetSection(SiloConfiguration.ClusteringSection);
        if (IsRedis(clustering))
        {
            yield return new RedisUse(clustering, "clustering", StorageName: null);
        }

        foreach (var storage in configuration.GetSection(GrainStorageSection).GetChildren().Where(IsRedis))
        {
            yield return new RedisUse(storage, $"grain storage '{storage.Key}'", storage.Key);
        }

        // The package registers the names Redis and AzureRedisCache.
        static bool IsRedis(IConfigurationSection section) =>
            section["ProviderType"] is { } type
            && (type.Equals("Redis", StringComparison.OrdinalIgnoreCase) || type.Equals("AzureRedisCache", StringComparison.OrdinalIgnoreCase));
    }

    private static async Task<IConnectionMultiplexer> ConnectAsync(RedisUse use, ConnectionSource source)
    {
        var options = ConfigurationOptions.Parse(source.ConnectionString);
        if (!source.ConnectionString.Contains("connectTimeout", StringComparison.OrdinalIgnoreCase))
        {
            options.ConnectTimeout = StartupConnectTimeoutMs;
        }

        // Fail now rather than keep retrying in the background: a silo without its membership table cannot join.
        options.AbortOnConnectFail = true;
        try
        {
            return await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
        }
        catch (RedisConnectionException ex)
        {
            // The client's own message goes on to advise abortConnect=false, which is not the cure here: keep its first sentence.
            var reason = ex.Message.Split(". ", 2)[0].TrimEnd('.');
            throw new SiloStartupException(
                $"The Redis server for {use.What} ({source.Key} = {string.Join(",", options.EndPoints.Select(EndPointCollection.ToString))}) cannot be reached " +
                $"within {options.ConnectTimeout} ms: {reason}. Start it, or correct {source.Key}.",
                ex);
        }
    }

    /// <summary>Where the connection string comes from (the setting that holds it) and its value; <c>null</c> (with a problem added) when none is usable.</summary>
    private static ConnectionSource? Resolve(IConfiguration configuration, RedisUse use, List<string>? problems)
    {
        var section = use.Section;
        var serviceKey = section[ServiceKey];
        var connectionString = section["ConnectionString"];
        var connectionName = section["ConnectionName"];

        // The packages' order: a service key first, then a connection string, then a connection name.
        if (!string.IsNullOrEmpty(serviceKey))
        {
            return FromConnectionStrings(serviceKey, $"named by {section.Path}:{ServiceKey}");
        }

        if (!string.IsNullOrEmpty(connectionString))
        {
            return new ConnectionSource($"{section.Path}:ConnectionString", connectionString);
        }

        if (!string.IsNullOrEmpty(connectionName))
        {
            return FromConnectionStrings(connectionName, $"named by {section.Path}:ConnectionName");
        }

        problems?.Add(
            $"{section.Path}:ProviderType is '{section["ProviderType"]}' but no Redis server is configured: " +
            $"set {section.Path}:{ServiceKey} to the name of a connection string (ConnectionStrings:<name>, as .NET Aspire does), or {section.Path}:ConnectionString.");
        return null;

        ConnectionSource? FromConnectionStrings(string name, string why)
        {
            var key = $"ConnectionStrings:{name}";
            if (configuration[key] is { } value && !string.IsNullOrWhiteSpace(value))
            {
                return new ConnectionSource(key, value);
            }

            problems?.Add(configuration[key] is null
                ? $"{key} ({why}) is not set; it is the Redis connection string for {use.What} (environment variable ConnectionStrings__{name})."
                : $"{key} ({why}) is empty; it is the Redis connection string for {use.What} (environment variable ConnectionStrings__{name}).");
            return null;
        }
    }

    /// <summary>A section that selects Redis, what it is for in messages, and the grain storage's name if it is one.</summary>
    private sealed record RedisUse(IConfigurationSection Section, string What, string? StorageName);

    private sealed record ConnectionSource(string Key, string ConnectionString);
}
