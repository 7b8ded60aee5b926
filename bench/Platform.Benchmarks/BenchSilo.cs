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

    /// <summary>Starts the silo.</summary>
    /// <param name="batchSize">Platform:BatchSize, or null for the platform's default.</param>
    /// <param name="channelWindow">Platform:ChannelWindow, or null for the platform's default.</param>
    /// <param name="configure">Further platform options (directories, backends), applied after the two above.</param>
    /// <param name="configureLogging">Further logging set-up (extra providers, filters), applied after the console's.</param>
    public static async Task<BenchSilo> StartAsync(
        int? batchSize,
        int? channelWindow,
        Action<StreamingPlatformOptions>? configure = null,
        Action<ILoggingBuilder>? configureLogging = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = false });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        configureLogging?.Invoke(builder.Logging);
        var siloPort = FreePort();
        var gatewayPort = FreePort();
        builder.UseOrleans(silo => silo
            .UseLocalhostClustering(siloPort, gatewayPort, serviceId: "platform-bench", clusterId: $"bench-{Guid.NewGuid():N}")
            .AddStreamingPlatform(o =>
            {
                // The benchmarks' inputs and outputs are in their own temporary directories.
                o.AllowAnyDataPath = true;
                if (batchSize is { } b)
                {
                    o.BatchSize = b;
                }

                if (channelWindow is { } w)
                {
                    o.ChannelWindow = w;
                }

                configure?.Invoke(o);
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
