using Platform.Checkpointing;
using Platform.Runtime;
using Platform.Samples;
using Platform.State;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Checkpointing;

/// <summary>
/// Checkpoints written by an earlier release (TestData/Legacy, see its README) still restore: persisted types keep their
/// serialization ids and the metadata and state file formats stay readable.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class LegacyCheckpointTests(ClusterFixture fixture)
{
    // The job that wrote the fixtures: CheckpointTestJobs.WordCount(4_000, 30, parallelism 2, ...).
    private const long Records = 4_000;
    private const int Words = 30;
    private const int Parallelism = 2;
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Theory]
    [InlineData("heap", "checkpointed-word-count-d86edd3d0a50", StateBackendKind.Heap, 1114, 1085)]
    [InlineData("rocksdb-full", "checkpointed-word-count-7d99bde764ae", StateBackendKind.RocksDb, 1038, 1039)]
    public async Task A_retained_checkpoint_written_by_35f08b4_restores_and_the_job_ends_with_the_counts_of_the_whole_input(
        string fixtureName, string writtenBy, StateBackendKind backend, long offset0, long offset1)
    {
        var root = TestData.CopyFixture(Path.Combine("Legacy", fixtureName));
        var checkpoint = Path.Combine(root, writtenBy, "chk-1");
        var settings = new CheckpointingSettings { Storage = CheckpointStorageKind.FileSystem, Directory = root };
        var job = CheckpointTestJobs.WordCount(Records, Words, Parallelism, 5_000, settings, RestartStrategy.NoRestart);
        job.StateBackend = backend;
        job.RestoreFrom = new RestoreSettings { Path = checkpoint };

        var jobId = await fixture.Platform.SubmitAsync(job);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job restored from {checkpoint} ended {status.State}: {status.Failure}");
        Assert.Equal(0, status.Restarts);
        Assert.Equal(1, status.RestoredFromCheckpoint);

        // What the checkpoint holds: subtask i of the generator read the sequence numbers i, i + 2, ... below its offset.
        long[] offsets = [offset0, offset1];
        var restored = Enumerable.Range(0, Parallelism)
            .SelectMany(i => Enumerable.Range(0, (int)Records).Where(s => s % Parallelism == i && s < offsets[i]))
            .GroupBy(s => WordGenerator.WordAt(s, Words))
            .ToDictionary(g => g.Key, g => (long)g.Count());
        var running = await fixture.Platform.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink);

        // The sources resumed at the checkpoint's offsets: each record after them is counted once, none before them again.
        Assert.Equal(Records - restored.Values.Sum(), running.Count);
        // The keyed state was restored exactly: each word's first running count continues from its count in the checkpoint.
        var firstCounts = running.GroupBy(c => c.Word).ToDictionary(g => g.Key, g => g.Min(c => c.Count));
        Assert.Equal(
            firstCounts.Keys.Order().Select(w => KeyValuePair.Create(w, restored.GetValueOrDefault(w) + 1)),
            firstCounts.OrderBy(p => p.Key));
        Assert.Equal(CheckpointTestJobs.ExpectedCounts(Records, Words).OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));
    }
}
