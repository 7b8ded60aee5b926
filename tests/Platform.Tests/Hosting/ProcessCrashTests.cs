using System.Globalization;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Hosting;
using Platform.Checkpointing;
using Platform.Client;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Hosting;

/// <summary>
/// A real crash: silos are separate processes and one is killed with SIGKILL, so nobody announces its departure and
/// Orleans' failure detection (probes) must notice it. Then the job recovers from its latest checkpoint.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class ProcessCrashTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task A_silo_process_killed_with_SIGKILL_is_detected_and_the_job_recovers_exactly_once()
    {
        const long records = 40_000;
        const int words = 50;
        var clusterId = $"crash-{Guid.NewGuid():N}";
        const string serviceId = "platform-crash-tests";
        var shared = TestData.NewDirectory("crash-cluster");
        var ports = Ports.Free(9);
        var primary = new IPEndPoint(IPAddress.Loopback, ports[0]);

        ChildProcess StartSilo(int index) => ChildProcess.Start(BuiltPrograms.Silo, [], new Dictionary<string, string>
        {
            ["Orleans__ClusterId"] = clusterId,
            ["Orleans__ServiceId"] = serviceId,
            ["Orleans__Clustering__ProviderType"] = "Development",
            ["Orleans__Clustering__PrimarySiloEndPoint"] = primary.ToString(),
            ["Orleans__Endpoints__AdvertisedIPAddress"] = "127.0.0.1",
            ["Orleans__Endpoints__SiloPort"] = ports[index * 3].ToString(CultureInfo.InvariantCulture),
            ["Orleans__Endpoints__GatewayPort"] = ports[(index * 3) + 1].ToString(CultureInfo.InvariantCulture),
            ["Orleans__Membership__ProbeTimeout"] = "00:00:01",
            ["Orleans__Membership__NumMissedProbesLimit"] = "2",
            ["Orleans__Membership__NumVotesForDeathDeclaration"] = "1",
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{ports[(index * 3) + 2]}",
            ["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
            ["Platform__StateDirectory"] = Path.Combine(shared, "state"),
            ["Platform__CheckpointDirectory"] = Path.Combine(shared, "checkpoints"),
        });

        await using var silo0 = StartSilo(0);
        await using var silo1 = StartSilo(1);
        ChildProcess? silo2 = null;
        try
        {
            using var client = await ProcessClusterClient.ConnectAsync(clusterId, serviceId, Timeout, null, ports[1], ports[4]);
            var platform = new PlatformClient(client.Services.GetRequiredService<IClusterClient>());
            var management = client.Services.GetRequiredService<IClusterClient>().GetGrain<IManagementGrain>(0);
            await Poll.UntilAsync(async () => (await management.GetHosts(onlyActive: true)).Count == 2, Timeout, () => $"two silos are active\n{silo0.Output}\n{silo1.Output}");

            var settings = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(200), Storage = CheckpointStorageKind.FileSystem };
            var job = WordCountJob.BuildGenerated(records, words, parallelism: 2, recordsPerSecondPerSubtask: 1_500, settings, RestartStrategy.FixedDelayRestart(20, TimeSpan.FromMilliseconds(500)));
            var jobId = await platform.SubmitAsync(job);
            await Poll.UntilAsync(async () => (await platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 2, Timeout, () => "two checkpoints complete");

            var status = await platform.GetStatusAsync(jobId);
            var silo1Address = $"127.0.0.1:{ports[3]}";
            Assert.Contains(status.Tasks, t => t.Silo?.StartsWith($"S{silo1Address}", StringComparison.Ordinal) == true);

            silo1.Kill();
            silo2 = StartSilo(2);

            try
            {
                status = await platform.WaitForCompletionAsync(jobId, Timeout);
            }
            catch (TimeoutException ex)
            {
                throw new TimeoutException($"{ex.Message}\n--- silo-0 ---\n{Tail(silo0.Output)}\n--- silo-2 ---\n{Tail(silo2.Output)}", ex);
            }
            Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}\n{silo0.Output}");
            Assert.True(status.Restarts >= 1);
            Assert.NotEmpty(status.RestartCauses);
            Assert.NotNull((await platform.GetCheckpointStatisticsAsync(jobId)).LatestRestoredId);
            var running = await platform.GetCollectedAsync<WordCount>(jobId, WordCountJob.CollectSinkUid);
            Assert.Equal(GeneratedWords.CountsOf(records, words).OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));
            await client.StopAsync();
        }
        finally
        {
            if (silo2 is not null)
            {
                await silo2.DisposeAsync();
            }
        }
    }

    private static string Tail(string output) => string.Join('\n', output.Split('\n').TakeLast(60));
}
