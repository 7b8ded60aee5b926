using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.Serialization;
using Orleans.Storage;
using Platform.Storage.FileSystem;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Storage;

public sealed class FileSystemGrainStorageTests
{
    private static readonly Serializer Serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();

    private static FileSystemGrainStorage Storage(string root) => new("test", root, Serializer, NullLogger<FileSystemGrainStorage>.Instance);

    [Fact]
    public async Task State_round_trips_and_a_stale_writer_is_refused()
    {
        var storage = Storage(TestData.NewDirectory("grain-storage"));
        var grain = GrainId.Create("job", "a/b:c");
        var first = new GrainState<List<string>> { State = ["one"] };
        await storage.WriteStateAsync("job", grain, first);

        var read = new GrainState<List<string>>();
        await storage.ReadStateAsync("job", grain, read);
        Assert.True(read.RecordExists);
        Assert.Equal(["one"], read.State);

        read.State!.Add("two");
        await storage.WriteStateAsync("job", grain, read);
        first.State.Add("stale");
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("job", grain, first));

        var again = new GrainState<List<string>>();
        await storage.ReadStateAsync("job", grain, again);
        Assert.Equal(["one", "two"], again.State);
    }

    [Fact]
    public async Task Of_two_simultaneous_writers_with_the_same_version_exactly_one_wins()
    {
        var root = TestData.NewDirectory("grain-storage");
        var grain = GrainId.Create("job", "race");
        await Storage(root).WriteStateAsync("job", grain, new GrainState<int> { State = 0 });

        for (var round = 0; round < 20; round++)
        {
            var a = new GrainState<int>();
            var b = new GrainState<int>();
            await Storage(root).ReadStateAsync("job", grain, a);
            await Storage(root).ReadStateAsync("job", grain, b);
            a.State = 1;
            b.State = 2;

            var results = await Task.WhenAll(
                Task.Run(async () => { try { await Storage(root).WriteStateAsync("job", grain, a); return true; } catch (InconsistentStateException) { return false; } }),
                Task.Run(async () => { try { await Storage(root).WriteStateAsync("job", grain, b); return true; } catch (InconsistentStateException) { return false; } }));

            Assert.Equal(1, results.Count(won => won));
        }
    }

    [Fact]
    public async Task A_missing_record_reads_as_a_new_state()
    {
        var state = new GrainState<List<int>>();
        await Storage(TestData.NewDirectory("grain-storage")).ReadStateAsync("job", GrainId.Create("job", "none"), state);

        Assert.False(state.RecordExists);
        Assert.NotNull(state.State);
        Assert.Null(state.ETag);
    }
}
