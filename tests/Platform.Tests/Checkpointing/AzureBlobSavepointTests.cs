using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Orleans.Hosting;
using Orleans.TestingHost;
using Platform.Checkpointing;
using Platform.Client;
using Platform.Connectors;
using Platform.Graph;
using Platform.Runtime;
using Platform.Samples;
using Platform.State;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Checkpointing;

/// <summary>
/// Savepoints in Azure Blob storage (a real Azurite; a container of its own per test): taken by default or to a target
/// URL, resumed at another parallelism and on another backend, relocated to another prefix and container, stopped
/// with, disposed, and refused when damaged or outside the silos' container.
/// </summary>
public sealed class AzureBlobSavepointTests(AzuriteFixture fixture) : IClassFixture<AzuriteFixture>
{
    private const long Records = 40_000;
    private const int Words = 30;
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task A_default_blob_savepoint_resumes_on_another_backend_and_parallelism_and_copies_under_another_prefix_and_container_resume_too()
    {
        var container = AzuriteFixture.NewContainerName();
        var otherContainer = AzuriteFixture.NewContainerName();
        await using var cluster = await StartClusterAsync(container, savepointStorage: "AzureBlob", restoreContainers: otherContainer);
        var platform = new PlatformClient(cluster.Client);
        var blobs = Container(container);

        var jobId = await RunUntilCheckpointedAsync(platform, WordCount(2));
        var savepoint = await platform.CancelWithSavepointAsync(jobId, timeout: Timeout);
        Assert.Equal(JobState.Canceled, (await platform.WaitForCompletionAsync(jobId, Timeout)).State);

        // The silos' default: a folder of its own under {container URL}/savepoints, committed by its _metadata.
        Assert.StartsWith($"{blobs.Uri.ToString().TrimEnd('/')}/savepoints/savepoint-", savepoint.Path);
        var folder = savepoint.Path[(blobs.Uri.ToString().TrimEnd('/').Length + 1)..];
        var names = await BlobNamesAsync(blobs, folder + "/");
        Assert.Contains($"{folder}/_metadata", names);
        Assert.Contains(names, n => n.EndsWith(".state", StringComparison.Ordinal));

        // Self-contained: copies of every blob under another prefix and in another container of the account restore too.
        var name = folder[(folder.LastIndexOf('/') + 1)..];
        var moved = await CopyAsync(blobs, folder, blobs, $"moved/elsewhere/{name}");
        var other = Container(otherContainer);
        await other.CreateIfNotExistsAsync();
        var copied = await CopyAsync(blobs, folder, other, name);

        var resumed = await Task.WhenAll(
            platform.SubmitAsync(WordCount(3, savepoint.Path, StateBackendKind.RocksDb)),
            platform.SubmitAsync(WordCount(1, moved)),
            platform.SubmitAsync(WordCount(4, copied)));
        foreach (var id in resumed)
        {
            await AssertResumesWithExactCountsAsync(platform, id, savepoint);
        }
    }

    [Fact]
    public async Task Stop_with_a_native_savepoint_to_a_target_url_is_idempotent_resumes_exactly_and_dispose_removes_every_blob()
    {
        var container = AzuriteFixture.NewContainerName();
        await using var cluster = await StartClusterAsync(container, savepointStorage: null);
        var platform = new PlatformClient(cluster.Client);
        var blobs = Container(container);
        var target = $"{blobs.Uri.ToString().TrimEnd('/')}/savepoints/team-a/";

        var first = await RunUntilCheckpointedAsync(platform, WordCount(2, backend: StateBackendKind.RocksDb));
        var request = new SavepointRequest { TargetDirectory = target, Format = SavepointFormat.Native, RequestId = $"stop-{Guid.NewGuid():N}" };
        var savepoint = await platform.StopWithSavepointAsync(first, request, Timeout);
        var again = await platform.TriggerSavepointAsync(first, request with { Stop = true }, Timeout);
        Assert.Equal(savepoint.Path, again.Path);
        Assert.Equal(savepoint.CheckpointId, again.CheckpointId);

        // Per request, a blob target on silos whose default savepoints are on the file system; native RocksDB files,
        // SSTs included, all inside the savepoint's own folder.
        Assert.StartsWith(target + "savepoint-", savepoint.Path);
        var folder = savepoint.Path[(blobs.Uri.ToString().TrimEnd('/').Length + 1)..];
        var names = await BlobNamesAsync(blobs, folder + "/");
        Assert.Contains($"{folder}/_metadata", names);
        Assert.Contains(names, n => n.EndsWith(".sst", StringComparison.Ordinal));

        // Stopped at the savepoint, resumed from it: the two runs' output is that of one uninterrupted run.
        var second = await platform.SubmitAsync(WordCount(2, savepoint.Path, StateBackendKind.RocksDb));
        var status = await platform.WaitForCompletionAsync(second, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(savepoint.CheckpointId, status.RestoredFromCheckpoint);
        var before = await platform.GetCollectedAsync<WordCount>(first, CheckpointTestJobs.CountsSink);
        var after = await platform.GetCollectedAsync<WordCount>(second, CheckpointTestJobs.CountsSink);
        Assert.NotEmpty(before);
        Assert.NotEmpty(after);
        var uninterrupted = CheckpointTestJobs.ExpectedCounts(Records, Words)
            .SelectMany(p => Enumerable.Range(1, (int)p.Value).Select(n => $"{p.Key}:{n}"))
            .Order(StringComparer.Ordinal);
        Assert.Equal(uninterrupted, before.Concat(after).Select(c => $"{c.Word}:{c.Count}").Order(StringComparer.Ordinal));

        await platform.DisposeSavepointAsync(savepoint.Path);
        Assert.Empty(await BlobNamesAsync(blobs, folder + "/"));
        var gone = await Assert.ThrowsAsync<JobValidationException>(() => platform.SubmitAsync(WordCount(2, savepoint.Path, StateBackendKind.RocksDb)));
        Assert.Contains("holds no savepoint", gone.Message);
        var twice = await Assert.ThrowsAsync<ArgumentException>(() => platform.DisposeSavepointAsync(savepoint.Path));
        Assert.Contains("is not a savepoint", twice.Message);
    }

    [Fact]
    public async Task Blob_targets_outside_the_container_and_damaged_blob_savepoints_are_refused_with_errors_naming_them()
    {
        var container = AzuriteFixture.NewContainerName();
        await using var cluster = await StartClusterAsync(container, savepointStorage: "AzureBlob");
        var platform = new PlatformClient(cluster.Client);
        var blobs = Container(container);
        var containerUrl = blobs.Uri.ToString().TrimEnd('/');
        var jobId = await RunUntilCheckpointedAsync(platform, WordCount(2));

        // Targets in another container, or outside the savepoint prefix, are refused before anything is written.
        foreach (var outside in new[] { $"{containerUrl}-other/savepoints", $"{containerUrl}/elsewhere", $"{containerUrl}/savepoints/../{jobId}" })
        {
            var refused = await Assert.ThrowsAsync<ArgumentException>(() => platform.TriggerSavepointAsync(jobId, new SavepointRequest { TargetDirectory = outside }, Timeout));
            Assert.Contains($"outside the silos' blob savepoint root '{containerUrl}/savepoints'", refused.Message);
        }

        var savepoint = await platform.TriggerSavepointAsync(jobId, timeout: Timeout);
        await platform.CancelAsync(jobId);
        var folder = savepoint.Path[(containerUrl.Length + 1)..];

        async Task<string> Refused(StreamJobBuilder job) =>
            (await Assert.ThrowsAsync<JobValidationException>(() => platform.SubmitAsync(job))).Message;

        // A copy whose _metadata was edited: refused at submission, naming the blob.
        var damaged = await CopyAsync(blobs, folder, blobs, $"savepoints/damaged-{Guid.NewGuid():N}");
        var damagedMetadata = blobs.GetBlobClient($"{damaged[(containerUrl.Length + 1)..]}/_metadata");
        var text = (await damagedMetadata.DownloadContentAsync()).Value.Content.ToString();
        Assert.Contains("\"maxParallelism\":128", text);
        await damagedMetadata.UploadAsync(BinaryData.FromString(text.Replace("\"maxParallelism\":128", "\"maxParallelism\":129")), overwrite: true);
        var corrupt = await Refused(WordCount(2, damaged));
        Assert.Contains("cannot be restored", corrupt);
        Assert.Contains($"{container}/{damaged[(containerUrl.Length + 1)..]}/_metadata", corrupt);
        Assert.Contains("checksum", corrupt);

        // Missing, in a container the silos may not read, another max parallelism, state of operators the job lacks.
        Assert.Contains("holds no savepoint", await Refused(WordCount(2, $"{containerUrl}/savepoints/no-such-savepoint")));
        Assert.Contains($"is not in the silos' blob container {containerUrl}", await Refused(WordCount(2, $"{containerUrl}-other/{folder}")));
        Assert.Contains("MaxParallelism = 128", await Refused(WordCount(2, savepoint.Path, maxParallelism: 256)));
        Assert.Contains("uids: count", await Refused(WordCount(2, savepoint.Path, countUid: "count-v2")));

        // A state blob altered at the same size passes submission (only _metadata is read then) and fails the job at
        // restore, naming the blob, without restarting from it.
        var altered = await CopyAsync(blobs, folder, blobs, $"savepoints/altered-{Guid.NewGuid():N}");
        var stateBlob = blobs.GetBlobClient((await BlobNamesAsync(blobs, altered[(containerUrl.Length + 1)..] + "/")).First(n => n.EndsWith(".state", StringComparison.Ordinal)));
        var bytes = (await stateBlob.DownloadContentAsync()).Value.Content.ToArray();
        bytes[^1] ^= 0xFF;
        await stateBlob.UploadAsync(BinaryData.FromBytes(bytes), overwrite: true);
        var failed = await platform.WaitForCompletionAsync(await platform.SubmitAsync(WordCount(2, altered)), Timeout);
        Assert.Equal(JobState.Failed, failed.State);
        Assert.Contains($"{container}/{stateBlob.Name}", failed.Failure!.Message);
        Assert.Contains("checksum", failed.Failure.Message);
    }

    /// <summary>
    /// Generated words (source parallelism fixed at 2: a source resumes each subtask's read position) → running count per
    /// word at <paramref name="countParallelism"/> → collect; checkpoints in the silos' blob container.
    /// </summary>
    private static StreamJobBuilder WordCount(
        int countParallelism,
        string? from = null,
        StateBackendKind backend = StateBackendKind.Heap,
        int maxParallelism = 128,
        string countUid = "count")
    {
        var job = new StreamJobBuilder("blob-savepointed-word-count")
        {
            DefaultParallelism = countParallelism,
            MaxParallelism = maxParallelism,
            StateBackend = backend,
            RestoreFrom = from is null ? null : new RestoreSettings { Path = from },
            Checkpointing = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(200) },
            RestartStrategy = RestartStrategy.NoRestart,
        };
        job.AddSource(new WordGenerator { Count = Records, Words = Words, RecordsPerSecondPerSubtask = 4_000 }, "words").Uid("words").SetParallelism(2)
            .KeyBy(new WordKey())
            .Process(new CountWords(), "count").Uid(countUid)
            .SinkTo(new CollectSink<WordCount>(), "collect").Uid(CheckpointTestJobs.CountsSink);
        return job;
    }

    private static async Task<string> RunUntilCheckpointedAsync(PlatformClient platform, StreamJobBuilder job)
    {
        var jobId = await platform.SubmitAsync(job);
        await Poll.UntilAsync(async () => (await platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 1, Timeout, () => "a checkpoint completes");
        var status = await platform.GetStatusAsync(jobId);
        Assert.True(status.State == JobState.Running, $"the job is {status.State} after its first checkpoint: {status.Failure}");
        return jobId;
    }

    private static async Task AssertResumesWithExactCountsAsync(PlatformClient platform, string jobId, SavepointInfo from)
    {
        var status = await platform.WaitForCompletionAsync(jobId, Timeout);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(from.CheckpointId, status.RestoredFromCheckpoint);

        // It resumed where the savepoint was (fewer running counts than records), and each word's final count is exact.
        var running = await platform.GetCollectedAsync<WordCount>(jobId, CheckpointTestJobs.CountsSink);
        Assert.InRange(running.Count, 1, Records - 1);
        Assert.Equal(CheckpointTestJobs.ExpectedCounts(Records, Words).OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));
    }

    private BlobContainerClient Container(string name) => new(fixture.Azurite.ConnectionString, name);

    // Copies every blob of a savepoint folder to another folder (and container), as a user moving it would; returns its URL.
    private static async Task<string> CopyAsync(BlobContainerClient from, string folder, BlobContainerClient to, string destination)
    {
        var names = await BlobNamesAsync(from, folder + "/");
        Assert.NotEmpty(names);
        foreach (var name in names)
        {
            var content = (await from.GetBlobClient(name).DownloadContentAsync()).Value.Content;
            await to.GetBlobClient($"{destination}/{name[(folder.Length + 1)..]}").UploadAsync(content, overwrite: true);
        }

        return $"{to.Uri.ToString().TrimEnd('/')}/{destination}";
    }

    private static async Task<List<string>> BlobNamesAsync(BlobContainerClient container, string prefix)
    {
        var names = new List<string>();
        if (!await container.ExistsAsync())
        {
            return names;
        }

        await foreach (var blob in container.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix }))
        {
            names.Add(blob.Name);
        }

        return names;
    }

    // Two silos whose checkpoints go to the test's container, with the savepoint settings under test.
    private Task<TestCluster> StartClusterAsync(string container, string? savepointStorage, string? restoreContainers = null)
    {
        var settings = new Dictionary<string, string>();
        if (savepointStorage is not null)
        {
            settings["Platform:SavepointStorage"] = savepointStorage;
        }

        if (restoreContainers is not null)
        {
            settings["Platform:AzureBlob:RestoreContainers:0"] = restoreContainers;
        }

        return fixture.Azurite.StartClusterAsync(container, settings);
    }
}
