using Platform.Checkpointing;
using Platform.Graph;
using Platform.Runtime;
using Platform.State;
using Platform.Storage.FileSystem;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Checkpointing;

/// <summary>Incremental RocksDB checkpoints in a running job: shared files, their reference counting, and their deletion.</summary>
[Collection(ClusterCollection.Name)]
public sealed class IncrementalCheckpointTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    private async Task WaitForCompletedCheckpoints(string jobId, long count)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            var stats = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
            if (stats.Completed >= count)
            {
                return;
            }

            var status = await fixture.Platform.GetStatusAsync(jobId);
            Assert.False(status.State.IsTerminal(), $"job ended {status.State} before {count} checkpoints completed: {status.Failure}");
            Assert.True(DateTime.UtcNow < deadline, $"only {stats.Completed} checkpoints completed; latest failure: {stats.LatestFailed?.FailureReason}");
            await Task.Delay(50);
        }
    }

    private static StreamJobBuilder RocksDbWordCount(CheckpointingSettings settings)
    {
        var job = CheckpointTestJobs.WordCount(1_000_000, 2_000, 2, 3_000, settings);
        job.StateBackend = StateBackendKind.RocksDb;
        return job;
    }

    [Fact]
    public async Task Shared_files_are_kept_while_a_retained_checkpoint_references_them_and_deleted_after()
    {
        var directory = TestData.NewDirectory("incremental");
        var settings = new CheckpointingSettings
        {
            Interval = TimeSpan.FromMilliseconds(150),
            RetainedCheckpoints = 2,
            Storage = CheckpointStorageKind.FileSystem,
            Directory = directory,
            Incremental = true,
            Retention = CheckpointRetention.RetainOnCancellation,
        };
        var jobId = await fixture.Platform.SubmitAsync(RocksDbWordCount(settings));
        await WaitForCompletedCheckpoints(jobId, 8);
        await fixture.Platform.CancelAsync(jobId);
        await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        // Checkpoints shared files: some uploaded less than their full size.
        var stats = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
        var completed = stats.History.Where(c => c.Status == CheckpointStatus.Completed).ToList();
        Assert.Contains(completed, c => c.CheckpointedSize < c.StateSize);
        Assert.All(completed, c => Assert.True(c.CheckpointedSize > 0 && c.CheckpointedSize <= c.StateSize, $"checkpoint {c.Id}: {c.CheckpointedSize} of {c.StateSize}"));

        // Exactly the shared files the two retained checkpoints reference are left: none leaked, none missing.
        var storage = new FileSystemCheckpointStorage(directory);
        var retained = await storage.ListCheckpointsAsync(jobId);
        Assert.Equal(2, retained.Count);
        var referenced = new HashSet<string>();
        foreach (var id in retained)
        {
            var metadata = await storage.ReadMetadataAsync(jobId, id);
            Assert.All(metadata.Subtasks.SelectMany(s => s.Operators).Select(o => o.KeyedState).OfType<KeyedStateSnapshot>(), k => Assert.NotNull(k.Native));
            referenced.UnionWith(metadata.SharedPaths());
        }

        Assert.NotEmpty(referenced);
        Assert.All(referenced, path => Assert.True(File.Exists(Path.Combine(directory, jobId, path)), $"{path} is referenced but missing"));

        // A subtask still uploading for a checkpoint in progress when the job was cancelled stops, or has its late
        // acknowledgement's files deleted: wait for that, then nothing but the referenced files may remain.
        await Poll.UntilAsync(
            async () => (await storage.ListSharedStateAsync(jobId)).Order(StringComparer.Ordinal).SequenceEqual(referenced.Order(StringComparer.Ordinal))
                && !Directory.EnumerateFiles(directory, "*.tmp", SearchOption.AllDirectories).Any(),
            TimeSpan.FromSeconds(30),
            () => $"shared files {string.Join(", ", Directory.EnumerateFiles(Path.Combine(directory, jobId, "shared")).Select(Path.GetFileName))}; referenced {string.Join(", ", referenced)}");
    }

    [Fact]
    public async Task Cancelling_deletes_the_shared_files_with_the_checkpoints()
    {
        var directory = TestData.NewDirectory("incremental");
        var settings = new CheckpointingSettings
        {
            Interval = TimeSpan.FromMilliseconds(150),
            Storage = CheckpointStorageKind.FileSystem,
            Directory = directory,
            Incremental = true,
        };
        var jobId = await fixture.Platform.SubmitAsync(RocksDbWordCount(settings));
        await WaitForCompletedCheckpoints(jobId, 3);
        Assert.NotEmpty(Directory.EnumerateFiles(Path.Combine(directory, jobId, "shared")));

        await fixture.Platform.CancelAsync(jobId);
        Assert.Equal(JobState.Canceled, (await fixture.Platform.WaitForCompletionAsync(jobId, Timeout)).State);

        await Poll.UntilAsync(
            () => !Directory.EnumerateFiles(Path.Combine(directory, jobId), "*", SearchOption.AllDirectories).Any(),
            TimeSpan.FromSeconds(30),
            () => $"left behind: {string.Join(", ", Directory.EnumerateFiles(Path.Combine(directory, jobId), "*", SearchOption.AllDirectories))}");
    }
}
