using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.TestingHost;
using Platform.Client;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// A cluster of its own for a test that kills silos: three silos over TCP sharing state and checkpoint directories,
/// with fast failure detection. The primary silo holds the test membership table, so tests kill secondaries.
/// Its silos carry out <see cref="CallFaults"/>.
/// </summary>
public sealed class KillableCluster : IAsyncDisposable
{
    private KillableCluster(TestCluster cluster, string checkpointDirectory)
    {
        Cluster = cluster;
        CheckpointDirectory = checkpointDirectory;
        Platform = new PlatformClient(cluster.Client);
    }

    public TestCluster Cluster { get; }

    public PlatformClient Platform { get; }

    public string CheckpointDirectory { get; }

    public static async Task<KillableCluster> StartAsync(int silos = 3, int? checkpointHistorySize = null)
    {
        var builder = new TestClusterBuilder((short)silos);
        builder.Options.ClusterId = $"kill-{Guid.NewGuid():N}";
        builder.Options.ServiceId = "platform-kill-tests";
        builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket;
        var root = TestData.NewDirectory("kill-cluster");
        builder.UseSharedDirectories(root);
        if (checkpointHistorySize is { } historySize)
        {
            builder.Properties["CheckpointHistorySize"] = historySize.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        builder.AddClientBuilderConfigurator<ClientConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return new KillableCluster(cluster, Path.Combine(root, "checkpoints"));
    }

    /// <summary>Kills a random secondary silo (not the primary), preferring <paramref name="preferredAddress"/>, and starts a replacement.</summary>
    public async Task<string> KillSecondaryAndReplaceAsync(Random random, string? preferredAddress = null)
    {
        var secondaries = Cluster.SecondarySilos.ToList();
        var victim = secondaries.FirstOrDefault(s => s.SiloAddress.ToString() == preferredAddress) ?? secondaries[random.Next(secondaries.Count)];
        await Cluster.KillSiloAsync(victim);
        await Cluster.StartAdditionalSiloAsync();
        return victim.SiloAddress.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Cluster.StopAllSilosAsync();
        }
        finally
        {
            await Cluster.DisposeAsync();
        }
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.AddPlatformForTests();
            siloBuilder.AddIncomingGrainCallFilter<CallFaultFilter>();
            siloBuilder.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = TimeSpan.FromSeconds(1);
                o.NumMissedProbesLimit = 2;
                o.NumVotesForDeathDeclaration = 1;
            });
            siloBuilder.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));
        }
    }

    private sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(IConfiguration configuration, IClientBuilder clientBuilder) =>
            clientBuilder.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));
    }
}
