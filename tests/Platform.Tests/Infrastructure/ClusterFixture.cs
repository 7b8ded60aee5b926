using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.TestingHost;
using Platform.Client;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// A real Orleans cluster of two silos in this process, over TCP (so every batch between silos is serialized),
/// with the streaming platform added. Shared by the tests of a collection.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public const int Silos = 2;

    public TestCluster Cluster { get; private set; } = null!;

    public PlatformClient Platform { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(Silos);
        builder.Options.ClusterId = $"test-{Guid.NewGuid():N}";
        builder.Options.ServiceId = "platform-tests";
        builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket;
        // Silos of one cluster share the platform's state and checkpoint directories, as silos on one machine would.
        builder.UseSharedDirectories(TestData.NewDirectory("cluster"));
        builder.AddSiloBuilderConfigurator<PlatformTestSiloConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
        Platform = new PlatformClient(Cluster.Client);
    }

    public async Task DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.StopAllSilosAsync();
            await Cluster.DisposeAsync();
        }
    }

}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}
