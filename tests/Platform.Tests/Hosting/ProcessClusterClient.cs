using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Hosting;

namespace Platform.Tests.Hosting;

/// <summary>An Orleans client host connected to silo processes' gateways on loopback, retried until they accept it.</summary>
public static class ProcessClusterClient
{
    /// <summary>Connects to <paramref name="gatewayPorts"/>; <paramref name="configure"/> adds to the client (TLS, ...).</summary>
    public static async Task<IHost> ConnectAsync(string clusterId, string serviceId, TimeSpan timeout, Action<IClientBuilder>? configure, params int[] gatewayPorts)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(client =>
        {
            client.UseStaticClustering([.. gatewayPorts.Select(p => new IPEndPoint(IPAddress.Loopback, p))])
                .Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = clusterId;
                    o.ServiceId = serviceId;
                });
            configure?.Invoke(client);
        });
        var host = builder.Build();
        await Poll.UntilAsync(
            async () =>
            {
                try
                {
                    await host.StartAsync();
                    return true;
                }
                catch (Exception ex) when (ex is OrleansException or System.Net.Sockets.SocketException or TimeoutException)
                {
                    return false;
                }
            },
            timeout,
            () => "the client connects to the gateways");
        return host;
    }
}
