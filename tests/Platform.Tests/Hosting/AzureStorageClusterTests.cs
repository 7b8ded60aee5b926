using System.Globalization;
using System.Net;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Platform.Client;
using Platform.Connectors;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Platform.Tests.Hosting;

/// <summary>
/// Silo processes whose membership table is in Azure Table storage and whose control state (<c>platform-state</c>,
/// <c>PubSubStore</c>) and checkpoints are in Azure Blob storage, on a real Azurite, configured with the keys .NET Aspire's
/// <c>WithClustering(table)</c> / <c>WithGrainStorage(name, blobs)</c> set (<c>Orleans__Clustering__ProviderType=AzureTableStorage</c>,
/// <c>Orleans__GrainStorage__{name}__ProviderType=AzureBlobStorage</c>, each with a <c>ServiceKey</c> naming
/// <c>ConnectionStrings__{key}</c>), with a client that finds the gateways in the table.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class AzureStorageClusterTests(AzuriteWithTablesFixture azurite, ITestOutputHelper output) : IClassFixture<AzuriteWithTablesFixture>
{
    private const string TablesKey = "clustering";
    private const string BlobsKey = "grainstate";
    private const string ServiceId = "platform-azure-tests";
    private static readonly string[] ControlStateStorages = ["platform-state", "PubSubStore"];
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private const long Records = 45_000;
    private const long HoldAt = 15_000;
    private const int Words = 50;

    [Fact]
    public async Task Three_silo_processes_clustered_through_Azure_Table_storage_recover_a_job_exactly_once_when_the_job_managers_silo_is_SIGKILLed()
    {
        var run = new ClusterRun(azurite.Azurite, "azure-crash");
        var silos = run.StartSilos();
        try
        {
            using var client = await run.ConnectAsync(silos);
            var platform = new PlatformClient(client.Services.GetRequiredService<IClusterClient>());
            var management = client.Services.GetRequiredService<IClusterClient>().GetGrain<IManagementGrain>(0);
            Assert.Equal(3, (await management.GetHosts(onlyActive: true)).Count);
            var jobId = await run.StartJobAsync(platform);
            await Poll.UntilAsync(async () => (await platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 2, Timeout, () => "two checkpoints complete");

            // The checkpoints are blobs too.
            Assert.NotEmpty(await run.CommittedCheckpointsAsync());
            var status = await platform.GetStatusAsync(jobId);
            Assert.Equal(JobState.Running, status.State);
            var jobManagerSilo = status.JobManagerSilo ?? "";
            var victim = Enumerable.Range(0, silos.Length).Where(i => jobManagerSilo.StartsWith($"S127.0.0.1:{run.SiloPort(i)}:", StringComparison.Ordinal)).DefaultIfEmpty(-1).First();
            Assert.True(victim >= 0, $"The job manager's silo '{jobManagerSilo}' is none of the three started.");
            silos[victim].Kill();

            // Short probes (1 s, 2 missed) let the survivors declare it dead, and write so to the table, in a few seconds.
            await Poll.UntilAsync(
                async () =>
                {
                    try
                    {
                        return (await management.GetHosts(onlyActive: true)).Count == 2;
                    }
                    catch (Exception ex) when (ex is OrleansException or TimeoutException)
                    {
                        // The call went through the dead silo's gateway; the client moves to another.
                        return false;
                    }
                },
                TimeSpan.FromSeconds(30),
                () => $"the SIGKILLed silo {victim} is declared dead");
            await Poll.UntilAsync(
                async () => (await run.MembershipStatusesAsync()).Count(s => s == "Dead") == 1,
                TimeSpan.FromSeconds(30),
                () => "the membership table in Azure Table storage marks the SIGKILLed silo dead");

            var beforeRelease = await platform.GetStatusAsync(jobId);
            Assert.False(beforeRelease.State.IsTerminal(), $"The job ended {beforeRelease.State} while its sources were held: {beforeRelease.Failure}");
            await File.WriteAllTextAsync(run.ReleaseFile, "");
            var final = await WaitForCompletionAsync(platform, jobId, silos);

            output.WriteLine($"{final.Restarts} restart(s), restored from checkpoint {final.RestoredFromCheckpoint}");
            Assert.True(final.State == JobState.Finished, $"Job ended {final.State}: {final.Failure}\n{Logs(silos)}");
            Assert.True(final.Restarts >= 1, "The job did not restart after its job manager's silo died.");
            Assert.NotNull((await platform.GetCheckpointStatisticsAsync(jobId)).LatestRestoredId);
            Assert.DoesNotContain(jobManagerSilo, final.JobManagerSilo ?? "", StringComparison.Ordinal);
            run.AssertExactlyOnceOutput();
            await run.AssertStateOnlyInAzureAsync(jobId);
            await client.StopAsync();
        }
        finally
        {
            output.WriteLine(Logs(silos));
            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_running_job_resumes_from_its_retained_checkpoint_when_the_whole_cluster_is_stopped_and_new_silos_start_on_the_same_storage()
    {
        var run = new ClusterRun(azurite.Azurite, "azure-restart");
        var first = run.StartSilos();
        string jobId;
        IReadOnlyList<long> retainedBefore;
        try
        {
            using var client = await run.ConnectAsync(first);
            var platform = new PlatformClient(client.Services.GetRequiredService<IClusterClient>());
            jobId = await run.StartJobAsync(platform);
            await Poll.UntilAsync(async () => (await platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 2, Timeout, () => "two checkpoints complete");
            await client.StopAsync();

            // Every silo at once (SIGTERM: they leave the cluster), so that no survivor restarts the job in between.
            foreach (var silo in first)
            {
                silo.Terminate();
            }

            foreach (var silo in first)
            {
                Assert.True(await silo.WaitForExitAsync(TimeSpan.FromMinutes(1)), $"A silo did not stop on SIGTERM:\n{silo.Output}");
            }

            retainedBefore = await run.CommittedCheckpointsAsync();
            Assert.NotEmpty(retainedBefore);
        }
        finally
        {
            output.WriteLine(Logs(first));
            foreach (var silo in first)
            {
                await silo.DisposeAsync();
            }
        }

        // New silos on new ports and new local disks; only Azure Storage (and the sink's output folder) carries over.
        Assert.All(await run.MembershipStatusesAsync(), s => Assert.Equal("Dead", s));
        var second = run.StartSilos();
        try
        {
            using var client = await run.ConnectAsync(second);
            var platform = new PlatformClient(client.Services.GetRequiredService<IClusterClient>());

            // Nobody submits anything: the new silos find the job that should be running in the control state and restore it.
            await Poll.UntilAsync(
                async () => (await platform.GetCheckpointStatisticsAsync(jobId)).LatestRestoredId is not null,
                Timeout,
                () => $"the job restores a checkpoint in the new cluster\n{Logs(second)}");
            var stats = await platform.GetCheckpointStatisticsAsync(jobId);
            Assert.Contains(stats.LatestRestoredId!.Value, retainedBefore);
            var resumed = await platform.GetStatusAsync(jobId);
            Assert.False(resumed.State.IsTerminal(), $"The job ended {resumed.State} while its sources were held: {resumed.Failure}");

            await File.WriteAllTextAsync(run.ReleaseFile, "");
            var final = await WaitForCompletionAsync(platform, jobId, second);
            Assert.True(final.State == JobState.Finished, $"Job ended {final.State}: {final.Failure}\n{Logs(second)}");
            run.AssertExactlyOnceOutput();
            await run.AssertStateOnlyInAzureAsync(jobId);
            await client.StopAsync();
        }
        finally
        {
            output.WriteLine(Logs(second));
            foreach (var silo in second)
            {
                await silo.DisposeAsync();
            }
        }
    }

    [Theory]
    [InlineData("clustering", null, "ConnectionStrings:clustering (named by Orleans:Clustering:ServiceKey) is not set")]
    [InlineData("clustering", "", "ConnectionStrings:clustering (named by Orleans:Clustering:ServiceKey) is empty")]
    [InlineData("clustering", "{blobs}", "ConnectionStrings:clustering names BlobEndpoint but no TableEndpoint, which membership needs")]
    [InlineData("clustering", "notaconnectionstring", "ConnectionStrings:clustering is neither an endpoint URI nor a storage connection string")]
    [InlineData("grainstate", "ftp://acct.blob.core.windows.net", "ConnectionStrings:grainstate is 'ftp://acct.blob.core.windows.net', which is not an http(s) URI of the blob service")]
    [InlineData("grainstate", "https://acct.blob.core.windows.net/?sv=2024&sig=x", "ConnectionStrings:grainstate has a query string")]
    [InlineData("grainstate", "AccountName=acct", "ConnectionStrings:grainstate is not a usable storage connection string")]
    public async Task A_missing_or_unusable_Azure_Storage_connection_string_stops_the_silo_naming_the_key(string key, string? value, string message)
    {
        var run = new ClusterRun(azurite.Azurite, "azure-bad");
        var environment = run.SiloEnvironment(0);
        // Checkpoints on disk here, so that only the Orleans providers' settings are judged (the checkpoint storage checks its own).
        environment.Remove("Platform__DefaultCheckpointStorage");
        environment.Remove("Platform__AzureBlob__ConnectionName");
        environment.Remove($"ConnectionStrings__{key}");
        if (value is not null)
        {
            environment[$"ConnectionStrings__{key}"] = value.Replace("{blobs}", azurite.Azurite.ConnectionString, StringComparison.Ordinal);
        }

        await AssertStopsWithAsync(environment, message);
    }

    [Fact]
    public async Task Azure_grain_storage_with_no_account_or_an_endpoint_orleans_would_use_without_signing_in_stops_the_silo_naming_the_key()
    {
        var run = new ClusterRun(azurite.Azurite, "azure-bad");
        var environment = run.SiloEnvironment(0);
        environment.Remove("Orleans__GrainStorage__PubSubStore__ServiceKey");
        environment.Remove("Orleans__GrainStorage__platform-state__ServiceKey");
        environment["Orleans__GrainStorage__platform-state__ConnectionString"] = "https://acct.blob.core.windows.net";

        await AssertStopsWithAsync(
            environment,
            "Orleans:GrainStorage:PubSubStore:ProviderType is 'AzureBlobStorage' but no storage account is configured: set Orleans:GrainStorage:PubSubStore:ServiceKey",
            "Orleans:GrainStorage:platform-state:ConnectionString is an endpoint URI, which Orleans uses without signing in");
    }

    private async Task AssertStopsWithAsync(Dictionary<string, string> environment, params string[] messages)
    {
        await using var silo = ChildProcess.Start(BuiltPrograms.Silo, [], environment);
        var exited = await silo.WaitForExitAsync(Timeout);
        output.WriteLine(silo.Output);

        Assert.True(exited, $"The silo was still running after {Timeout}.");
        Assert.Equal(2, silo.ExitCode);
        foreach (var message in messages)
        {
            Assert.Contains(message, silo.Output, StringComparison.Ordinal);
        }
    }

    private static async Task<JobStatusInfo> WaitForCompletionAsync(PlatformClient platform, string jobId, ChildProcess[] silos)
    {
        try
        {
            return await platform.WaitForCompletionAsync(jobId, Timeout);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"{ex.Message}\n{Logs(silos)}", ex);
        }
    }

    private static string Logs(ChildProcess[] silos) =>
        string.Join('\n', silos.Select((s, i) => $"--- silo-{i} ---\n{string.Join('\n', s.Output.Split('\n').TakeLast(60))}"));

    /// <summary>
    /// One cluster's settings and storage: a cluster id, a membership table and blob containers of its own on the shared
    /// Azurite, and a folder for the sink's output; silos started from it get new ports and new local disks each time.
    /// </summary>
    private sealed class ClusterRun(AzuriteProcess azurite, string name)
    {
        private readonly string _shared = TestData.NewDirectory(name);
        private readonly List<string> _localDirectories = [];
        private int[] _ports = [];

        public string ClusterId { get; } = $"{name}-{Guid.NewGuid():N}";

        public string TableName { get; } = $"m{Guid.NewGuid():N}";

        public string StateContainer { get; } = $"state-{Guid.NewGuid():N}";

        public string CheckpointContainer { get; } = $"chk-{Guid.NewGuid():N}";

        public string OutputDirectory => Path.Combine(_shared, "output");

        /// <summary>The sources wait at <see cref="HoldAt"/> until this file exists, so that the job cannot finish before the failure.</summary>
        public string ReleaseFile => Path.Combine(_shared, "release");

        public int SiloPort(int index) => _ports[index * 3];

        private int HttpPort(int index) => _ports[(index * 3) + 2];

        /// <summary>What an Aspire AppHost sets for a silo with <c>WithClustering(tables)</c> and <c>WithGrainStorage(name, blobs)</c>, plus short failure detection.</summary>
        public Dictionary<string, string> SiloEnvironment(int index)
        {
            if (_ports.Length == 0)
            {
                _ports = Ports.Free(9);
            }

            var local = Path.Combine(_shared, $"local-{_localDirectories.Count}");
            _localDirectories.Add(local);
            var environment = new Dictionary<string, string>
            {
                ["Orleans__ClusterId"] = ClusterId,
                ["Orleans__ServiceId"] = ServiceId,
                ["Orleans__Clustering__ProviderType"] = "AzureTableStorage",
                ["Orleans__Clustering__ServiceKey"] = TablesKey,
                ["Orleans__Clustering__TableName"] = TableName,
                [$"ConnectionStrings__{TablesKey}"] = azurite.TableConnectionString,
                [$"ConnectionStrings__{BlobsKey}"] = azurite.ConnectionString,
                ["Orleans__Endpoints__SiloPort"] = SiloPort(index).ToString(CultureInfo.InvariantCulture),
                ["Orleans__Endpoints__GatewayPort"] = _ports[(index * 3) + 1].ToString(CultureInfo.InvariantCulture),
                ["Orleans__Endpoints__AdvertisedIPAddress"] = "127.0.0.1",
                ["Orleans__Membership__ProbeTimeout"] = "00:00:01",
                ["Orleans__Membership__NumMissedProbesLimit"] = "2",
                ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{HttpPort(index)}",
                ["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
                // Each silo has disks of its own, as on separate machines; nothing of the platform's state may land there.
                ["Platform__StateDirectory"] = Path.Combine(local, "state"),
                ["Platform__CheckpointDirectory"] = Path.Combine(local, "checkpoints"),
                ["Platform__DefaultCheckpointStorage"] = "AzureBlob",
                ["Platform__AzureBlob__ConnectionName"] = BlobsKey,
                ["Platform__AzureBlob__ContainerName"] = CheckpointContainer,
            };
            foreach (var storage in ControlStateStorages)
            {
                environment[$"Orleans__GrainStorage__{storage}__ProviderType"] = "AzureBlobStorage";
                environment[$"Orleans__GrainStorage__{storage}__ServiceKey"] = BlobsKey;
                environment[$"Orleans__GrainStorage__{storage}__ContainerName"] = StateContainer;
            }

            return environment;
        }

        /// <summary>Starts three silos on new ports (none is primary: they find each other in the table).</summary>
        public ChildProcess[] StartSilos()
        {
            _ports = Ports.Free(9);
            return Enumerable.Range(0, 3).Select(i => ChildProcess.Start(BuiltPrograms.Silo, [], SiloEnvironment(i))).ToArray();
        }

        /// <summary>Waits until every silo is ready, then connects a client configured as an Aspire client app is.</summary>
        public async Task<IHost> ConnectAsync(ChildProcess[] silos)
        {
            await Poll.UntilAsync(
                async () =>
                {
                    foreach (var silo in silos)
                    {
                        if (silo.HasExited)
                        {
                            throw new InvalidOperationException($"A silo exited with code {silo.ExitCode}:\n{silo.Output}");
                        }
                    }

                    return (await Task.WhenAll(Enumerable.Range(0, silos.Length).Select(i => ReadyAsync(HttpPort(i))))).All(ready => ready);
                },
                Timeout,
                () => $"all three silos answer 200 on /health/ready\n{Logs(silos)}");

            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Logging.ClearProviders();
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Orleans:ClusterId"] = ClusterId,
                ["Orleans:ServiceId"] = ServiceId,
                ["Orleans:Clustering:ProviderType"] = "AzureTableStorage",
                ["Orleans:Clustering:ServiceKey"] = TablesKey,
                ["Orleans:Clustering:TableName"] = TableName,
                [$"ConnectionStrings:{TablesKey}"] = azurite.TableConnectionString,
            });

            // What Aspire's AddKeyedAzureTableServiceClient("clustering") registers in a client app.
            builder.Services.AddKeyedSingleton(
                TablesKey,
                (services, _) => new TableServiceClient(services.GetRequiredService<IConfiguration>().GetConnectionString(TablesKey)));
            builder.UseOrleansClient();
            var host = builder.Build();
            await host.StartAsync();
            return host;
        }

        public Task<string> StartJobAsync(PlatformClient platform) => platform.RunAsync(
            "generated-word-count",
            new Dictionary<string, string>
            {
                ["records"] = Records.ToString(CultureInfo.InvariantCulture),
                ["words"] = Words.ToString(CultureInfo.InvariantCulture),
                ["rate"] = "1500",
                ["output"] = OutputDirectory,
                ["checkpoint-interval"] = "200ms",
                ["hold-at"] = HoldAt.ToString(CultureInfo.InvariantCulture),
                ["release-file"] = ReleaseFile,
            },
            parallelism: 2);

        /// <summary>The status column of this cluster's rows in the membership table.</summary>
        public async Task<IReadOnlyList<string>> MembershipStatusesAsync()
        {
            var table = new TableServiceClient(azurite.TableConnectionString).GetTableClient(TableName);
            var statuses = new List<string>();
            await foreach (var row in table.QueryAsync<TableEntity>())
            {
                // Orleans keeps one version row per cluster beside the silos' rows.
                if (row.GetString("Status") is { } status && row.PartitionKey.StartsWith(ClusterId, StringComparison.Ordinal))
                {
                    statuses.Add(status);
                }
            }

            return statuses;
        }

        /// <summary>The ids of the checkpoints whose metadata is in this run's checkpoint container (<c>{job}/chk-{n}/_metadata</c>).</summary>
        public async Task<IReadOnlyList<long>> CommittedCheckpointsAsync()
        {
            var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(CheckpointContainer);
            var ids = new List<long>();
            await foreach (var blob in container.GetBlobsAsync(new Azure.Storage.Blobs.Models.GetBlobsOptions()))
            {
                var parts = blob.Name.Split('/');
                if (parts.Length == 3 && parts[1].StartsWith("chk-", StringComparison.Ordinal) && parts[2] == "_metadata")
                {
                    ids.Add(long.Parse(parts[1]["chk-".Length..], CultureInfo.InvariantCulture));
                }
            }

            return ids;
        }

        /// <summary>
        /// Exactly once: each word's last running count is its true count, and the file sink committed each running count
        /// once (none replayed after the failure, none lost).
        /// </summary>
        public void AssertExactlyOnceOutput()
        {
            var written = FileSink.ReadCommittedLines(OutputDirectory)
                .Select(line => line.Split('\t'))
                .GroupBy(fields => fields[0])
                .ToDictionary(g => g.Key, g => g.Max(fields => long.Parse(fields[1], CultureInfo.InvariantCulture)));
            Assert.Equal(GeneratedWords.CountsOf(Records, Words).OrderBy(p => p.Key), written.OrderBy(p => p.Key));
            var expectedLines = GeneratedWords.CountsOf(Records, Words)
                .SelectMany(p => Enumerable.Range(1, (int)p.Value).Select(n => $"{p.Key}\t{n.ToString(CultureInfo.InvariantCulture)}"))
                .Order(StringComparer.Ordinal);
            Assert.Equal(expectedLines, FileSink.ReadCommittedLines(OutputDirectory).Order(StringComparer.Ordinal));
        }

        /// <summary>The control state is blobs; nothing of it (nor of the checkpoints) went to the silos' own disks.</summary>
        public async Task AssertStateOnlyInAzureAsync(string jobId)
        {
            Assert.All(_localDirectories, d => Assert.False(
                Directory.Exists(d) && Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories).Any(),
                $"{d} holds {string.Join(", ", Directory.Exists(d) ? Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories) : [])}"));
            var state = new List<string>();
            await foreach (var blob in new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(StateContainer).GetBlobsAsync())
            {
                state.Add(blob.Name);
            }

            // The job manager's record and the control stream's subscriptions (Orleans' pubsub rendezvous grain).
            Assert.Contains(state, n => n.Contains(jobId, StringComparison.Ordinal));
            Assert.Contains(state, n => n.Contains("pubsubrendezvous", StringComparison.OrdinalIgnoreCase));
        }

        private static async Task<bool> ReadyAsync(int httpPort)
        {
            try
            {
                using var response = await Http.GetAsync(new Uri($"http://127.0.0.1:{httpPort}/health/ready"));
                return response.StatusCode == HttpStatusCode.OK;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                return false;
            }
        }
    }
}
