using Aspire.Hosting.ApplicationModel;

namespace Platform.AppHost.Resources;

/// <summary>
/// Azurite (blob, queue and table services) run by Node.js as an executable resource: what
/// <c>AddAzureStorage(...).RunAsEmulator()</c> models, without a container runtime.
/// </summary>
public sealed class AzuriteResource(string name, string node, string workingDirectory)
    : ExecutableResource(name, node, workingDirectory), IResourceWithConnectionString
{
    /// <summary>Azurite's well-known development account (public, documented by Microsoft; not a secret).</summary>
    public const string AccountName = "devstoreaccount1";

    /// <summary>The development account's well-known key.</summary>
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    /// <summary>The blob service's endpoint.</summary>
    public EndpointReference Blob => new(this, "blob");

    /// <summary>The queue service's endpoint.</summary>
    public EndpointReference Queue => new(this, "queue");

    /// <summary>The table service's endpoint.</summary>
    public EndpointReference Table => new(this, "table");

    /// <summary>A storage connection string naming all three services of the development account.</summary>
    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};BlobEndpoint={ServiceUrl(Blob)};QueueEndpoint={ServiceUrl(Queue)};TableEndpoint={ServiceUrl(Table)};");

    /// <summary><c>http://127.0.0.1:port/devstoreaccount1</c> of one of the services.</summary>
    public static ReferenceExpression ServiceUrl(EndpointReference endpoint) =>
        ReferenceExpression.Create($"http://127.0.0.1:{endpoint.Property(EndpointProperty.Port)}/{AccountName}");
}

/// <summary>
/// One service of an <see cref="AzuriteResource"/> under a name of its own, so that <c>WithReference</c> injects
/// <c>ConnectionStrings__{name}</c> (as Aspire's <c>AddBlobs("checkpoints")</c> does).
/// </summary>
public sealed class AzuriteServiceResource(string name, AzuriteResource parent, string service)
    : Resource(name), IResourceWithParent<AzuriteResource>, IResourceWithConnectionString
{
    /// <inheritdoc />
    public AzuriteResource Parent { get; } = parent;

    /// <summary>blob, queue or table.</summary>
    public string Service { get; } = service;

    /// <summary>A connection string naming only this service (the Azure SDK clients of it accept it).</summary>
    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"DefaultEndpointsProtocol=http;AccountName={AzuriteResource.AccountName};AccountKey={AzuriteResource.AccountKey};{EndpointKey}={AzuriteResource.ServiceUrl(new EndpointReference(Parent, Service))};");

    private string EndpointKey => Service switch
    {
        "blob" => "BlobEndpoint",
        "queue" => "QueueEndpoint",
        _ => "TableEndpoint",
    };
}
