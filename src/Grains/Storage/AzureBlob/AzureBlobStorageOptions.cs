using System.Data.Common;
using Azure.Core;

namespace Platform.Storage.AzureBlob;

/// <summary>
/// Settings of Azure Blob checkpoint storage (configuration section <c>Platform:AzureBlob</c>). The account is reached
/// by <see cref="ConnectionString"/>, or by <see cref="ServiceUri"/> with <c>DefaultAzureCredential</c> (a managed
/// identity in Azure, so no secret is configured), or, when neither is set, by the named connection string
/// <c>ConnectionStrings:{ConnectionName}</c> that .NET Aspire injects.
/// </summary>
public sealed class AzureBlobStorageOptions
{
    /// <summary>The section these options bind to.</summary>
    public const string SectionName = "Platform:AzureBlob";

    /// <summary>The default container name.</summary>
    public const string DefaultContainerName = "checkpoints";

    /// <summary>
    /// A storage account connection string (<c>DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...</c>, a SAS
    /// connection string, or <c>UseDevelopmentStorage=true</c>). Wins over <see cref="ServiceUri"/>.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// The blob service endpoint, such as <c>https://myaccount.blob.core.windows.net</c>; the silo signs in with
    /// <c>DefaultAzureCredential</c> (a user-assigned managed identity is chosen by the <c>AZURE_CLIENT_ID</c> environment variable).
    /// </summary>
    public string? ServiceUri { get; set; }

    /// <summary>
    /// The name of an Aspire-style connection string, read from <c>ConnectionStrings:{name}</c> when neither
    /// <see cref="ConnectionString"/> nor <see cref="ServiceUri"/> is set (default <c>checkpoints</c>). Its value may be a
    /// connection string, a service URI, or <c>Endpoint=...;ContainerName=...</c>.
    /// </summary>
    public string ConnectionName { get; set; } = DefaultContainerName;

    /// <summary>The container that holds the checkpoints (default <c>checkpoints</c>); created when missing.</summary>
    public string ContainerName { get; set; } = DefaultContainerName;

    /// <summary>An optional folder inside the container, so that several clusters can share one container.</summary>
    public string? Prefix { get; set; }

    /// <summary>
    /// The folder inside the container under which blob savepoints are written and disposed (default <c>savepoints</c>):
    /// the blob counterpart of <c>Platform:SavepointDirectory</c>. A savepoint target URL must lie under
    /// <c>{container URL}/{SavepointPrefix}</c>.
    /// </summary>
    public string SavepointPrefix { get; set; } = "savepoints";

    /// <summary>
    /// Further containers of the same account that jobs may resume from (a savepoint or retained checkpoint copied
    /// there); the silos only read them. Empty by default: only the configured container is read.
    /// </summary>
    public List<string> RestoreContainers { get; set; } = [];

    /// <summary>How the SDK spaces its retries of a failed request: <c>Exponential</c> (default) or <c>Fixed</c>.</summary>
    public RetryMode RetryMode { get; set; } = RetryMode.Exponential;

    /// <summary>How often the SDK retries a failed request (default 3); a checkpoint whose upload still fails is declined.</summary>
    public int MaxRetries { get; set; } = 3;

    /// <summary>The delay before the first retry, the base of the exponential back-off (default 0.8 s).</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(0.8);

    /// <summary>The longest delay between two retries (default 1 minute).</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long one request may take on the network before it is abandoned and retried (default 100 s).</summary>
    public TimeSpan NetworkTimeout { get; set; } = TimeSpan.FromSeconds(100);

    /// <summary>How many blobs are deleted at once when a checkpoint or shared files are removed (default 16).</summary>
    public int DeleteConcurrency { get; set; } = 16;

    /// <summary>The configuration section (or the name of the storage) that error messages name the settings by; never bound.</summary>
    internal string Section { get; set; } = SectionName;

    /// <summary>The value of <c>ConnectionStrings:{ConnectionName}</c>, filled in from the root configuration (never bound from the section).</summary>
    internal string? NamedConnectionString { get; set; }

    /// <summary>Whether any way to reach an account is configured.</summary>
    internal bool IsConfigured =>
        !string.IsNullOrWhiteSpace(ConnectionString) || !string.IsNullOrWhiteSpace(ServiceUri) || !string.IsNullOrWhiteSpace(NamedConnectionString);

    /// <summary>The configuration key of the named connection string.</summary>
    internal string NamedConnectionKey => $"ConnectionStrings:{ConnectionName}";

    /// <summary>
    /// How the account is reached, with the key it came from: a connection string, or a service URI (signed in with
    /// DefaultAzureCredential), and a container name the named connection string may carry.
    /// </summary>
    internal AzureBlobEndpoint ResolveEndpoint()
    {
        if (!string.IsNullOrWhiteSpace(ConnectionString))
        {
            return new AzureBlobEndpoint($"{Section}:{nameof(ConnectionString)}", ConnectionString, null, null);
        }

        if (!string.IsNullOrWhiteSpace(ServiceUri))
        {
            return new AzureBlobEndpoint($"{Section}:{nameof(ServiceUri)}", null, ParseServiceUri(ServiceUri, $"{Section}:{nameof(ServiceUri)}"), null);
        }

        if (!string.IsNullOrWhiteSpace(NamedConnectionString))
        {
            var key = NamedConnectionKey;
            var value = NamedConnectionString.Trim();
            // Aspire gives a bare endpoint when the app signs in with its identity.
            if (Uri.TryCreate(value, UriKind.Absolute, out _))
            {
                return new AzureBlobEndpoint(key, null, ParseServiceUri(value, key), null);
            }

            var parts = new DbConnectionStringBuilder { ConnectionString = value };
            if (parts.TryGetValue("Endpoint", out var endpoint) && !parts.ContainsKey("AccountKey") && !parts.ContainsKey("SharedAccessSignature"))
            {
                var container = parts.TryGetValue("ContainerName", out var name) ? name?.ToString() : null;
                return new AzureBlobEndpoint(key, null, ParseServiceUri(endpoint?.ToString() ?? "", key), container);
            }

            return new AzureBlobEndpoint(key, value, null, null);
        }

        throw new InvalidOperationException(
            $"Azure Blob checkpoint storage is not configured: set {Section}:{nameof(ServiceUri)} (signs in with the silo's managed identity), " +
            $"{Section}:{nameof(ConnectionString)}, or the connection string {NamedConnectionKey}.");
    }

    private Uri ParseServiceUri(string value, string key)
    {
        if (!Uri.TryCreate(value.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            throw new ArgumentException($"{key} is '{value}', which is not an http(s) URI; use the blob endpoint, for example https://myaccount.blob.core.windows.net.");
        }

        if (!string.IsNullOrEmpty(uri.Query))
        {
            throw new ArgumentException($"{key} has a query string; give the blob endpoint without a SAS token (put a SAS into {Section}:{nameof(ConnectionString)} instead).");
        }

        return uri;
    }

    /// <summary>
    /// Every problem with these settings, each naming its key; <paramref name="requiredBy"/> names the setting that makes
    /// an account necessary (the silo's default checkpoint or savepoint storage is Azure Blob), or is <c>null</c>.
    /// </summary>
    internal IEnumerable<string> Validate(string? requiredBy)
    {
        if (requiredBy is not null && !IsConfigured)
        {
            yield return $"{requiredBy} is AzureBlob, but no account is configured: set {Section}:{nameof(ServiceUri)} " +
                $"(for example https://myaccount.blob.core.windows.net, signed in with the managed identity), {Section}:{nameof(ConnectionString)}, or {NamedConnectionKey}.";
        }

        string? endpointProblem = null;
        AzureBlobEndpoint? endpoint = null;
        if (IsConfigured)
        {
            try
            {
                endpoint = ResolveEndpoint();
                if (endpoint.ConnectionString is { } connectionString)
                {
                    // The SDK's own parser, so that what it would refuse at the first checkpoint is refused at startup.
                    _ = new Azure.Storage.Blobs.BlobServiceClient(connectionString);
                }
            }
            catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidOperationException)
            {
                endpointProblem = endpoint is null ? ex.Message : $"{endpoint.Key} cannot be read as a storage connection string: {ex.Message}";
            }
        }

        if (endpointProblem is not null)
        {
            yield return endpointProblem;
        }

        var container = endpoint?.ContainerName ?? ContainerName;
        if (ContainerNameProblem(container) is { } problem)
        {
            yield return $"{Section}:{nameof(ContainerName)} is '{container}'; {problem}";
        }

        if (Prefix is { } prefix && (prefix.Contains('\\') || prefix.Split('/', StringSplitOptions.RemoveEmptyEntries).Any(p => p is "." or "..")))
        {
            yield return $"{Section}:{nameof(Prefix)} is '{prefix}'; use folder names separated by '/', without '.', '..' or '\\'.";
        }

        if (string.IsNullOrWhiteSpace(SavepointPrefix) || FolderProblem(SavepointPrefix.Trim('/')))
        {
            yield return $"{Section}:{nameof(SavepointPrefix)} is '{SavepointPrefix}'; use one or more folder names separated by '/', without '.', '..', '\\', '?' or '#'.";
        }

        for (var i = 0; i < RestoreContainers.Count; i++)
        {
            if (ContainerNameProblem(RestoreContainers[i]) is { } restoreProblem)
            {
                yield return $"{Section}:{nameof(RestoreContainers)}:{i} is '{RestoreContainers[i]}'; {restoreProblem}";
            }
        }

        if (!Enum.IsDefined(RetryMode))
        {
            yield return $"{Section}:{nameof(RetryMode)} is '{RetryMode}'; use Exponential or Fixed.";
        }

        if (MaxRetries is < 0 or > 100)
        {
            yield return $"{Section}:{nameof(MaxRetries)} is {MaxRetries}; it must be between 0 and 100.";
        }

        if (RetryDelay <= TimeSpan.Zero || MaxRetryDelay < RetryDelay)
        {
            yield return $"{Section}:{nameof(RetryDelay)} is {RetryDelay} and {nameof(MaxRetryDelay)} {MaxRetryDelay}; the delay must be positive and at most the maximum delay.";
        }

        if (NetworkTimeout <= TimeSpan.Zero)
        {
            yield return $"{Section}:{nameof(NetworkTimeout)} is {NetworkTimeout}; it must be positive (for example 00:01:40).";
        }

        if (DeleteConcurrency is < 1 or > 256)
        {
            yield return $"{Section}:{nameof(DeleteConcurrency)} is {DeleteConcurrency}; it must be between 1 and 256.";
        }
    }

    private static bool FolderProblem(string path) =>
        path.IndexOfAny(['\\', '?', '#']) >= 0 || path.Split('/').Any(p => p is "" or "." or "..");

    // https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata
    private static string? ContainerNameProblem(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length is < 3 or > 63)
        {
            return "a container name has 3 to 63 characters.";
        }

        if (!name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-') || name[0] == '-' || name[^1] == '-' || name.Contains("--", StringComparison.Ordinal))
        {
            return "a container name has lowercase letters, digits and single hyphens only, and starts and ends with a letter or digit.";
        }

        return null;
    }
}

/// <summary>How an account is reached: exactly one of a connection string or a service URI, and the key it was read from.</summary>
internal sealed record AzureBlobEndpoint(string Key, string? ConnectionString, Uri? ServiceUri, string? ContainerName);
