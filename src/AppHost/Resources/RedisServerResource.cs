using Aspire.Hosting.ApplicationModel;

namespace Platform.AppHost.Resources;

/// <summary>
/// A local <c>redis-server</c> run as an executable resource: what <c>AddRedis</c> models, without the container runtime
/// that <c>AddRedis</c> needs (and that these machines do not have).
/// </summary>
/// <remarks>
/// Named <c>RedisResource</c>-like on purpose: Orleans' Aspire integration derives the provider type from the resource's
/// type name, and <see cref="RedisServerExtensions.AddRedisServer"/> sets it to <c>Redis</c> explicitly.
/// </remarks>
public sealed class RedisServerResource(string name, string command, string workingDirectory)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    /// <summary>The name of the TCP endpoint clients connect to.</summary>
    public const string EndpointName = "tcp";

    /// <summary>The endpoint redis-server listens on.</summary>
    public EndpointReference Endpoint => new(this, EndpointName);

    /// <summary>A StackExchange.Redis connection string, <c>127.0.0.1:port</c> (it listens on the IPv4 loopback only).</summary>
    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"127.0.0.1:{Endpoint.Property(EndpointProperty.Port)}");
}
