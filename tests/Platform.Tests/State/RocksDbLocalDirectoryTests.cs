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
    public void Directories_of_ended_processes_are_deleted_and_those_of_live_ones_kept()
    {
        var root = TestData.NewDirectory("rocksdb-local");

        // An ended process: its lock file is there but nobody holds it.
        var ended = Directory.CreateDirectory(Path.Combine(root, "process-999999-deadbeef")).FullName;
        File.WriteAllText(Path.Combine(ended, ".lock"), "");
        File.WriteAllText(Path.Combine(ended, "000010.sst"), "left by a crash");

        // A live process: it holds its lock file open (here this test stands in for another silo process).
        var other = Directory.CreateDirectory(Path.Combine(root, "process-1-cafebabe")).FullName;
        using var otherLock = new FileStream(Path.Combine(other, ".lock"), FileMode.Create, FileAccess.ReadWrite, FileShare.None);
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
        Assert.True(Directory.Exists(other));
        Assert.True(Directory.Exists(unrelated));

        using var backend = (Platform.State.RocksDb.RocksDbKeyedStateBackend<string>)factory.Create<string>(new KeyedStateBackendContext(new KeyGroupRange(0, 127), 128, "op"));
        var own = Path.Combine(root, ProcessDirectories.NameOfThisProcess);
        Assert.StartsWith(own + Path.DirectorySeparatorChar, backend.WorkingDirectory);

        // This process's own directory survives a sweep: its lock is held.
        ProcessDirectories.DeleteThoseOfEndedProcesses(root);
        Assert.True(Directory.Exists(backend.WorkingDirectory));
    }
}
