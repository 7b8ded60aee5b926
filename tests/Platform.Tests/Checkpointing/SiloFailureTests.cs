using Platform.Checkpointing;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Checkpointing;

/// <summary>
/// Kills silos of a three-silo cluster while exactly-once jobs run, starting replacements, and checks the final keyed
/// state against the ground truth. The short runs are part of every test run; the long randomized runs are
/// <c>Category=Long</c>.
/// </summary>
public sealed class SiloFailureTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(4);

    [Theory]
    [InlineData(11, 2)]
    public Task Word_count_state_is_exactly_once_when_silos_die_short(int seed, int kills) => WordCountSurvivesSiloKills(seed, kills, records: 24_000);

    [Theory]
    [InlineData(17, 2)]
    public Task Word_count_state_on_RocksDB_is_exactly_once_when_silos_die_short(int seed, int kills) =>
        WordCountSurvivesSiloKills(seed, kills, records: 24_000, Platform.State.StateBackendKind.RocksDb);

    [Theory]
    [InlineData(23, 2, Platform.State.StateBackendKind.Heap)]
    [InlineData(29, 2, Platform.State.StateBackendKind.RocksDb)]
    public async Task Event_time_windows_give_exactly_the_uninterrupted_result_when_silos_die_mid_window(int seed, int kills, Platform.State.StateBackendKind backend)
    {
        const long records = 24_000;
        await using var cluster = await KillableCluster.StartAsync();
        var random = new Random(seed);
        var output = "";
        var jobId = await SubmitWithJobManagerOnASecondaryAsync(cluster, () =>
        {
            // A directory per submission: jobs cancelled while placing the job manager write nothing into this one's.
            output = TestData.NewDirectory("windows");
            var job = new Platform.Graph.StreamJobBuilder("windows-under-silo-kills")
            {
                DefaultParallelism = 3,
                StateBackend = backend,
                AutoWatermarkInterval = TimeSpan.FromMilliseconds(20),
                Checkpointing = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(150), Storage = CheckpointStorageKind.FileSystem, RetainedCheckpoints = 2 },
                RestartStrategy = RestartStrategy.FixedDelayRestart(50, TimeSpan.FromMilliseconds(200)),
            };
            // Windows of 500 ms of event time (about 2 s of processing each): every kill lands inside windows.
            job.AddSource(new Platform.Connectors.SequenceSource { Count = records, RecordsPerSecondPerSubtask = 1_500 }, "sequence").Uid("sequence")
                .Map(new Platform.Tests.EventTime.ToKeyedValue(), "keyed-value").Uid("keyed-value")
                .AssignTimestampsAndWatermarks(Platform.Functions.WatermarkStrategy<Platform.Tests.EventTime.KeyedValue>.ForMonotonousTimestamps()
                    .WithTimestampAssigner(new Platform.Tests.EventTime.KeyedValueTimestamp())).Uid("timestamps")
                .KeyBy(new Platform.Tests.EventTime.KeyedValueKey())
                .Window(Platform.Windowing.TumblingWindows.OfEventTime(TimeSpan.FromMilliseconds(500)))
                .Aggregate(new Platform.Tests.EventTime.SumAndCount(), new Platform.Tests.EventTime.LabelWindow(), "sum-per-window").Uid("sum-per-window")
                .Map(new Platform.Tests.EventTime.WithoutWatermark(), "without-watermark").Uid("without-watermark")
                .SinkTo(new Platform.Connectors.FileSink<Platform.Tests.EventTime.WindowSum>(output), "write").Uid("write");
            return job;
        });

        await KillSilosWhileRunningAsync(cluster, jobId, random, kills);

        var status = await cluster.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.True(status.Restarts >= 1, "the job never restarted");

        // Through the exactly-once file sink: each window once, with exactly its uninterrupted sum and count (nothing
        // counted twice or lost in window state or timers across the kills).
        Assert.Equal(
            Platform.Tests.EventTime.WindowTests.Expected(records, 500, 500).Select(w => w.ToString()).Order(StringComparer.Ordinal),
            Platform.Connectors.FileSink.ReadCommittedLines(output).Order(StringComparer.Ordinal));
    }

    [Theory]
    [Trait("Category", "Long")]
    [InlineData(101, 6)]
    [InlineData(202, 6)]
    public Task Word_count_state_is_exactly_once_when_silos_die_long(int seed, int kills) => WordCountSurvivesSiloKills(seed, kills, records: 120_000);

    [Theory]
    [InlineData(31, 2)]
    public Task Two_phase_commit_sink_output_is_exactly_once_when_silos_die_short(int seed, int kills) => SinkOutputSurvivesSiloKills(seed, kills, records: 18_000);

    [Theory]
    [Trait("Category", "Long")]
    [InlineData(131, 6)]
    public Task Two_phase_commit_sink_output_is_exactly_once_when_silos_die_long(int seed, int kills) => SinkOutputSurvivesSiloKills(seed, kills, records: 90_000);

    [Theory]
    [InlineData(23, 2)]
    public Task Two_input_keyed_state_is_exactly_once_when_silos_die_short(int seed, int kills) => EnrichmentSurvivesSiloKills(seed, kills, events: 12_000);

    [Theory]
    [Trait("Category", "Long")]
    [InlineData(303, 5)]
    public Task Two_input_keyed_state_is_exactly_once_when_silos_die_long(int seed, int kills) => EnrichmentSurvivesSiloKills(seed, kills, events: 60_000);

    [Fact]
    public async Task A_draining_stop_whose_coordinator_is_lost_fails_with_its_reason_and_the_job_resumes_from_its_latest_checkpoint()
    {
        const long records = 24_000;
        const int words = 60;
        // A history long enough to hold every checkpoint of the run (Platform:CheckpointHistorySize; default 20).
        await using var cluster = await KillableCluster.StartAsync(checkpointHistorySize: 1_000);
        var settings = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(150), Storage = CheckpointStorageKind.FileSystem, RetainedCheckpoints = 2 };
        // Slow enough that the drain (reading the rest of the bounded input) outlasts the kill by many seconds.
        var jobId = await SubmitWithJobManagerOnASecondaryAsync(
            cluster, () => CheckpointTestJobs.WordCount(records, words, parallelism: 3, ratePerSubtask: 500, settings, RestartStrategy.FixedDelayRestart(10, TimeSpan.FromMilliseconds(200))));
        await Poll.UntilAsync(
            async () => (await cluster.Platform.GetCheckpointStatisticsAsync(jobId)).Completed > 0, Timeout, () => "a checkpoint completes before the stop");

        var stop = cluster.Platform.StopWithSavepointAsync(jobId, new SavepointRequest { Drain = true }, Timeout);
        CheckpointStats? draining = null;
        await Poll.UntilAsync(
            async () =>
            {
                Assert.False(stop.IsCompleted, "the draining stop ended before the coordinator's silo was killed");
                draining = (await cluster.Platform.GetCheckpointStatisticsAsync(jobId)).History
                    .FirstOrDefault(h => h is { Status: CheckpointStatus.InProgress, SavepointPath: not null });
                return draining is not null;
            },
            Timeout,
            () => "the stop with savepoint is in progress");

        // The job manager and the coordinator (placed beside it) are on the killed silo; the sources keep draining elsewhere.
        var beforeLoss = await cluster.Platform.GetCheckpointStatisticsAsync(jobId);
        var jobManagerSilo = (await cluster.Platform.GetStatusAsync(jobId)).JobManagerSilo;
        Assert.Equal(jobManagerSilo, await cluster.KillSecondaryAndReplaceAsync(new Random(5), jobManagerSilo));

        // The client learns why (the failed outcome recorded for the savepoint), not that it is "no longer known".
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => stop);
        Assert.Contains($"the checkpoint coordinator was lost while stop with savepoint {draining!.Id} was in progress", error.Message);
        Assert.Contains("the job restarts from its latest checkpoint", error.Message);
        Assert.False(Directory.Exists(draining.SavepointPath), $"the partial savepoint '{draining.SavepointPath}' was left behind");

        // Restarted from a retained checkpoint taken before the stop, it ends with its state exactly-once.
        var status = await cluster.Platform.WaitForCompletionAsync(jobId, Timeout);

        // The checkpoint history outlived the coordinator's silo (Flink's is lost with its JobManager): every checkpoint
        // completed before the loss is still there, with its statistics and every subtask's part.
        var afterLoss = await cluster.Platform.GetCheckpointStatisticsAsync(jobId);
        var completedBefore = beforeLoss.History.Where(h => h.Status == CheckpointStatus.Completed).ToList();
        Assert.NotEmpty(completedBefore);
        Assert.True(afterLoss.Completed > beforeLoss.Completed, $"{afterLoss.Completed} completed after the loss, {beforeLoss.Completed} before");
        foreach (var before in completedBefore)
        {
            var after = Assert.Single(afterLoss.History, h => h.Id == before.Id);
            Assert.Equal((before.Status, before.TriggeredAt, before.EndToEndDuration, before.StateSize, before.CheckpointedSize), (after.Status, after.TriggeredAt, after.EndToEndDuration, after.StateSize, after.CheckpointedSize));
            Assert.Equal(
                before.Subtasks.Select(t => (t.TaskName, t.TaskIndex, t.SubtaskIndex, t.SyncDuration, t.AsyncDuration, t.AlignmentDuration, t.StateSize)).Order(),
                after.Subtasks.Select(t => (t.TaskName, t.TaskIndex, t.SubtaskIndex, t.SyncDuration, t.AsyncDuration, t.AlignmentDuration, t.StateSize)).Order());
        }

        var lostStop = Assert.Single(afterLoss.History, h => h.Id == draining.Id);
        Assert.Equal(CheckpointStatus.Failed, lostStop.Status);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.True(status.Restarts >= 1, "the job never restarted");
        Assert.NotNull(status.RestoredFromCheckpoint);
        Assert.True(status.RestoredFromCheckpoint < draining.Id, $"restored from {status.RestoredFromCheckpoint}, not a checkpoint before stop {draining.Id}");
        var running = await cluster.Platform.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink);
        Assert.Equal(CheckpointTestJobs.ExpectedCounts(records, words).OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));
    }

    private static async Task WordCountSurvivesSiloKills(int seed, int kills, long records, Platform.State.StateBackendKind backend = Platform.State.StateBackendKind.Heap)
    {
        const int words = 60;
        await using var cluster = await KillableCluster.StartAsync();
        var random = new Random(seed);
        var settings = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(150), Storage = CheckpointStorageKind.FileSystem, RetainedCheckpoints = 2 };
        var job = CheckpointTestJobs.WordCount(records, words, parallelism: 3, ratePerSubtask: 1_500, settings, RestartStrategy.FixedDelayRestart(50, TimeSpan.FromMilliseconds(200)));
        job.StateBackend = backend;
        var jobId = await SubmitWithJobManagerOnASecondaryAsync(cluster, () => job);

        var jobManagerSilo = await KillSilosWhileRunningAsync(cluster, jobId, random, kills);

        var status = await cluster.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.True(status.Restarts >= 1, "the job never restarted");
        Assert.NotEqual(jobManagerSilo, status.JobManagerSilo); // the silo hosting the job manager was killed
        var running = await cluster.Platform.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink);
        Assert.Equal(CheckpointTestJobs.ExpectedCounts(records, words).OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));
    }

    private static async Task SinkOutputSurvivesSiloKills(int seed, int kills, long records)
    {
        await using var cluster = await KillableCluster.StartAsync();
        var random = new Random(seed);
        var output = TestData.NewDirectory("ledger");
        Platform.Graph.StreamJobBuilder Build()
        {
            var job = new Platform.Graph.StreamJobBuilder("two-phase-commit-under-failures")
            {
                DefaultParallelism = 3,
                Checkpointing = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(150), Storage = CheckpointStorageKind.FileSystem, RetainedCheckpoints = 2 },
                RestartStrategy = RestartStrategy.FixedDelayRestart(50, TimeSpan.FromMilliseconds(200)),
            };
            job.AddSource(new Platform.Connectors.SequenceSource { Count = records, RecordsPerSecondPerSubtask = 1_500 }, "numbers").Uid("numbers")
                .Rebalance()
                .SinkTo(new LedgerSink { Directory = output }, "ledger").Uid("ledger");
            return job;
        }

        var jobId = await SubmitWithJobManagerOnASecondaryAsync(cluster, Build);
        var jobManagerSilo = await KillSilosWhileRunningAsync(cluster, jobId, random, kills);

        var status = await cluster.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.True(status.Restarts >= 1, "the job never restarted");
        Assert.NotEqual(jobManagerSilo, status.JobManagerSilo);

        // What a reader of the output sees: every number exactly once (jobs cancelled while placing the job manager
        // wrote under other job ids, so only this job's committed files count).
        var committed = LedgerSink.ReadCommitted(output, jobId);
        var duplicates = committed.GroupBy(n => n).Count(g => g.Count() > 1);
        var missing = records - committed.Distinct().Count();
        Assert.True(duplicates == 0 && missing == 0, $"{duplicates} numbers committed more than once, {missing} never, over {kills} kills");
        Assert.DoesNotContain(LedgerSink.Staged(output), f => Path.GetFileName(f).StartsWith(jobId, StringComparison.Ordinal));
    }

    private static async Task EnrichmentSurvivesSiloKills(int seed, int kills, long events)
    {
        const int users = 40;
        await using var cluster = await KillableCluster.StartAsync();
        var random = new Random(seed);
        var profiles = Enumerable.Range(0, users).Select(u => new Profile(u, $"c{u % 5}", 1)).ToList();
        var job = EnrichmentJob.Build(events, users, profiles, parallelism: 3);
        job.Checkpointing = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(150), Storage = CheckpointStorageKind.FileSystem };
        job.RestartStrategy = RestartStrategy.FixedDelayRestart(50, TimeSpan.FromMilliseconds(200));
        var jobId = await SubmitWithJobManagerOnASecondaryAsync(cluster, () => SlowClicks(job, events, users));

        var jobManagerSilo = await KillSilosWhileRunningAsync(cluster, jobId, random, kills);

        var status = await cluster.Platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.NotEqual(jobManagerSilo, status.JobManagerSilo);
        var enriched = await cluster.Platform.GetCollectedAsync<EnrichedEvent>(jobId, EnrichmentJob.CollectSinkUid);
        // The reducing state's final total per user is exact. (The collect sink keeps its records in one grain's
        // memory, so what it held is lost when its silo is killed: only the state is checked, not the sink's history.)
        Assert.Equal(users, enriched.Select(e => e.UserId).Distinct().Count());
        foreach (var user in enriched.GroupBy(e => e.UserId))
        {
            var expected = Enumerable.Range(0, (int)events).Where(s => s % users == user.Key).Sum(s => (long)(s % 7) + 1);
            Assert.Equal(expected, user.Max(e => e.TotalAmount));
        }
    }

    private static Platform.Graph.StreamJobBuilder SlowClicks(Platform.Graph.StreamJobBuilder job, long events, int users)
    {
        // Rebuild with a rate-limited click source so the job runs long enough to be interrupted.
        var slow = new Platform.Graph.StreamJobBuilder("enrichment-under-failures")
        {
            DefaultParallelism = job.DefaultParallelism,
            Checkpointing = job.Checkpointing,
            RestartStrategy = job.RestartStrategy,
        };
        var clicks = slow.AddSource(new ClickEventGenerator { Count = events, Users = users, RecordsPerSecondPerSubtask = 300 }, "clicks").Uid("clicks")
            .KeyBy(new EventKey());
        var profiles = slow.AddSource(new Platform.Connectors.CollectionSource<Profile>(Enumerable.Range(0, users).Select(u => new Profile(u, $"c{u % 5}", 1))), "profiles").Uid("profiles").SetParallelism(1)
            .KeyBy(new ProfileKey());
        clicks.Connect(profiles)
            .Process(new EnrichWithProfile(), "enrich").Uid("enrich")
            .SinkTo(new Platform.Connectors.CollectSink<EnrichedEvent>(), "collect").Uid(EnrichmentJob.CollectSinkUid);
        return slow;
    }

    /// <summary>
    /// Submits the job, cancelling and submitting it again (under a new id) until its job manager landed on a
    /// secondary silo, so that the test can kill the silo hosting the job manager and its coordinator (which is
    /// placed beside it). The primary silo holds the test cluster's membership table and is never killed.
    /// </summary>
    private static async Task<string> SubmitWithJobManagerOnASecondaryAsync(KillableCluster cluster, Func<Platform.Graph.StreamJobBuilder> build)
    {
        var secondaries = cluster.Cluster.SecondarySilos.Select(s => s.SiloAddress.ToString()).ToHashSet();
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var jobId = await cluster.Platform.SubmitAsync(build());
            if (secondaries.Contains((await cluster.Platform.GetStatusAsync(jobId)).JobManagerSilo!))
            {
                return jobId;
            }

            await cluster.Platform.CancelAsync(jobId);
        }

        throw new InvalidOperationException("No job manager was placed on a secondary silo in 20 submissions.");
    }

    /// <summary>Kills silos at random moments, each after a checkpoint completed since the last kill; one kill targets the job manager's silo.</summary>
    /// <returns>The silo that hosted the job manager when it was killed.</returns>
    private static async Task<string> KillSilosWhileRunningAsync(KillableCluster cluster, string jobId, Random random, int kills)
    {
        string? jobManagerKilled = null;
        for (var kill = 0; kill < kills; kill++)
        {
            var before = (await cluster.Platform.GetCheckpointStatisticsAsync(jobId)).Completed;
            await Poll.UntilAsync(async () =>
            {
                var status = await cluster.Platform.GetStatusAsync(jobId);
                Assert.False(status.State.IsTerminal(), $"job ended {status.State} early: {status.Failure}");
                return status.State == JobState.Running && (await cluster.Platform.GetCheckpointStatisticsAsync(jobId)).Completed > before;
            }, Timeout, () => "a checkpoint completes while the job runs");

            // A random moment within the next checkpoint interval or so.
            await Task.Delay(random.Next(0, 300));
            // Kill a silo that runs subtasks, and once the one hosting the job manager and the coordinator.
            var status = await cluster.Platform.GetStatusAsync(jobId);
            var secondaries = cluster.Cluster.SecondarySilos.Select(s => s.SiloAddress.ToString()).ToHashSet();
            var working = status.Tasks.Select(t => t.Silo).OfType<string>().Where(secondaries.Contains).Distinct().ToList();
            var killJobManager = jobManagerKilled is null && status.JobManagerSilo is { } jm && secondaries.Contains(jm) && (kill == kills - 1 || random.Next(2) == 0);
            var preferred = killJobManager ? status.JobManagerSilo : working.Count > 0 ? working[random.Next(working.Count)] : null;
            var killed = await cluster.KillSecondaryAndReplaceAsync(random, preferred);
            if (killed == status.JobManagerSilo)
            {
                jobManagerKilled = killed;
            }
        }

        return jobManagerKilled ?? throw new InvalidOperationException("The job manager was on the primary silo at every kill; the test cannot kill it.");
    }
}
