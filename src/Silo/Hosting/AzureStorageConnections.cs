using System.Data.Common;
using Azure.Core;
using Azure.Data.Tables;
using Azure.Identity;
using Azure.Storage.Blobs;
using Orleans.Serialization;
using Orleans.Storage;

namespace Platform.Silo.Hosting;

/// <summary>
/// The Azure Storage accounts the Orleans section names, as .NET Aspire configures them: membership in Azure Table storage
/// (<c>Orleans:Clustering:ProviderType</c> = <c>AzureTableStorage</c>, package <c>Microsoft.Orleans.Clustering.AzureStorage</c>)
/// and grain storage in Azure Blob or Table storage (<c>Orleans:GrainStorage:{name}:ProviderType</c> = <c>AzureBlobStorage</c>
/// or <c>AzureTableStorage</c>, package <c>Microsoft.Orleans.Persistence.AzureStorage</c>), each with <c>ServiceKey</c> naming a
/// connection string (<c>ConnectionStrings:{key}</c>): a storage connection string (Azurite, an account key) or the
/// service's endpoint URI, signed in with the silo's identity.
/// </summary>
/// <remarks>
/// With a service key, the packages resolve a keyed <see cref="TableServiceClient"/> or <see cref="BlobServiceClient"/>
/// that Aspire's client integrations (<c>AddKeyedAzureTableServiceClient</c>, <c>AddKeyedAzureBlobServiceClient</c>) would
/// register; the silo host registers those clients itself. An endpoint URI signs in with <see cref="DefaultAzureCredential"/>:
/// in Azure the managed identity (<c>AZURE_CLIENT_ID</c> picks a user-assigned one), elsewhere a developer's sign-in. Without
/// the key, or with a value the packages cannot use, they fail late with messages that name no setting, so the host checks first.
/// </remarks>
internal static class AzureStorageConnections
{
    /// <summary>The provider type of Orleans' Azure Table membership and grain storage.</summary>
    public const string TableProviderType = "AzureTableStorage";

    /// <summary>The provider type of Orleans' Azure Blob grain storage.</summary>
    public const string BlobProviderType = "AzureBlobStorage";

    private const string ServiceKey = "ServiceKey";

    // One credential for every client: it caches its tokens.
    private static readonly Lazy<TokenCredential> Credential = new(() => new DefaultAzureCredential());

    /// <summary>Adds a problem for each missing, empty or unusable Azure Storage setting, each naming its key.</summary>
    public static void Validate(IConfiguration configuration, List<string> problems)
    {
        foreach (var use in Uses(configuration))
        {
            Resolve(configuration, use, problems);
        }
    }

    /// <summary>
    /// Registers the clients named by a service key as keyed <see cref="TableServiceClient"/> or <see cref="BlobServiceClient"/>
    /// services (what Aspire's client integrations register), built from <c>ConnectionStrings:{key}</c>. Call after
    /// <see cref="Validate"/> has passed.
    /// </summary>
    public static void Register(IConfiguration configuration, IServiceCollection services)
    {
        var registered = new HashSet<(string Key, StorageService Service)>();
        foreach (var use in Uses(configuration))
        {
            if (Resolve(configuration, use, problems: null) is not { FromServiceKey: { } serviceKey } source || !registered.Add((serviceKey, use.Service)))
            {
                continue;
            }

            // Factories, not instances: nothing is built (or signed in) unless a provider asks.
            if (use.Service == StorageService.Table)
            {
                services.AddKeyedSingleton(serviceKey, (_, _) => source.ServiceUri is { } uri
                    ? new TableServiceClient(uri, Credential.Value)
                    : new TableServiceClient(source.ConnectionString));
            }
            else
            {
                services.AddKeyedSingleton(serviceKey, (_, _) => source.ServiceUri is { } uri
                    ? new BlobServiceClient(uri, Credential.Value)
                    : new BlobServiceClient(source.ConnectionString));
            }
        }
    }

    /// <summary>
    /// Makes Azure grain storage of the platform's own state (<paramref name="names"/>) write Orleans' binary format, as
    /// the file-system storage does, unless the configuration picks a serializer (<c>SerializerKey</c>); the JSON default
    /// is not made for the platform's state types.
    /// </summary>
    public static void UseBinaryStateFormat(IConfiguration configuration, IServiceCollection services, params string[] names)
    {
        foreach (var use in Uses(configuration).Where(u => u.StorageName is not null && names.Contains(u.StorageName, StringComparer.Ordinal)))
        {
            if (!string.IsNullOrEmpty(use.Section["SerializerKey"]))
            {
                continue;
            }

            // Runs before the options' post-configuration, which fills in the JSON default only where none is set.
            if (use.Service == StorageService.Blob)
            {
                services.AddOptions<Orleans.Configuration.AzureBlobStorageOptions>(use.StorageName).Configure<Serializer>((options, serializer) =>
                    options.GrainStorageSerializer = new OrleansGrainStorageSerializer(serializer));
            }
            else
            {
                services.AddOptions<Orleans.Configuration.AzureTableStorageOptions>(use.StorageName).Configure<Serializer>((options, serializer) =>
                    options.GrainStorageSerializer = new OrleansGrainStorageSerializer(serializer));
            }
        }
    }

    /// <summary>Each section that selects an Azure Storage provider: clustering, and grain storages by name.</summary>
    private static IEnumerable<AzureUse> Uses(IConfiguration configuration)
    {
        var clustering = configuration.GetSection(SiloConfiguration.ClusteringSection);
        if (IsProvider(clustering, TableProviderType))
        {
            yield return new AzureUse(clustering, "membership", StorageService.Table, StorageName: null);
        }

        foreach (var storage in configuration.GetSection(RedisConnections.GrainStorageSection).GetChildren())
        {
            if (IsProvider(storage, BlobProviderType))
            {
                yield return new AzureUse(storage, $"grain storage '{storage.Key}'", StorageService.Blob, storage.Key);
            }
            else if (IsProvider(storage, TableProviderType))
            {
                yield return new AzureUse(storage, $"grain storage '{storage.Key}'", StorageService.Table, storage.Key);
            }
        }

        static bool IsProvider(IConfigurationSection section, string type) =>
            string.Equals(section["ProviderType"], type, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Where the account comes from and how it is reached; <c>null</c> (with a problem added) when it is not usable.</summary>
    private static AccountSource? Resolve(IConfiguration configuration, AzureUse use, List<string>? problems)
    {
        var section = use.Section;
        var serviceKey = section[ServiceKey];
        var connectionString = section["ConnectionString"];
        var connectionName = section["ConnectionName"];
        var service = use.Service == StorageService.Table ? "table" : "blob";

        // The packages' order: a service key first, then a connection string, then a connection name.
        if (!string.IsNullOrEmpty(serviceKey))
        {
            var key = $"ConnectionStrings:{serviceKey}";
            var value = configuration[key];
            if (string.IsNullOrWhiteSpace(value))
            {
                problems?.Add(
                    $"{key} (named by {section.Path}:{ServiceKey}) is {(value is null ? "not set" : "empty")}; it is the Azure {service} storage " +
                    $"for {use.What}: a connection string, or the {service} endpoint (for example https://myaccount.{service}.core.windows.net, " +
                    $"signed in with the silo's managed identity) (environment variable ConnectionStrings__{serviceKey}).");
                return null;
            }

            return Parse(key, value.Trim(), use, problems) is { } parsed ? parsed with { FromServiceKey = serviceKey } : null;
        }

        string? sourceKey = null;
        string? sourceValue = null;
        if (!string.IsNullOrEmpty(connectionString))
        {
            (sourceKey, sourceValue) = ($"{section.Path}:ConnectionString", connectionString);
        }
        else if (!string.IsNullOrEmpty(connectionName))
        {
            sourceKey = $"ConnectionStrings:{connectionName}";
            sourceValue = configuration[sourceKey];
            if (string.IsNullOrWhiteSpace(sourceValue))
            {
                problems?.Add($"{sourceKey} (named by {section.Path}:ConnectionName) is {(sourceValue is null ? "not set" : "empty")}; it is the Azure {service} storage connection string for {use.What}.");
                return null;
            }
        }

        if (sourceKey is null || sourceValue is null)
        {
            problems?.Add(
                $"{section.Path}:ProviderType is '{section["ProviderType"]}' but no storage account is configured: set {section.Path}:{ServiceKey} " +
                $"to the name of a connection string (ConnectionStrings:<name>, as .NET Aspire does), or {section.Path}:ConnectionString.");
            return null;
        }

        var source = Parse(sourceKey, sourceValue.Trim(), use, problems);
        if (source?.ServiceUri is not null)
        {
            // The packages build a client from a bare URI without any credential.
            problems?.Add(
                $"{sourceKey} is an endpoint URI, which Orleans uses without signing in; to sign in with the silo's identity, name the " +
                $"connection string with {section.Path}:{ServiceKey} instead (as .NET Aspire does), or give a connection string.");
            return null;
        }

        return source;
    }

    /// <summary>An endpoint URI or a storage connection string that names the service <paramref name="use"/> needs.</summary>
    private static AccountSource? Parse(string key, string value, AzureUse use, List<string>? problems)
    {
        var service = use.Service == StorageService.Table ? "table" : "blob";
        var endpointName = use.Service == StorageService.Table ? "TableEndpoint" : "BlobEndpoint";
        var example = $"https://myaccount.{service}.core.windows.net";
        if (Uri.TryCreate(value, UriKind.Absolute, out var uri))
        {
            if ((uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp) || string.IsNullOrEmpty(uri.Host))
            {
                problems?.Add($"{key} is '{value}', which is not an http(s) URI of the {service} service; give its endpoint, for example {example}, or a storage connection string.");
                return null;
            }

            if (!string.IsNullOrEmpty(uri.Query))
            {
                problems?.Add($"{key} has a query string; give the {service} endpoint without a SAS token (for example {example}); the silo signs in with its identity.");
                return null;
            }

            return new AccountSource(key, null, uri, null);
        }

        var parts = new DbConnectionStringBuilder();
        try
        {
            parts.ConnectionString = value;
        }
        catch (ArgumentException)
        {
            problems?.Add($"{key} is neither an endpoint URI nor a storage connection string (name=value pairs separated by ';'); for example {example}, or Azurite's DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=...;{endpointName}=http://127.0.0.1:10002/devstoreaccount1;");
            return null;
        }

        // A connection string that lists endpoints but not this service's would send the client to the public cloud.
        // (The builder lowercases the names it read, so ask for the storage's own spellings.)
        var endpoints = new[] { "BlobEndpoint", "QueueEndpoint", "TableEndpoint", "FileEndpoint" }.Where(parts.ContainsKey).ToList();
        if (endpoints.Count > 0 && !endpoints.Contains(endpointName))
        {
            problems?.Add($"{key} names {string.Join(" and ", endpoints)} but no {endpointName}, which {use.What} needs; give the {service} service's connection string.");
            return null;
        }

        try
        {
            _ = use.Service == StorageService.Table ? (object)new TableServiceClient(value) : new BlobServiceClient(value);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidOperationException)
        {
            problems?.Add($"{key} is not a usable storage connection string ({ex.Message}); for example DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...;EndpointSuffix=core.windows.net, or an endpoint URI such as {example}.");
            return null;
        }

        return new AccountSource(key, value, null, null);
    }

    private enum StorageService
    {
        Table,
        Blob,
    }

    /// <summary>A section that selects an Azure provider, what it is for in messages, the service, and the grain storage's name if it is one.</summary>
    private sealed record AzureUse(IConfigurationSection Section, string What, StorageService Service, string? StorageName);

    /// <summary>The setting the account came from, and either its connection string or its endpoint; the service key that named it.</summary>
    private sealed record AccountSource(string Key, string? ConnectionString, Uri? ServiceUri, string? FromServiceKey);
}
