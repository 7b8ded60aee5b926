using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Serialization;
using Platform.Hosting;
using Platform.State;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.State;

/// <summary>The RocksDB backend's local directory: one subdirectory per silo process, swept after crashes.</summary>
public sealed class RocksDbLocalDirectoryTests
{
    [Fact]
    public void Directories_of_ended_processes_are_deleted_and_live_ones_kept()
    {
        var root = TestData.NewDirectory("rocksdb-local");
        var ended = Directory.CreateDirectory(Path.Combine(root, ProcessDirectories.NameOf(Environment.ProcessId, 42))).FullName; // a reused process id
        File.WriteAllText(Path.Combine(ended, "000010.sst"), "left by a crash");
        var live = Directory.CreateDirectory(Path.Combine(root, ProcessDirectories.NameOfThisProcess)).FullName;
        var unrelated = Directory.CreateDirectory(Path.Combine(root, "not-ours")).FullName;

        var services = new ServiceCollection();
        services.AddSerializer();
        services.AddStreamingPlatform(section: null, o =>
        {
            o.StateDirectory = TestData.NewDirectory("state");
            o.CheckpointDirectory = TestData.NewDirectory("checkpoints");
            o.RocksDb.LocalDirectory = root;
        });
        using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredKeyedService<IKeyedStateBackendFactory>(StateBackendKind.RocksDb);

        Assert.False(Directory.Exists(ended));
        Assert.True(Directory.Exists(live));
        Assert.True(Directory.Exists(unrelated));

        using var backend = (Platform.State.RocksDb.RocksDbKeyedStateBackend<string>)factory.Create<string>(new KeyedStateBackendContext(new KeyGroupRange(0, 127), 128, "op"));
        Assert.StartsWith(live + Path.DirectorySeparatorChar, backend.WorkingDirectory);
    }
}
