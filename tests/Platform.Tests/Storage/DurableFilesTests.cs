using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.Serialization;
using Platform.Storage.FileSystem;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Storage;

/// <summary>
/// What can be observed of durability without cutting the power: the directory fsync runs on a real directory, and
/// every commit flushes the directory holding the new name after the rename (the name is already there when it is
/// flushed). Whether the disk honours the fsync is beyond what a test can see.
/// </summary>
public sealed class DurableFilesTests : IDisposable
{
    private readonly string _root = TestData.NewDirectory("durable");

    // Which directories under this test's root were flushed, and what each held at that moment.
    private readonly ConcurrentQueue<(string Directory, string[] Files)> _flushed = new();

    public DurableFilesTests() => DurableFiles.DirectoryFlushed += Record;

    public void Dispose() => DurableFiles.DirectoryFlushed -= Record;

    private void Record(string directory)
    {
        if (directory.StartsWith(_root, StringComparison.Ordinal))
        {
            _flushed.Enqueue((directory, [.. Directory.EnumerateFiles(directory).Select(f => Path.GetFileName(f)!)]));
        }
    }

    [Fact]
    public void A_real_directory_is_fsynced_and_a_missing_one_is_an_error()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        DurableFiles.FlushDirectory(_root);
        Assert.Contains(_flushed, f => f.Directory == _root);

        var missing = Path.Combine(_root, "missing");
        var error = Assert.Throws<IOException>(() => DurableFiles.FlushDirectory(missing));
        Assert.Contains(missing, error.Message);
    }

    [Fact]
    public async Task A_checkpoint_commit_flushes_its_directory_once_the_metadata_has_its_name()
    {
        var storage = new FileSystemCheckpointStorage(_root);
        await storage.WriteStateAsync("job", 4, "0-0-count.state", new byte[] { 1, 2, 3 });
        await storage.WriteMetadataAsync(CheckpointStorageConformanceTests.EmptyMetadata("job", 4));

        var checkpoint = Path.Combine(_root, "job", "chk-4");
        Assert.Contains(_flushed, f => f.Directory == checkpoint && f.Files.Contains("_metadata") && !f.Files.Any(n => n.EndsWith(".tmp", StringComparison.Ordinal)));
        // The new job and checkpoint directories are entries of their parents, which are flushed as well.
        Assert.Contains(_flushed, f => f.Directory == _root);
        Assert.Contains(_flushed, f => f.Directory == Path.Combine(_root, "job"));
    }

    [Fact]
    public async Task A_shared_state_file_is_durable_under_its_name_before_its_handle_is_returned()
    {
        var storage = new FileSystemCheckpointStorage(_root);
        var handle = await storage.WriteSharedStateAsync("job", "000042.sst", new MemoryStream([7, 7]));

        Assert.Contains(_flushed, f => f.Directory == Path.Combine(_root, "job", "shared") && f.Files.Contains("000042.sst"));
        Assert.Equal("shared/000042.sst", handle.Path);
    }

    [Fact]
    public async Task Writing_grain_state_flushes_its_directory_once_the_new_version_has_its_name()
    {
        var serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();
        var storage = new FileSystemGrainStorage("test", _root, serializer, NullLogger<FileSystemGrainStorage>.Instance);
        var grain = GrainId.Create("job", "durable");

        await storage.WriteStateAsync("job", grain, new GrainState<int> { State = 5 });

        Assert.Contains(_flushed, f => f.Files.Any(n => n.EndsWith(".state", StringComparison.Ordinal)) && !f.Files.Any(n => n.EndsWith(".tmp", StringComparison.Ordinal)));
    }
}
