using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Platform.Hosting;

namespace Platform.Benchmarks;

/// <summary>One in-process silo with the streaming platform, on free localhost ports, and its own cluster client.</summary>
internal sealed class BenchSilo : IAsyncDisposable
{
    private readonly IHost _host;

    private BenchSilo(IHost host)
    {
        _host = host;
        Client = host.Services.GetRequiredService<IClusterClient>();
        Options = host.Services.GetRequiredService<IOptions<StreamingPlatformOptions>>().Value;
    }

    /// <summary>The silo's own cluster client (calls stay in the process).</summary>
    public IClusterClient Client { get; }

    /// <summary>The platform options the silo runs with.</summary>
    public StreamingPlatformOptions Options { get; }

    public static async Task<BenchSilo> StartAsync(int? batchSize, int? channelWindow)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = false });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var siloPort = FreePort();
        var gatewayPort = FreePort();
        builder.UseOrleans(silo => silo
            .UseLocalhostClustering(siloPort, gatewayPort, serviceId: "platform-bench", clusterId: $"bench-{Guid.NewGuid():N}")
            .AddStreamingPlatform(o =>
            {
                if (batchSize is { } b)
                {
                    o.BatchSize = b;
                }

                if (channelWindow is { } w)
                {
                    o.ChannelWindow = w;
                }
            }));
        var host = builder.Build();
        await host.StartAsync();
        return new BenchSilo(host);
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await _host.StopAsync(timeout.Token);
        }
        finally
        {
            _host.Dispose();
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
