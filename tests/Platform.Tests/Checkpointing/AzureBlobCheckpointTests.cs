using Azure.Storage.Blobs;
using Orleans.Hosting;
using Orleans.TestingHost;
using Platform.Checkpointing;
using Platform.Client;
using Platform.Graph;
using Platform.Runtime;
using Platform.Samples;
using Platform.State;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Checkpointing;

/// <summary>
/// Jobs whose checkpoints go to Azure Blob Storage (a real Azurite, the silos' default storage set by configuration):
/// recovery from the latest retained blob checkpoint, savepoints, and an outage of the storage service mid-run.
/// </summary>
public sealed class AzureBlobCheckpointTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Checkpoints_fail_while_the_storage_is_down_the_job_keeps_running_and_recovers_exactly_once_from_a_completed_checkpoint_after_it_returns()
    {
        const long records = 100_000;
        const int words = 30;
        await using var azurite = await AzuriteProcess.StartAsync();
        var container = AzuriteFixture.NewContainerName();
        await using var cluster = await StartClusterAsync(azurite, container);
        var platform = new PlatformClient(cluster.Client);
        var settings = new CheckpointingSettings
        {
            Interval = TimeSpan.FromMilliseconds(200),
            Timeout = TimeSpan.FromSeconds(10),
            TolerableFailedCheckpoints = 10_000,
            RetainedCheckpoints = 2,
        };
        var jobId = await platform.SubmitAsync(CheckpointTestJobs.WordCount(records, words, 2, 1_000, settings));
        await Poll.UntilAsync(async () => (await platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 2, Timeout, () => "two checkpoints complete on blob storage");
        var before = await platform.GetCheckpointStatisticsAsync(jobId);
        Assert.Contains(await BlobNamesAsync(azurite, container), name => name.StartsWith($"{jobId}/chk-", StringComparison.Ordinal) && name.EndsWith("/_metadata", StringComparison.Ordinal));

        // The storage service dies mid-run (once what it acknowledged is on its disk, as in Azure Storage).
        await azurite.WaitUntilSavedAsync(Timeout);
        azurite.Kill();
        await Poll.UntilAsync(async () => (await platform.GetCheckpointStatisticsAsync(jobId)).Failed >= before.Failed + 3, Timeout, () => "checkpoints fail while the storage is down");
        var down = await platform.GetCheckpointStatisticsAsync(jobId);
        var collected = (await platform.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink)).Count;
        await Poll.UntilAsync(async () => (await platform.GetCheckpointStatisticsAsync(jobId)).Failed >= down.Failed + 3, Timeout, () => "more checkpoints fail while the storage is down");
        var stillDown = await platform.GetCheckpointStatisticsAsync(jobId);
        var status = await platform.GetStatusAsync(jobId);

        // Failures count toward the tolerable limit but processing goes on, and nothing completed without the storage.
        Assert.Equal(JobState.Running, status.State);
        Assert.Equal(0, status.Restarts);
        Assert.Equal(down.Completed, stillDown.Completed);
        Assert.True((await platform.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink)).Count > collected, "records stopped flowing while the storage was down");
        Assert.Contains("could not write its state", stillDown.LatestFailed!.FailureReason);
        Assert.True(stillDown.LatestFailed.Id > down.LatestCompleted!.Id);

        // The service comes back on the same port with the same data: the next checkpoint completes.
        await azurite.StartAgainAsync();
        var last = stillDown;
        await Poll.UntilAsync(
            async () => (last = await platform.GetCheckpointStatisticsAsync(jobId)).Completed > stillDown.Completed,
            Timeout,
            () => $"a checkpoint completes after the storage returns; latest: {string.Join("; ", last.History.Take(3).Select(h => $"{h.Id} {h.Status} {h.FailureReason}"))}");
        var recovered = (await platform.GetCheckpointStatisticsAsync(jobId)).LatestCompleted!;
        Assert.True(recovered.Id > stillDown.LatestFailed.Id);

        // A failover now restores from a completed checkpoint (written after the outage), and the counts are exact.
        FailureSwitch.Arm(jobId);
        var final = await platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(final.State == JobState.Finished, $"Job ended {final.State}: {final.Failure}");
        Assert.Equal(1, final.Restarts);
        var stats = await platform.GetCheckpointStatisticsAsync(jobId);
        Assert.NotNull(stats.LatestRestoredId);
        Assert.True(stats.LatestRestoredId >= recovered.Id, $"restored from checkpoint {stats.LatestRestoredId}, older than {recovered.Id} which completed after the outage");
        Assert.DoesNotContain(stats.History, h => h.Id == stats.LatestRestoredId && h.Status != CheckpointStatus.Completed);
        Assert.Empty(stats.SkippedAsCorrupt);
        var running = await platform.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink);
        Assert.Equal(CheckpointTestJobs.ExpectedCounts(records, words).OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));

        // A finished job's checkpoints are deleted, those half written during the outage included.
        Assert.DoesNotContain(await BlobNamesAsync(azurite, container), name => name.StartsWith($"{jobId}/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_RocksDb_job_with_incremental_blob_checkpoints_restores_after_a_failure_and_takes_a_savepoint_that_a_new_job_resumes_from()
    {
        const long records = 60_000;
        const int words = 40;
        await using var azurite = await AzuriteProcess.StartAsync();
        var container = AzuriteFixture.NewContainerName();
        await using var cluster = await StartClusterAsync(azurite, container);
        var platform = new PlatformClient(cluster.Client);
        var settings = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(200), Incremental = true, RetainedCheckpoints = 2 };
        var job = CheckpointTestJobs.WordCount(records, words, 2, 1_500, settings);
        job.StateBackend = StateBackendKind.RocksDb;
        var jobId = await platform.SubmitAsync(job);
        await Poll.UntilAsync(async () => (await platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 2, Timeout, () => "two checkpoints complete");

        // Incremental RocksDB checkpoints keep their SST files in the job's shared/ folder.
        Assert.Contains(await BlobNamesAsync(azurite, container), name => name.StartsWith($"{jobId}/shared/", StringComparison.Ordinal));

        // Savepoints go to the savepoint directory on the file system unless the silos or the request say otherwise (AzureBlobSavepointTests).
        var savepoint = await platform.TriggerSavepointAsync(jobId, timeout: Timeout);
        Assert.True(File.Exists(Path.Combine(savepoint.Path, "_metadata")), $"no savepoint metadata in {savepoint.Path}");

        FailureSwitch.Arm(jobId);
        var status = await platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(1, status.Restarts);
        Assert.NotNull((await platform.GetCheckpointStatisticsAsync(jobId)).LatestRestoredId);
        var expected = CheckpointTestJobs.ExpectedCounts(records, words).OrderBy(p => p.Key).ToList();
        Assert.Equal(expected, WordCountJob.FinalCounts(await platform.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink)).OrderBy(p => p.Key));

        var resumedJob = CheckpointTestJobs.WordCount(records, words, 2, 5_000, settings with { Incremental = false });
        resumedJob.RestoreFrom = new RestoreSettings { Path = savepoint.Path };
        var resumed = await platform.SubmitAsync(resumedJob);
        var resumedStatus = await platform.WaitForCompletionAsync(resumed, Timeout);

        Assert.True(resumedStatus.State == JobState.Finished, $"Resumed job ended {resumedStatus.State}: {resumedStatus.Failure}");
        Assert.Equal(savepoint.CheckpointId, resumedStatus.RestoredFromCheckpoint);
        Assert.Equal(expected, WordCountJob.FinalCounts(await platform.GetCollectedAsync<WordCount>(resumed, CheckpointTestJobs.CountsSink)).OrderBy(p => p.Key));
    }

    [Fact]
    public async Task A_job_whose_container_is_deleted_fails_over_saying_its_checkpoints_are_lost_and_the_container_is_not_created_again()
    {
        await using var azurite = await AzuriteProcess.StartAsync();
        var container = AzuriteFixture.NewContainerName();
        await using var cluster = await StartClusterAsync(azurite, container);
        var platform = new PlatformClient(cluster.Client);
        var settings = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(200), Timeout = TimeSpan.FromSeconds(10), TolerableFailedCheckpoints = 0 };
        var restart = RestartStrategy.FixedDelayRestart(1, TimeSpan.FromMilliseconds(100));
        var jobId = await platform.SubmitAsync(CheckpointTestJobs.WordCount(1_000_000, 30, 2, 1_000, settings, restart));
        await Poll.UntilAsync(async () => (await platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 2, Timeout, () => "two checkpoints complete on blob storage");
        var blobs = new BlobContainerClient(azurite.ConnectionString, container);

        await blobs.DeleteAsync();

        // The first failed checkpoint fails the job over; the attempt after it finds none of the job's completed
        // checkpoints, and fails rather than start again with empty state.
        var status = await platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.Equal(JobState.Failed, status.State);
        Assert.Equal(1, status.Restarts);
        var cause = Assert.Single(status.RestartCauses);
        Assert.Contains("Exceeded the tolerable number of failed checkpoints (0)", cause.Message);
        Assert.Contains($"Blob container '{container}'", cause.Message);
        Assert.Contains("was deleted while in use", cause.Message);
        Assert.Contains("are lost", cause.Message);
        Assert.Contains("the job has completed checkpoints, but none can be restored", status.Failure!.Message);
        Assert.Contains(container, status.Failure.Message);
        Assert.NotNull(status.Failure.NotRestartedBecause);

        Assert.False((await blobs.ExistsAsync()).Value);
    }

    [Fact]
    public async Task A_new_job_resumes_from_a_retained_blob_checkpoint_named_by_its_url()
    {
        const long records = 40_000;
        const int words = 30;
        await using var azurite = await AzuriteProcess.StartAsync();
        var container = AzuriteFixture.NewContainerName();
        await using var cluster = await StartClusterAsync(azurite, container);
        var platform = new PlatformClient(cluster.Client);
        var settings = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(200), Retention = CheckpointRetention.RetainOnCancellation };
        var jobId = await platform.SubmitAsync(CheckpointTestJobs.WordCount(records, words, 2, 1_500, settings));
        await Poll.UntilAsync(async () => (await platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 2, Timeout, () => "two checkpoints complete");
        await platform.CancelAsync(jobId);
        Assert.Equal(JobState.Canceled, (await platform.WaitForCompletionAsync(jobId, Timeout)).State);
        var retained = Assert.Single((await platform.GetCheckpointStatisticsAsync(jobId)).Retained);
        var containerUrl = new BlobContainerClient(azurite.ConnectionString, container).Uri.ToString().TrimEnd('/');

        var wrong = CheckpointTestJobs.WordCount(records, words, 2, 5_000, settings);
        wrong.RestoreFrom = new RestoreSettings { Path = $"{containerUrl}-other/{jobId}/chk-{retained}" };
        var refused = await Assert.ThrowsAsync<JobValidationException>(() => platform.SubmitAsync(wrong));
        Assert.Contains($"is not in the silos' blob container {containerUrl}", refused.Message);

        var job = CheckpointTestJobs.WordCount(records, words, 2, 5_000, settings);
        job.RestoreFrom = new RestoreSettings { Path = $"{containerUrl}/{jobId}/chk-{retained}" };
        var resumed = await platform.SubmitAsync(job);
        var status = await platform.WaitForCompletionAsync(resumed, Timeout);

        Assert.True(status.State == JobState.Finished, $"Resumed job ended {status.State}: {status.Failure}");
        Assert.Equal(retained, status.RestoredFromCheckpoint);
        var running = await platform.GetCollectedAsync<WordCount>(resumed, CheckpointTestJobs.CountsSink);
        Assert.InRange(running.Count, 1, records - 1);
        Assert.Equal(CheckpointTestJobs.ExpectedCounts(records, words).OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));
    }

    [Theory]
    [InlineData("truncated-metadata")]
    [InlineData("altered-state-blob")]
    public async Task A_damaged_blob_checkpoint_is_reported_by_name_and_recovery_falls_back_to_the_previous_one(string damage)
    {
        const long records = 30_000;
        const int words = 30;
        await using var azurite = await AzuriteProcess.StartAsync();
        var container = AzuriteFixture.NewContainerName();
        await using var cluster = await StartClusterAsync(azurite, container);
        var platform = new PlatformClient(cluster.Client);
        var settings = new CheckpointingSettings { RetainedCheckpoints = 3 };
        var jobId = await platform.SubmitAsync(CheckpointTestJobs.WordCount(records, words, 2, 2_000, settings));

        var first = await platform.TriggerCheckpointAsync(jobId, Timeout);
        var second = await platform.TriggerCheckpointAsync(jobId, Timeout);
        Assert.Equal(CheckpointStatus.Completed, second.Status);
        var blobs = new BlobContainerClient(azurite.ConnectionString, container);
        var folder = $"{jobId}/chk-{second.Id}/";
        var damaged = damage == "truncated-metadata"
            ? folder + "_metadata"
            : (await BlobNamesAsync(azurite, container)).First(n => n.StartsWith(folder, StringComparison.Ordinal) && n.EndsWith(".state", StringComparison.Ordinal));
        var blob = blobs.GetBlobClient(damaged);
        var bytes = (await blob.DownloadContentAsync()).Value.Content.ToArray();
        if (damage == "truncated-metadata")
        {
            bytes = bytes[..(bytes.Length / 2)];
        }
        else
        {
            bytes[^1] ^= 0xFF; // same size, other content: only the checksum can tell
        }

        await blob.UploadAsync(BinaryData.FromBytes(bytes), overwrite: true);

        FailureSwitch.Arm(jobId);
        var status = await platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        var stats = await platform.GetCheckpointStatisticsAsync(jobId);
        Assert.Equal(first.Id, stats.LatestRestoredId);
        var skipped = Assert.Single(stats.SkippedAsCorrupt);
        Assert.StartsWith($"checkpoint {second.Id}:", skipped);
        Assert.Contains($"{container}/{damaged}", skipped);
        var running = await platform.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink);
        Assert.Equal(CheckpointTestJobs.ExpectedCounts(records, words).OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));
    }

    private static async Task<List<string>> BlobNamesAsync(AzuriteProcess azurite, string container)
    {
        var names = new List<string>();
        await foreach (var blob in new BlobContainerClient(azurite.ConnectionString, container).GetBlobsAsync())
        {
            names.Add(blob.Name);
        }

        return names;
    }

    // Two silos on the Azurite container (AzuriteProcess.StartClusterAsync) with short SDK retries, so that an outage
    // fails checkpoints quickly.
    private static Task<TestCluster> StartClusterAsync(AzuriteProcess azurite, string container) => azurite.StartClusterAsync(container, new Dictionary<string, string>
    {
        ["Platform:AzureBlob:RetryMode"] = "Fixed",
        ["Platform:AzureBlob:MaxRetries"] = "1",
        ["Platform:AzureBlob:RetryDelay"] = "00:00:00.100",
        ["Platform:AzureBlob:NetworkTimeout"] = "00:00:03",
    });
}

/// <summary>Silos without an Azure Blob account refuse jobs that ask for blob checkpoints, at submission.</summary>
[Collection(ClusterCollection.Name)]
public sealed class AzureBlobUnconfiguredTests(ClusterFixture fixture)
{
    [Fact]
    public async Task A_job_asking_for_blob_checkpoints_is_refused_at_submission_when_the_silos_have_no_account()
    {
        var settings = new CheckpointingSettings { Interval = TimeSpan.FromSeconds(1), Storage = CheckpointStorageKind.AzureBlob };

        var error = await Assert.ThrowsAsync<JobValidationException>(() => fixture.Platform.SubmitAsync(CheckpointTestJobs.WordCount(100, 5, 1, 100, settings)));

        Assert.Contains("checkpoint storage is AzureBlob, but the silos have no Azure Blob account configured", error.Message);
        Assert.Contains("Platform:AzureBlob:ServiceUri", error.Message);
    }
}
