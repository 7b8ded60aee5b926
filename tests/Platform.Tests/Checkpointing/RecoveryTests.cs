using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.TestingHost;
using Platform.Checkpointing;
using Platform.Client;
using Platform.Connectors;
using Platform.Graph;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Checkpointing;

[Collection(ClusterCollection.Name)]
public sealed class RecoveryTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Theory]
    [InlineData("truncated-metadata")]
    [InlineData("altered-metadata")]
    [InlineData("truncated-state-file")]
    public async Task A_damaged_checkpoint_is_reported_and_recovery_falls_back_to_the_previous_one(string damage)
    {
        const long records = 30_000;
        const int words = 30;
        var directory = TestData.NewDirectory("checkpoints");
        var settings = new CheckpointingSettings { Storage = CheckpointStorageKind.FileSystem, Directory = directory, RetainedCheckpoints = 3 };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(records, words, 2, 2_000, settings));

        var first = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
        var second = await fixture.Platform.TriggerCheckpointAsync(jobId, Timeout);
        Assert.Equal(CheckpointStatus.Completed, second.Status);
        var chk = Path.Combine(directory, jobId, $"chk-{second.Id}");
        var damaged = damage switch
        {
            "truncated-metadata" => Truncate(Path.Combine(chk, "_metadata")),
            "altered-metadata" => Alter(Path.Combine(chk, "_metadata")),
            _ => Truncate(Directory.GetFiles(chk, "*.state").First()),
        };

        FailureSwitch.Arm(jobId);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        var stats = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
        Assert.Equal(first.Id, stats.LatestRestoredId);
        var skipped = Assert.Single(stats.SkippedAsCorrupt);
        Assert.Contains(damaged, skipped);
        Assert.StartsWith($"checkpoint {second.Id}:", skipped);
        var running = await fixture.Platform.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink);
        Assert.Equal(CheckpointTestJobs.ExpectedCounts(records, words).OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));
    }

    private static string Truncate(string path)
    {
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        return path;
    }

    private static string Alter(string path)
    {
        var text = File.ReadAllText(path);
        var index = text.IndexOf("\"sourceOffset\":", StringComparison.Ordinal) + "\"sourceOffset\":".Length;
        File.WriteAllText(path, text[..index] + "1" + text[index..], new UTF8Encoding(false));
        return path;
    }

    [Fact]
    public async Task At_least_once_mode_loses_nothing()
    {
        const long records = 30_000;
        const int words = 30;
        var settings = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(100), Mode = CheckpointingMode.AtLeastOnce, Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("checkpoints") };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(records, words, 3, 3_000, settings));
        await Poll.UntilAsync(async () => (await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 2, Timeout, () => "two checkpoints complete");

        FailureSwitch.Arm(jobId);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(1, status.Restarts);
        var counts = WordCountJob.FinalCounts(await fixture.Platform.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink));
        foreach (var (word, expected) in CheckpointTestJobs.ExpectedCounts(records, words))
        {
            Assert.True(counts.TryGetValue(word, out var actual) && actual >= expected, $"'{word}' counted {actual}, fewer than its {expected} occurrences");
        }
    }

    [Fact]
    public async Task Checkpoints_complete_while_a_slow_operator_backpressures_the_job()
    {
        var job = new StreamJobBuilder("backpressured-checkpoints")
        {
            DefaultParallelism = 2,
            Checkpointing = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(200), Storage = CheckpointStorageKind.InMemory },
        };
        job.AddSource(new SequenceSource(), "fast unbounded source").SetParallelism(1)
            .Rebalance()
            .Map(new SlowSubtaskMap { SlowSubtask = 1, MillisecondsPerRecord = 1 }, "slow")
            .KeyBy(new ModuloKey { Modulo = 100 })
            .Process(new SumPerKey(), "sum")
            .SinkTo(new DiscardingSink<KeyValuePair<long, long>>(), "discard");
        var jobId = await fixture.Platform.SubmitAsync(job);

        await Poll.UntilAsync(async () => (await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 3, Timeout,
            () => "three checkpoints complete under backpressure");

        var stats = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
        // The barrier queues behind the backlog in front of the slow subtask, so each keyed subtask gets it from the fast
        // subtask first and holds that input back until the slow one delivers it: a real alignment. The source has no inputs.
        var latest = stats.LatestCompleted!;
        var sums = latest.Subtasks.Where(s => s.TaskName.StartsWith("sum", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, sums.Count);
        Assert.All(sums, s => Assert.True(s.AlignmentDuration > TimeSpan.Zero, $"sum/{s.SubtaskIndex} aligned in {s.AlignmentDuration}"));
        Assert.Equal(TimeSpan.Zero, Assert.Single(latest.Subtasks, s => s.TaskName.StartsWith("fast unbounded source", StringComparison.Ordinal)).AlignmentDuration);
        await fixture.Platform.CancelAsync(jobId);
    }

    [Fact]
    public async Task A_trigger_that_does_not_reach_the_sources_makes_the_checkpoint_expire_and_count_as_failed()
    {
        var settings = new CheckpointingSettings
        {
            Interval = TimeSpan.FromMilliseconds(100),
            Timeout = TimeSpan.FromSeconds(1),
            TolerableFailedCheckpoints = 1_000,
            Storage = CheckpointStorageKind.InMemory,
        };
        var jobId = await fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(10_000_000, 20, 2, 1_000, settings));
        await Poll.UntilAsync(async () => (await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 1, Timeout, () => "a checkpoint completes");

        // Stop the control streams' pulling agents: triggers are published but never delivered.
        var management = fixture.Cluster.Client.GetGrain<IManagementGrain>(0);
        await management.SendControlCommandToProvider<Orleans.Providers.Streams.Common.PersistentStreamProvider>(
            Platform.Hosting.PlatformStreams.ProviderName, (int)Orleans.Providers.Streams.Common.PersistentStreamProviderCommand.StopAgents);
        try
        {
            await Poll.UntilAsync(async () => (await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).History.Any(h => h.FailureReason?.Contains("expired") == true),
                Timeout, () => "a checkpoint expires");
            var stats = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
            Assert.True(stats.Failed >= 1);
            Assert.Contains("subtasks acknowledged", stats.LatestFailed!.FailureReason);
        }
        finally
        {
            await management.SendControlCommandToProvider<Orleans.Providers.Streams.Common.PersistentStreamProvider>(
                Platform.Hosting.PlatformStreams.ProviderName, (int)Orleans.Providers.Streams.Common.PersistentStreamProviderCommand.StartAgents);
        }

        // Once triggers flow again, checkpoints complete again.
        var completed = (await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).Completed;
        await Poll.UntilAsync(async () => (await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).Completed > completed, Timeout, () => "checkpoints complete again");
        await fixture.Platform.CancelAsync(jobId);
    }

    [Fact]
    public async Task Exceeding_the_tolerable_failed_checkpoints_fails_the_job_with_a_reason_and_leaves_no_files()
    {
        var directory = TestData.NewDirectory("checkpoints");
        var job = new StreamJobBuilder("checkpoints-time-out")
        {
            Checkpointing = new CheckpointingSettings
            {
                Interval = TimeSpan.FromMilliseconds(50),
                Timeout = TimeSpan.FromMilliseconds(1),
                TolerableFailedCheckpoints = 2,
                Storage = CheckpointStorageKind.FileSystem,
                Directory = directory,
            },
            RestartStrategy = RestartStrategy.NoRestart,
        };
        job.AddSource(new SequenceSource(), "numbers")
            .Rebalance()
            .Map(new SlowMap { MillisecondsPerRecord = 2 }, "slow")
            .KeyBy(new ModuloKey())
            .Process(new SumPerKey(), "sum")
            .SinkTo(new DiscardingSink<KeyValuePair<long, long>>(), "discard");
        var jobId = await fixture.Platform.SubmitAsync(job);

        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.Equal(JobState.Failed, status.State);
        Assert.Contains("Exceeded the tolerable number of failed checkpoints (2): 3 failed in a row", status.Failure!.Message);
        Assert.Contains("expired", status.Failure.Message);
        var stats = await fixture.Platform.GetCheckpointStatisticsAsync(jobId);
        Assert.True(stats.Failed >= 3);
        Assert.Equal(0, stats.Completed);
        var jobDirectory = Path.Combine(directory, jobId);
        Assert.True(!Directory.Exists(jobDirectory) || !Directory.EnumerateFileSystemEntries(jobDirectory).Any(), "files of aborted checkpoints are left");
    }
}

/// <summary>Stops a whole cluster and starts a new one on the same storage: the job resumes from its retained checkpoint.</summary>
public sealed class ClusterRestartTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_job_resumes_from_its_retained_checkpoint_when_a_new_cluster_starts_on_the_same_storage(bool coordinatorStateLost)
    {
        const long records = 40_000;
        const int words = 30;
        var root = TestData.NewDirectory("cluster-restart");
        var settings = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(150), Storage = CheckpointStorageKind.FileSystem };
        string jobId;
        long completedBefore;

        await using (var first = await StartAsync(root))
        {
            var platform = new PlatformClient(first.Client);
            jobId = await platform.SubmitAsync(CheckpointTestJobs.WordCount(records, words, 2, 1_500, settings));
            await Poll.UntilAsync(async () => (await platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 3, TimeSpan.FromMinutes(2), () => "three checkpoints complete");
            completedBefore = (await platform.GetCheckpointStatisticsAsync(jobId)).Completed;
            await first.StopAllSilosAsync();
        }

        var committedBefore = Directory.GetDirectories(Path.Combine(root, "checkpoints", jobId), "chk-*")
            .Where(d => File.Exists(Path.Combine(d, "_metadata")))
            .Select(d => long.Parse(Path.GetFileName(d)["chk-".Length..], System.Globalization.CultureInfo.InvariantCulture))
            .ToList();
        Assert.NotEmpty(committedBefore);
        if (coordinatorStateLost)
        {
            // As if the coordinator's state lived in a store without persistence: its next checkpoint id starts again at 1.
            var coordinatorState = Directory.EnumerateFiles(Path.Combine(root, "state"), "*.state", SearchOption.AllDirectories)
                .Where(f => f.Contains("coordinator", StringComparison.OrdinalIgnoreCase) && f.Contains(jobId, StringComparison.Ordinal))
                .ToList();
            Assert.Single(coordinatorState);
            File.Delete(coordinatorState[0]);
        }

        var restartedAt = DateTimeOffset.UtcNow;
        await using var second = await StartAsync(root);
        var resumed = new PlatformClient(second.Client);

        // The first checkpoints of the new cluster (seen before the bounded history moves past them) take new ids.
        var firstIds = new List<long>();
        await Poll.UntilAsync(
            async () =>
            {
                var early = await resumed.GetCheckpointStatisticsAsync(jobId);
                firstIds.AddRange(early.History.Where(h => h.Status == CheckpointStatus.Completed && h.TriggeredAt >= restartedAt).Select(h => h.Id));
                return firstIds.Count > 0 || (await resumed.GetStatusAsync(jobId)).State.IsTerminal();
            },
            TimeSpan.FromMinutes(2),
            () => "the resumed job completes a checkpoint");
        var status = await resumed.WaitForCompletionAsync(jobId, TimeSpan.FromMinutes(3));

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        var stats = await resumed.GetCheckpointStatisticsAsync(jobId);
        Assert.NotNull(stats.LatestRestoredId);
        Assert.True(stats.Completed >= completedBefore);
        // Records before the restore point were collected by the first cluster (collect sinks live in memory), so
        // check the words emitted after it: each word's highest running count is its true count.
        var expected = CheckpointTestJobs.ExpectedCounts(records, words);
        var after = WordCountJob.FinalCounts(await resumed.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink));
        Assert.Equal(expected.Count, after.Count);
        Assert.Equal(expected.OrderBy(p => p.Key), after.OrderBy(p => p.Key));

        // It restored a checkpoint of the first cluster, and never reused one of its ids for a new checkpoint.
        Assert.Contains(stats.LatestRestoredId!.Value, committedBefore);
        Assert.NotEmpty(firstIds);
        Assert.All(firstIds.Concat(stats.History.Where(h => h.Status == CheckpointStatus.Completed && h.TriggeredAt >= restartedAt).Select(h => h.Id)), id => Assert.True(id > committedBefore.Max(), $"checkpoint {id} reuses an id of the first cluster ({string.Join(", ", committedBefore)})"));
        Assert.DoesNotContain(stats.History, h => h.FailureReason?.Contains("already committed", StringComparison.Ordinal) == true);
    }

    /// <summary>Starts a two-silo cluster with a new cluster id on the shared directories under <paramref name="root"/>.</summary>
    internal static async Task<TestCluster> StartAsync(string root)
    {
        var builder = new TestClusterBuilder(2);
        builder.Options.ClusterId = $"restart-{Guid.NewGuid():N}";
        builder.Options.ServiceId = "platform-restart-tests";
        builder.UseSharedDirectories(root);
        builder.AddSiloBuilderConfigurator<PlatformTestSiloConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

}
