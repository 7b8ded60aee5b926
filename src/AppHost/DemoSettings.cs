using System.Net;

namespace Platform.AppHost;

/// <summary>What the demo runs on: the cluster's ids, each silo's ports, the input and output, the chosen options.</summary>
internal sealed record DemoSettings(string ClusterId, IReadOnlyList<SiloSpec> Silos, string Input, string Output, string RunDirectory, AppHostOptions Options)
{
    /// <summary>The Orleans service id.</summary>
    public const string ServiceId = "platform";

    /// <summary>A cluster id unique to this run, free ports for every silo, the input and output as absolute paths, the run's directory.</summary>
    public static DemoSettings Create(AppHostOptions options, RepositoryLayout layout)
    {
        var ports = FreePorts.Allocate(3 * options.Silos);
        var silos = Enumerable.Range(0, options.Silos)
            .Select(i => new SiloSpec($"silo-{i}", ports[3 * i], ports[(3 * i) + 1], ports[(3 * i) + 2]))
            .ToList();
        var clusterId = $"local-{Guid.NewGuid():N}"[..14];
        return new DemoSettings(
            clusterId,
            silos,
            Path.GetFullPath(options.Input ?? layout.DefaultInput),
            Path.GetFullPath(options.Output ?? layout.DefaultOutput),
            // Everything of this run (the silos' shared state, checkpoints, RocksDB files, the services' data) in one folder.
            Path.Combine(layout.Root, ".artifacts", "apphost", clusterId),
            options);
    }

    /// <summary>The client gateways of every silo.</summary>
    public IPEndPoint[] Gateways => [.. Silos.Select(s => s.GatewayEndpoint)];

    /// <summary>The name of the silo with the address <paramref name="siloAddress"/> (as Orleans prints it), or the address itself.</summary>
    public string NameOf(string siloAddress) =>
        Silos.FirstOrDefault(s => siloAddress.Contains($"{s.SiloEndpoint}:", StringComparison.Ordinal))?.Name ?? siloAddress;
}

/// <summary>
/// One silo's name and ports. The AppHost picks the ports (instead of letting DCP proxy them) because a silo advertises
/// the address it listens on: other silos and clients must dial exactly that one.
/// </summary>
internal sealed record SiloSpec(string Name, int SiloPort, int GatewayPort, int HttpPort)
{
    /// <summary>The silo-to-silo endpoint.</summary>
    public IPEndPoint SiloEndpoint => new(IPAddress.Loopback, SiloPort);

    /// <summary>The client gateway endpoint.</summary>
    public IPEndPoint GatewayEndpoint => new(IPAddress.Loopback, GatewayPort);

    /// <summary>The HTTP base address.</summary>
    public Uri HttpAddress => new($"http://localhost:{HttpPort}/");
}
