using Microsoft.Extensions.Configuration;
using Orleans.Hosting;
using Orleans.TestingHost;
using Platform.Samples;

namespace Platform.Tests.Infrastructure;

/// <summary>How the tests' in-process silos add the platform.</summary>
public static class TestSilos
{
    /// <summary>Gives the silos of a test cluster one shared state, checkpoint and RocksDB root, as silos on one machine would share.</summary>
    public static void UseSharedDirectories(this TestClusterBuilder builder, string root)
    {
        builder.Properties["StateDirectory"] = Path.Combine(root, "state");
        builder.Properties["CheckpointDirectory"] = Path.Combine(root, "checkpoints");
        builder.Properties["SavepointDirectory"] = Path.Combine(root, "savepoints");
    }

    /// <summary>
    /// Adds the platform with small batches and windows, which exercise sequencing, credit and partial flushes with
    /// small test inputs, the directories set by <see cref="UseSharedDirectories"/>, and the demo jobs in the job
    /// catalog, as the silo host registers them.
    /// </summary>
    public static ISiloBuilder AddPlatformForTests(this ISiloBuilder siloBuilder) => siloBuilder
        .AddStreamingPlatform(o =>
        {
            o.BatchSize = 64;
            o.ChannelWindow = 4;
            o.StateDirectory = siloBuilder.Configuration["StateDirectory"]!;
            o.CheckpointDirectory = siloBuilder.Configuration["CheckpointDirectory"]!;
            o.SavepointDirectory = siloBuilder.Configuration["SavepointDirectory"] ?? Path.Combine(o.StateDirectory, "..", "savepoints");
            o.RocksDb.LocalDirectory = Path.Combine(siloBuilder.Configuration["StateDirectory"]!, "..", "rocksdb");
            // Jobs' files: the tests' own (under the temp folder) and the repository's samples.
            o.DataRoots = [TestData.Root, Hosting.BuiltPrograms.Root];
            if (int.TryParse(siloBuilder.Configuration["CheckpointHistorySize"], out var historySize))
            {
                o.CheckpointHistorySize = historySize;
            }
        })
        .AddJobs(SampleJobs.All);
}

/// <summary>Adds the platform the tests' way (<see cref="TestSilos.AddPlatformForTests"/>) to every silo of a test cluster.</summary>
public sealed class PlatformTestSiloConfigurator : ISiloConfigurator
{
    /// <inheritdoc />
    public void Configure(ISiloBuilder siloBuilder) => siloBuilder.AddPlatformForTests().AddOutgoingGrainCallFilter<AckFaultFilter>().AddIncomingGrainCallFilter<CallFaultFilter>();
}
