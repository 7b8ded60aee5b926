using System.Globalization;
using System.Net;

namespace Platform.AppHost;

/// <summary>
/// A cluster of silo processes on this machine, configured the way a .NET Aspire AppHost configures Orleans silos
/// (environment variables <c>Orleans__ClusterId</c>, <c>Orleans__Clustering__ProviderType</c>, <c>Orleans__Endpoints__SiloPort</c>,
/// <c>ConnectionStrings__clustering</c>, ...), with Orleans' development clustering (silo-0 is the primary and keeps the
/// membership table) or Redis clustering, and file-system or Azure Blob checkpoints.
/// </summary>
internal sealed class LocalCluster : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(2) };

    /// <summary>The silo host's health endpoint that says a silo is up and can take work.</summary>
    private const string HealthPath = "health/ready";

    private readonly ConsoleOutput _console;
    private readonly List<SiloProcess> _silos = [];
    private readonly Lock _lock = new();
    private bool _stopped;

    private readonly AppHostOptions _options;
    private readonly LocalServices _services;
    private readonly string _runDirectory;

    private LocalCluster(string clusterId, AppHostOptions options, LocalServices services, string runDirectory, ConsoleOutput console)
    {
        ClusterId = clusterId;
        _options = options;
        _services = services;
        _runDirectory = runDirectory;
        _console = console;
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    /// <summary>The cluster id, unique to this run.</summary>
    public string ClusterId { get; }

    /// <summary>The service id.</summary>
    public string ServiceId => "platform";

    /// <summary>The silos, silo-0 (the primary) first.</summary>
    public IReadOnlyList<SiloProcess> Silos
    {
        get
        {
            lock (_lock)
            {
                return [.. _silos];
            }
        }
    }

    /// <summary>The client gateways of every silo.</summary>
    public IPEndPoint[] Gateways => [.. Silos.Select(s => s.Spec.GatewayEndpoint)];

    /// <summary>The name of the silo with the address <paramref name="siloAddress"/> (as Orleans prints it), or the address itself.</summary>
    public string NameOf(string siloAddress) =>
        Silos.FirstOrDefault(s => siloAddress.Contains($"{s.Spec.SiloEndpoint}:", StringComparison.Ordinal))?.Spec.Name ?? siloAddress;

    /// <summary>A new cluster id, unique to a run.</summary>
    public static string NewClusterId() => $"local-{Guid.NewGuid():N}"[..14];

    /// <summary>
    /// Starts <paramref name="options"/>.Silos silos: the primary first, then the others together, and returns once every
    /// silo reports itself healthy on its HTTP health endpoint.
    /// </summary>
    /// <param name="runDirectory">Where this run's state, checkpoints and RocksDB files go.</param>
    public static async Task<LocalCluster> StartAsync(
        string clusterId,
        AppHostOptions options,
        LocalServices services,
        string runDirectory,
        RepositoryLayout layout,
        ConsoleOutput console,
        CancellationToken cancellationToken)
    {
        var count = options.Silos;
        var cluster = new LocalCluster(clusterId, options, services, runDirectory, console);
        try
        {
            var ports = FreePorts.Allocate(3 * count);
            var specs = Enumerable.Range(0, count)
                .Select(i => new SiloSpec($"silo-{i}", ports[3 * i], ports[(3 * i) + 1], ports[(3 * i) + 2]))
                .ToList();
            var primary = specs[0].SiloEndpoint;

            var clustering = options.Clustering == ClusteringChoice.Redis ? $"Redis clustering at {services.RedisConnectionString}" : $"development clustering, primary {primary}";
            console.Info($"starting {count} silo{(count == 1 ? "" : "s")} of cluster '{cluster.ClusterId}' ({clustering}; " +
                         $"{(options.Storage == StorageChoice.AzureBlob ? "Azure Blob" : "file-system")} checkpoints; {(options.Backend == BackendChoice.RocksDb ? "RocksDB" : "heap")} state)");
            await cluster.StartSiloAsync(specs[0], primary, layout, cancellationToken);
            await Task.WhenAll(specs.Skip(1).Select(spec => cluster.StartSiloAsync(spec, primary, layout, cancellationToken)));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops every silo: the others first, the primary (which holds the membership table) last.</summary>
    public async ValueTask DisposeAsync()
    {
        List<SiloProcess> silos;
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
            silos = [.. _silos];
        }

        try
        {
            if (silos.Count > 0)
            {
                _console.Info($"stopping {silos.Count} silo{(silos.Count == 1 ? "" : "s")}");
                await Task.WhenAll(silos.Skip(1).Select(s => s.StopAsync(StopGrace)));
                await silos[0].StopAsync(StopGrace);
                _console.Info("all silos stopped");
            }
        }
        finally
        {
            foreach (var silo in silos)
            {
                silo.Kill();
            }

            AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        }
    }

    private async Task StartSiloAsync(SiloSpec spec, IPEndPoint primary, RepositoryLayout layout, CancellationToken cancellationToken)
    {
        var environment = new Dictionary<string, string>
        {
            // The keys .NET Aspire's Orleans integration sets on a silo resource.
            ["Orleans__ClusterId"] = ClusterId,
            ["Orleans__ServiceId"] = ServiceId,
            ["Orleans__Endpoints__SiloPort"] = spec.SiloPort.ToString(CultureInfo.InvariantCulture),
            ["Orleans__Endpoints__GatewayPort"] = spec.GatewayPort.ToString(CultureInfo.InvariantCulture),
            ["Orleans__Endpoints__AdvertisedIPAddress"] = IPAddress.Loopback.ToString(),
            ["Orleans__Name"] = spec.Name,
            ["ASPNETCORE_URLS"] = spec.HttpAddress.ToString().TrimEnd('/'),

            // The platform's own state and the checkpoints are shared by the silos of this run and start empty.
            ["Platform__StateDirectory"] = Path.Combine(_runDirectory, "state"),
            ["Platform__CheckpointDirectory"] = Path.Combine(_runDirectory, "checkpoints"),
            ["Platform__SavepointDirectory"] = Path.Combine(_runDirectory, "savepoints"),
            ["Platform__RocksDb__LocalDirectory"] = Path.Combine(_runDirectory, "rocksdb"),
            ["Platform__DefaultStateBackend"] = _options.Backend == BackendChoice.RocksDb ? "RocksDb" : "Heap",

            // The silo stops by itself if this process dies without stopping it.
            ["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
        };
        if (_options.Clustering == ClusteringChoice.Redis)
        {
            // As Aspire's WithClustering(redis): the provider, the name of its connection string, and the string itself.
            environment["Orleans__Clustering__ProviderType"] = "Redis";
            environment["Orleans__Clustering__ServiceKey"] = "clustering";
            environment["ConnectionStrings__clustering"] = _services.RedisConnectionString!;
        }
        else
        {
            // Development clustering needs every silo to know the primary; Aspire's WithDevelopmentClustering leaves it out.
            environment["Orleans__Clustering__ProviderType"] = "Development";
            environment["Orleans__Clustering__PrimarySiloEndPoint"] = primary.ToString();
        }

        if (_options.Storage == StorageChoice.AzureBlob)
        {
            // As Aspire's WithReference(blobs) on a resource named "checkpoints": a connection string of that name.
            environment["Platform__DefaultCheckpointStorage"] = "AzureBlob";
            environment["Platform__SavepointStorage"] = "AzureBlob";
            environment["ConnectionStrings__checkpoints"] = _services.AzuriteConnectionString!;
        }

        SiloProcess silo;
        lock (_lock)
        {
            if (_stopped)
            {
                throw new OperationCanceledException(cancellationToken);
            }

            silo = SiloProcess.Start(spec, layout, environment, _console);
            _silos.Add(silo);
        }

        _console.Info($"{spec.Name} pid={silo.Id} silo={spec.SiloEndpoint} gateway={spec.GatewayEndpoint} http={spec.HttpAddress}");
        await WaitUntilHealthyAsync(silo, cancellationToken);
        _console.Info($"{spec.Name} is healthy ({HealthPath})");
    }

    private static async Task WaitUntilHealthyAsync(SiloProcess silo, CancellationToken cancellationToken)
    {
        var live = new Uri(silo.Spec.HttpAddress, HealthPath);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(StartTimeout);
        try
        {
            while (true)
            {
                if (silo.HasExited)
                {
                    throw new AppHostException(
                        $"{silo.Spec.Name} exited with code {silo.ExitCode} before it was up; its output is above (lines starting with [{silo.Spec.Name}]).");
                }

                try
                {
                    using var response = await Http.GetAsync(live, deadline.Token);
                    if (response.IsSuccessStatusCode)
                    {
                        return;
                    }
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }
                catch (TaskCanceledException) when (!deadline.IsCancellationRequested)
                {
                    // This request timed out; the next one may not.
                }

                await Task.Delay(PollInterval, deadline.Token);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AppHostException($"{silo.Spec.Name} did not answer on {live} within {StartTimeout.TotalSeconds:0} s.");
        }
    }

    private void OnProcessExit(object? sender, EventArgs e)
    {
        // Last resort when the process exits without DisposeAsync having run (no orphaned silos or services).
        foreach (var silo in Silos)
        {
            silo.Kill();
        }

        _services.Kill();
    }
}
