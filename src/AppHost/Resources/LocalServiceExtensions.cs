using System.Net.Sockets;
using System.Text;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Platform.AppHost.Resources;

/// <summary>Adds redis-server and Azurite as executable resources, each with a health check that the silos wait for.</summary>
internal static class LocalServiceExtensions
{
    /// <summary>
    /// Adds a redis-server on a free port of 127.0.0.1, without persistence (membership needs none), healthy once it
    /// answers PING. Orleans' provider type for it is <c>Redis</c>.
    /// </summary>
    public static IResourceBuilder<RedisServerResource> AddRedisServer(this IDistributedApplicationBuilder builder, string name, string dataDirectory)
    {
        var server = FindOnPath("redis-server")
            ?? throw new AppHostException("--clustering redis needs redis-server, which is not on PATH; scripts/install-test-dependencies installs it (Debian package redis-server).");
        var port = FreePorts.Allocate(1)[0];
        Directory.CreateDirectory(dataDirectory);
        var resource = new RedisServerResource(name, server, dataDirectory);
        var healthCheck = $"{name}-ping";
        builder.Services.AddHealthChecks().AddAsyncCheck(healthCheck, ct => AnswersPingAsync(port, ct));
        return builder.AddResource(resource)
            .WithEndpoint(RedisServerResource.EndpointName, e =>
            {
                e.UriScheme = "tcp";
                e.Port = port;
                e.TargetPort = port;
                e.IsProxied = false;
            })
            .WithArgs("--bind", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--save", "", "--appendonly", "no", "--dir", dataDirectory)
            .WithHealthCheck(healthCheck)
            .WithOrleansProviderType("Redis");
    }

    /// <summary>
    /// Adds Azurite's blob, queue and table services (the npm package that scripts/install-test-dependencies installs
    /// into tools/azurite) on free ports of 127.0.0.1, healthy once the blob service accepts connections.
    /// </summary>
    public static IResourceBuilder<AzuriteResource> AddAzurite(this IDistributedApplicationBuilder builder, string name, string azuriteScript, string dataDirectory)
    {
        var node = FindOnPath("node")
            ?? throw new AppHostException("--storage azure and --clustering azure need Node.js (node on PATH) to run Azurite; scripts/install-test-dependencies installs it (Debian package nodejs).");
        if (!File.Exists(azuriteScript))
        {
            throw new AppHostException($"--storage azure and --clustering azure need Azurite, which is not installed ({azuriteScript} is missing); scripts/install-test-dependencies installs it with npm.");
        }

        var ports = FreePorts.Allocate(3);
        Directory.CreateDirectory(dataDirectory);
        var healthCheck = $"{name}-blob";
        builder.Services.AddHealthChecks().AddAsyncCheck(healthCheck, ct => AcceptsAsync(ports[0], ct));
        var azurite = builder.AddResource(new AzuriteResource(name, node, dataDirectory));
        foreach (var (service, port) in new[] { ("blob", ports[0]), ("queue", ports[1]), ("table", ports[2]) })
        {
            azurite.WithEndpoint(service, e =>
            {
                e.UriScheme = "http";
                e.Port = port;
                e.TargetPort = port;
                e.IsProxied = false;
            });
        }

        string Port(int i) => ports[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        return azurite
            .WithArgs(
                azuriteScript,
                "--blobHost", "127.0.0.1", "--blobPort", Port(0),
                "--queueHost", "127.0.0.1", "--queuePort", Port(1),
                "--tableHost", "127.0.0.1", "--tablePort", Port(2),
                "--location", dataDirectory,
                // The Azure SDK may speak a newer API version than this Azurite knows.
                "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent")
            .WithHealthCheck(healthCheck);
    }

    /// <summary>One service of Azurite under its own name (a connection string of that name for <c>WithReference</c>).</summary>
    public static IResourceBuilder<AzuriteServiceResource> AddService(this IResourceBuilder<AzuriteResource> azurite, string name, string service) =>
        azurite.ApplicationBuilder.AddResource(new AzuriteServiceResource(name, azurite.Resource, service))
            .WithParentRelationship(azurite)
            .WithInitialState(new CustomResourceSnapshot
            {
                ResourceType = $"Azurite{char.ToUpperInvariant(service[0])}{service[1..]}",
                State = KnownResourceStates.Running,
                Properties = [],
            })
            .WithOrleansProviderType(service switch { "table" => "AzureTableStorage", "queue" => "AzureQueueStorage", _ => "AzureBlobStorage" });

    private static async Task<HealthCheckResult> AcceptsAsync(int port, CancellationToken cancellationToken)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port, cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (SocketException ex)
        {
            return HealthCheckResult.Unhealthy($"nothing accepts connections on 127.0.0.1:{port}", ex);
        }
    }

    private static async Task<HealthCheckResult> AnswersPingAsync(int port, CancellationToken cancellationToken)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port, cancellationToken);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), cancellationToken);
            var buffer = new byte[64];
            var read = await stream.ReadAsync(buffer, cancellationToken);
            var reply = Encoding.ASCII.GetString(buffer, 0, read);
            return reply.StartsWith("+PONG", StringComparison.Ordinal) ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy($"PING was answered '{reply.Trim()}'");
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            return HealthCheckResult.Unhealthy($"redis-server does not answer on 127.0.0.1:{port}", ex);
        }
    }

    /// <summary>The full path of <paramref name="program"/> on PATH, or <c>null</c>.</summary>
    public static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program))
            .FirstOrDefault(File.Exists);
}
