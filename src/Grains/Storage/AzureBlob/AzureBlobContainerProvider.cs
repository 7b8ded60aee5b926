using Azure;
using Azure.Identity;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Specialized;
using Microsoft.Extensions.Logging;

namespace Platform.Storage.AzureBlob;

/// <summary>
/// The silo's one client of the checkpoint container, built on first use from <see cref="AzureBlobStorageOptions"/>
/// (so that a silo that never uses Azure Blob storage needs no account), which creates the container when it is missing on first use
/// but never again once it has been seen to exist.
/// </summary>
internal sealed partial class AzureBlobContainerProvider(AzureBlobStorageOptions options, ILogger<AzureBlobContainerProvider> logger)
{
    private readonly Lock _lock = new();
    private BlobContainerClient? _container;
    private Task? _created;
    private volatile bool _exists;

    /// <summary>The settings the client was built from.</summary>
    public AzureBlobStorageOptions Options => options;

    /// <summary>The folder inside the container that holds every job's checkpoints, without slashes at either end ("" for none).</summary>
    public string Prefix => options.Prefix?.Trim('/') ?? "";

    /// <summary>The folder inside the container under which savepoints are written, without slashes at either end.</summary>
    public string SavepointPrefix => options.SavepointPrefix.Trim('/');

    /// <summary>The URL of the configured container, without a trailing slash.</summary>
    public string ContainerUrl => Url(Container);

    /// <summary>
    /// The container a URL points into, and the blob path after it (without slashes at either end): the configured
    /// container, or one of <see cref="AzureBlobStorageOptions.RestoreContainers"/>, which the silos only read.
    /// <c>null</c> when the URL is in none of them.
    /// </summary>
    public (BlobContainerClient Container, string Path)? Locate(string url)
    {
        var own = Container;
        var candidates = options.RestoreContainers.Select(name => own.GetParentBlobServiceClient().GetBlobContainerClient(name)).Prepend(own);
        foreach (var container in candidates)
        {
            var root = Url(container) + "/";
            if (url.StartsWith(root, StringComparison.Ordinal))
            {
                return (container, url[root.Length..].Trim('/'));
            }
        }

        return null;
    }

    // Without the query: a client built from a SAS connection string carries its token in the URI, which must never
    // become part of a savepoint's URL (it would be printed and stored) nor break the prefix comparison.
    private static string Url(BlobContainerClient container) => container.Uri.GetLeftPart(UriPartial.Path).TrimEnd('/');

    /// <summary>The container client.</summary>
    /// <exception cref="InvalidOperationException">No account is configured.</exception>
    public BlobContainerClient Container
    {
        get
        {
            lock (_lock)
            {
                return _container ??= Build();
            }
        }
    }

    /// <summary>
    /// Creates the container when it is missing, the first time this silo uses it; once it has been seen to exist this
    /// completes at once. Every caller waits on one creation (its own token only cancels its wait); a failed creation
    /// is tried again by the next caller.
    /// </summary>
    public Task EnsureCreatedAsync(CancellationToken cancellationToken)
    {
        Task created;
        lock (_lock)
        {
            if (_exists)
            {
                return Task.CompletedTask;
            }

            if (_created is null || _created.IsFaulted || _created.IsCanceled)
            {
                // Not the caller's token: one caller giving up must not fail the others waiting on the same creation.
                _created = CreateAsync(Container);
            }

            created = _created;
        }

        return created.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// The error for a write that found the container missing after it had been seen to exist. It is not created again:
    /// it took every retained checkpoint and shared file with it, and running subtasks and the coordinator still
    /// reference those, so checkpoints written into a new container would commit but could never be restored.
    /// </summary>
    public InvalidOperationException ContainerDeleted(Exception inner)
    {
        var container = Container;
        LogContainerDeleted(container.Name, container.AccountName);
        return new InvalidOperationException(
            $"Blob container '{container.Name}' of storage account '{container.AccountName}' was deleted while in use: the checkpoints it held, " +
            "and the shared files incremental checkpoints build on, are lost, so it is not created again (checkpoints written into a new container " +
            "could not be restored). Recreate the container and restart the job from a savepoint, or from scratch if it has none.",
            inner);
    }

    private async Task CreateAsync(BlobContainerClient container)
    {
        try
        {
            if (await container.CreateIfNotExistsAsync(cancellationToken: CancellationToken.None) is not null)
            {
                LogContainerCreated(container.Name, container.AccountName);
            }
        }
        catch (RequestFailedException ex) when (ex.Status == 403)
        {
            // An identity scoped to one existing container may write blobs but not create containers.
            bool exists;
            try
            {
                exists = await container.ExistsAsync(CancellationToken.None);
            }
            catch (RequestFailedException)
            {
                exists = false;
            }

            if (!exists)
            {
                throw AzureBlobErrors.AccessDenied(ex, $"create or find container '{container.Name}' in account '{container.AccountName}'");
            }
        }

        _exists = true;
    }

    private BlobContainerClient Build()
    {
        var endpoint = options.ResolveEndpoint();
        var clientOptions = new BlobClientOptions
        {
            Retry =
            {
                Mode = options.RetryMode,
                MaxRetries = options.MaxRetries,
                Delay = options.RetryDelay,
                MaxDelay = options.MaxRetryDelay,
                NetworkTimeout = options.NetworkTimeout,
            },
        };
        var service = endpoint.ConnectionString is { } connectionString
            ? new BlobServiceClient(connectionString, clientOptions)
            // DefaultAzureCredential: a managed identity in Azure (AZURE_CLIENT_ID picks a user-assigned one), a developer's sign-in elsewhere.
            : new BlobServiceClient(endpoint.ServiceUri, new DefaultAzureCredential(), clientOptions);
        return service.GetBlobContainerClient(endpoint.ContainerName ?? options.ContainerName);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Blob container {Container} of storage account {Account} was deleted while in use; the checkpoints in it are lost and checkpoints fail until it is recreated and the job restarted")]
    private partial void LogContainerDeleted(string container, string account);

    [LoggerMessage(Level = LogLevel.Information, Message = "Created blob container {Container} in storage account {Account} for checkpoints")]
    private partial void LogContainerCreated(string container, string account);
}

/// <summary>Turns the service's refusals into errors that say what to do.</summary>
internal static class AzureBlobErrors
{
    public static InvalidOperationException AccessDenied(RequestFailedException ex, string what) => new(
        $"Azure Blob Storage refused to {what} ({ex.Status} {ex.ErrorCode}). Give the silo's identity the 'Storage Blob Data Contributor' role on the " +
        $"account or container (with a managed identity, check AZURE_CLIENT_ID), or fix the key or SAS in {AzureBlobStorageOptions.SectionName}:ConnectionString.",
        ex);
}
