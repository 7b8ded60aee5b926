using Platform.Client;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Checkpointing;

/// <summary>
/// The control state written by an earlier release (TestData/LegacyControlState, see its README: the job manager's, the
/// checkpoint coordinator's and the job registry's grain state, the PubSubStore subscriptions and the retained
/// checkpoint) still loads: a new cluster started on it resumes the job that was running, as after an upgrade.
/// </summary>
public sealed class LegacyControlStateTests
{
    // The job that wrote the fixture: CheckpointTestJobs.WordCount(4_000, 30, parallelism 2, 150 records/s per subtask).
    private const string JobId = "checkpointed-word-count-e2fc6cc41a42";
    private const long Records = 4_000;
    private const int Words = 30;
    private const int Parallelism = 2;

    [Fact]
    public async Task A_job_running_when_a_35f08b4_cluster_stopped_resumes_from_its_checkpoint_on_a_new_cluster_and_ends_with_the_counts_of_the_whole_input()
    {
        var root = TestData.CopyFixture("LegacyControlState");

        await using var cluster = await ClusterRestartTests.StartAsync(root);
        var platform = new PlatformClient(cluster.Client);
        var status = await platform.WaitForCompletionAsync(JobId, TimeSpan.FromMinutes(3));

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(1, status.RestoredFromCheckpoint);
        Assert.True(status.Restarts >= 1, $"the resumed job reports {status.Restarts} restarts");

        // What chk-1 holds: subtask i of the generator read the sequence numbers i, i + 2, ... below its offset.
        long[] offsets = [370, 381];
        var restored = Enumerable.Range(0, Parallelism)
            .SelectMany(i => Enumerable.Range(0, (int)Records).Where(s => s % Parallelism == i && s < offsets[i]))
            .GroupBy(s => WordGenerator.WordAt(s, Words))
            .ToDictionary(g => g.Key, g => (long)g.Count());
        var running = await platform.GetCollectedAsync<WordCount>(JobId, CheckpointTestJobs.CountsSink);

        // The keyed state was restored exactly: each word's first running count continues from its count in the checkpoint.
        var firstCounts = running.GroupBy(c => c.Word).ToDictionary(g => g.Key, g => g.Min(c => c.Count));
        Assert.Equal(
            firstCounts.Keys.Order().Select(w => KeyValuePair.Create(w, restored.GetValueOrDefault(w) + 1)),
            firstCounts.OrderBy(p => p.Key));
        // Collect sinks live in memory, so the new cluster saw only the records after the restore point; each word's
        // highest running count is its count in the whole input.
        Assert.Equal(CheckpointTestJobs.ExpectedCounts(Records, Words).OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));
    }
}
