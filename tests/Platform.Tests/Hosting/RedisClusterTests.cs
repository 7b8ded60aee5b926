using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Platform.Client;
using Platform.Connectors;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Cli;
using Platform.Tests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace Platform.Tests.Hosting;

/// <summary>
/// Silo processes whose membership table is in a real redis-server, configured with the keys .NET Aspire sets
/// (<c>Orleans__Clustering__ProviderType=Redis</c>, <c>Orleans__Clustering__ServiceKey</c>, <c>ConnectionStrings__&lt;key&gt;</c>),
/// with clients that find the gateways through Redis.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class RedisClusterTests(RedisServerFixture redis, ITestOutputHelper output) : IClassFixture<RedisServerFixture>
{
    private const string ServiceKey = "clustering";
    private const string ServiceId = "platform-redis-tests";
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Three_silo_processes_clustered_through_Redis_recover_a_job_exactly_once_when_the_job_managers_silo_is_SIGKILLed(bool controlStateInRedis)
    {
        const long records = 45_000;
        const long holdAt = 15_000;
        const int words = 50;
        var clusterId = $"redis-crash-{Guid.NewGuid():N}";
        var shared = TestData.NewDirectory("redis-cluster");
        var outputDirectory = Path.Combine(shared, "output");

        // The sources wait at sequence number holdAt until this file exists, so the job cannot finish before the kill,
        // however slow the machine: the kill always lands mid-run.
        var releaseFile = Path.Combine(shared, "release");
        var ports = Ports.Free(9);
        int HttpPort(int index) => ports[(index * 3) + 2];

        // No primary silo: every silo finds the others in Redis. They share the checkpoint directory (one machine), and
        // the state directory too unless the platform's control state (job managers, coordinators, registry,
        // subscriptions) is in Redis, as it must be for silos on separate machines without a shared mount.
        var stateDirectories = Enumerable.Range(0, 3).Select(i => controlStateInRedis ? Path.Combine(shared, $"state-{i}") : Path.Combine(shared, "state")).ToArray();
        var silos = Enumerable.Range(0, 3).Select(i =>
        {
            var environment = SiloEnvironment(redis.Server.ConnectionString, clusterId, ports[i * 3], ports[(i * 3) + 1], HttpPort(i), shared);
            environment["Platform__StateDirectory"] = stateDirectories[i];
            if (controlStateInRedis)
            {
                // What Aspire's WithGrainStorage(name, redis) sets.
                foreach (var storage in new[] { "platform-state", "PubSubStore" })
                {
                    environment[$"Orleans__GrainStorage__{storage}__ProviderType"] = "Redis";
                    environment[$"Orleans__GrainStorage__{storage}__ServiceKey"] = ServiceKey;
                }
            }

            return ChildProcess.Start(BuiltPrograms.Silo, [], environment);
        }).ToArray();

        // The client process: the command line, finding the gateways through Redis.
        var cli = new Dictionary<string, string>
        {
            ["PLATFORM_REDIS"] = redis.Server.ConnectionString,
            ["PLATFORM_CLUSTER_ID"] = clusterId,
            ["PLATFORM_SERVICE_ID"] = ServiceId,
        };
        try
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

                    return (await Task.WhenAll(Enumerable.Range(0, silos.Length).Select(i => StatusOfAsync(HttpPort(i), SiloHealth.Ready)))).All(s => s == HttpStatusCode.OK);
                },
                Timeout,
                () => $"all three silos answer 200 on /health/ready\n{Logs(silos)}");

            var run = await CliProcess.RunAsync(
                cli,
                "run", "generated-word-count",
                "--arg", $"records={records}", "--arg", $"words={words}", "--arg", "rate=1500",
                "--arg", $"output={outputDirectory}", "--arg", "checkpoint-interval=200ms",
                "--arg", $"hold-at={holdAt}", "--arg", $"release-file={releaseFile}",
                "--parallelism", "2", "--json");
            Assert.True(run.ExitCode == 0, run.ToString());
            string jobId;
            using (var started = JsonDocument.Parse(run.StandardOutput))
            {
                jobId = started.RootElement.GetProperty("jobId").GetString()!;
            }

            // A client in this process, configured as an Aspire client app is: the same keys, and a keyed connection.
            using var client = await ConnectThroughConfigurationAsync(redis.Server.ConnectionString, clusterId);
            var platform = new PlatformClient(client.Services.GetRequiredService<IClusterClient>());
            var management = client.Services.GetRequiredService<IClusterClient>().GetGrain<IManagementGrain>(0);
            Assert.Equal(3, (await management.GetHosts(onlyActive: true)).Count);
            await Poll.UntilAsync(async () => (await platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 2, Timeout, () => "two checkpoints complete");

            // The command line shows which silo hosts the job manager: that one dies.
            var status = await CliProcess.RunAsync(cli, "status", jobId, "--json");
            Assert.True(status.ExitCode == 0, status.ToString());
            string jobManagerSilo;
            using (var document = JsonDocument.Parse(status.StandardOutput))
            {
                Assert.Equal("Running", document.RootElement.GetProperty("state").GetString());
                jobManagerSilo = document.RootElement.GetProperty("jobManagerSilo").GetString() ?? "";
            }

            var victim = Enumerable.Range(0, silos.Length).Where(i => jobManagerSilo.StartsWith($"S127.0.0.1:{ports[i * 3]}:", StringComparison.Ordinal)).DefaultIfEmpty(-1).First();
            Assert.True(victim >= 0, $"The job manager's silo '{jobManagerSilo}' is none of the three started.");
            var watch = Stopwatch.StartNew();
            silos[victim].Kill();

            // Short probes (1 s, 2 missed) let the survivors declare it dead in a few seconds, not the default ~14 s.
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
            output.WriteLine($"silo {victim} (job manager) SIGKILLed; declared dead after {watch.Elapsed.TotalSeconds:0.0} s");

            // Killed while running (the held sources cannot have reached the end); now let the restored job read to it.
            // The client may still route a call or two through the dead silo's gateway (seen in CI: SiloUnavailableException).
            JobStatusInfo beforeRelease = null!;
            await Poll.UntilAsync(
                async () =>
                {
                    try
                    {
                        beforeRelease = await platform.GetStatusAsync(jobId);
                        return true;
                    }
                    catch (Exception ex) when (ex is OrleansException or TimeoutException)
                    {
                        return false;
                    }
                },
                TimeSpan.FromSeconds(30),
                () => "the job's status is read through a live gateway");
            Assert.False(beforeRelease.State.IsTerminal(), $"The job ended {beforeRelease.State} while its sources were held: {beforeRelease.Failure}");
            await File.WriteAllTextAsync(releaseFile, "");

            JobStatusInfo final;
            try
            {
                final = await platform.WaitForCompletionAsync(jobId, Timeout);
            }
            catch (TimeoutException ex)
            {
                throw new TimeoutException($"{ex.Message}\n{Logs(silos)}", ex);
            }

            output.WriteLine($"job finished {watch.Elapsed.TotalSeconds:0.0} s after the kill; {final.Restarts} restart(s), restored from checkpoint {final.RestoredFromCheckpoint}");
            Assert.True(final.State == JobState.Finished, $"Job ended {final.State}: {final.Failure}\n{Logs(silos)}");
            Assert.True(final.Restarts >= 1, "The job did not restart after its job manager's silo died.");
            Assert.NotNull((await platform.GetCheckpointStatisticsAsync(jobId)).LatestRestoredId);
            Assert.DoesNotContain(jobManagerSilo, final.JobManagerSilo ?? "", StringComparison.Ordinal);

            // The client process sees the same end.
            var watched = await CliProcess.RunAsync(cli, "status", jobId, "--json");
            Assert.True(watched.ExitCode == 0, watched.ToString());
            using (var document = JsonDocument.Parse(watched.StandardOutput))
            {
                Assert.Equal("Finished", document.RootElement.GetProperty("state").GetString());
            }

            // Exactly once: the last running count of each word (the keyed state at the end) is its true count. A record
            // counted twice after the restore would raise one; a lost one would lower it.
            var written = FileSink.ReadCommittedLines(outputDirectory)
                .Select(line => line.Split('\t'))
                .GroupBy(fields => fields[0])
                .ToDictionary(g => g.Key, g => g.Max(fields => long.Parse(fields[1], CultureInfo.InvariantCulture)));
            Assert.Equal(GeneratedWords.CountsOf(records, words).OrderBy(p => p.Key), written.OrderBy(p => p.Key));

            // And the file sink committed each running count exactly once: none replayed after the kill, none lost.
            var expectedLines = GeneratedWords.CountsOf(records, words)
                .SelectMany(p => Enumerable.Range(1, (int)p.Value).Select(n => $"{p.Key}\t{n.ToString(CultureInfo.InvariantCulture)}"))
                .Order(StringComparer.Ordinal);
            Assert.Equal(expectedLines, FileSink.ReadCommittedLines(outputDirectory).Order(StringComparer.Ordinal));
            if (controlStateInRedis)
            {
                // Nothing of the control state went to the silos' own disks: the job recovered from what Redis kept.
                Assert.All(stateDirectories, d => Assert.False(Directory.Exists(d) && Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories).Any(), $"{d} holds files"));
            }

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
    public async Task A_silo_serves_startup_ready_and_live_health_and_stays_live_and_ready_but_degraded_when_Redis_stops()
    {
        // A Redis of its own: this test stops it.
        await using var server = await RedisServer.StartAsync();
        var ports = Ports.Free(3);
        var httpPort = ports[2];
        await using var silo = StartSilo(server.ConnectionString, $"redis-health-{Guid.NewGuid():N}", ports[0], ports[1], httpPort, TestData.NewDirectory("redis-health"));
        try
        {
            await Poll.UntilAsync(
                async () => !silo.HasExited
                    ? await StatusOfAsync(httpPort, SiloHealth.Ready) == HttpStatusCode.OK
                    : throw new InvalidOperationException($"The silo exited with code {silo.ExitCode}:\n{silo.Output}"),
                Timeout,
                () => $"the silo answers 200 on /health/ready\n{silo.Output}");
            Assert.Equal(HttpStatusCode.OK, await StatusOfAsync(httpPort, SiloHealth.Startup));
            Assert.Equal(HttpStatusCode.OK, await StatusOfAsync(httpPort, SiloHealth.Live));
            using (var root = await Http.GetAsync(new Uri($"http://127.0.0.1:{httpPort}/")))
            {
                Assert.Equal(HttpStatusCode.OK, root.StatusCode);
                Assert.Contains("/health/ready", await root.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }

            await server.StopAsync();

            // Readiness reports the unreadable membership table as Degraded but stays 200 (on Container Apps a replica
            // that is not ready loses its ingress, which carries silo-to-silo traffic); liveness asks nothing of Redis.
            var liveAnswers = new List<HttpStatusCode?>();
            var readyAnswers = new List<HttpStatusCode?>();
            string? degraded = null;
            await Poll.UntilAsync(
                async () =>
                {
                    liveAnswers.Add(await StatusOfAsync(httpPort, SiloHealth.Live));
                    using var ready = await Http.GetAsync(new Uri($"http://127.0.0.1:{httpPort}{SiloHealth.Ready}"));
                    readyAnswers.Add(ready.StatusCode);
                    var body = await ready.Content.ReadAsStringAsync();
                    degraded = body.Contains("\"status\":\"Degraded\"", StringComparison.Ordinal) ? body : null;
                    return degraded is not null;
                },
                Timeout,
                () => $"/health/ready reports Degraded once Redis is stopped\n{silo.Output}");
            liveAnswers.Add(await StatusOfAsync(httpPort, SiloHealth.Live));
            Assert.All(liveAnswers, status => Assert.Equal(HttpStatusCode.OK, status));
            Assert.All(readyAnswers, status => Assert.Equal(HttpStatusCode.OK, status));
            Assert.Contains("membership", degraded, StringComparison.Ordinal);
            Assert.Contains("membership table", degraded, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, await StatusOfAsync(httpPort, SiloHealth.Startup));
            Assert.False(silo.HasExited, silo.Output);
        }
        finally
        {
            output.WriteLine(silo.Output);
        }
    }

    [Theory]
    [InlineData(null, 2, "ConnectionStrings:clustering (named by Orleans:Clustering:ServiceKey) is not set")]
    [InlineData("", 2, "ConnectionStrings:clustering (named by Orleans:Clustering:ServiceKey) is empty")]
    [InlineData("127.0.0.1:6379,notanoption=1", 2, "ConnectionStrings:clustering is not a Redis connection string")]
    [InlineData("127.0.0.1:{free}", 1, "The Redis server for clustering (ConnectionStrings:clustering = 127.0.0.1:{free}) cannot be reached")]
    public async Task A_missing_empty_or_unreachable_Redis_connection_string_stops_the_silo_naming_the_key(string? connectionString, int exitCode, string message)
    {
        var ports = Ports.Free(4);
        var free = ports[3].ToString(CultureInfo.InvariantCulture);
        var environment = SiloEnvironment(redisConnectionString: null, $"redis-bad-{Guid.NewGuid():N}", ports[0], ports[1], ports[2], TestData.NewDirectory("redis-bad"));
        if (connectionString is not null)
        {
            environment[$"ConnectionStrings__{ServiceKey}"] = connectionString.Replace("{free}", free, StringComparison.Ordinal);
        }

        await using var silo = ChildProcess.Start(BuiltPrograms.Silo, [], environment);
        var exited = await silo.WaitForExitAsync(Timeout);
        output.WriteLine(silo.Output);

        Assert.True(exited, $"The silo was still running after {Timeout}.");
        Assert.Equal(exitCode, silo.ExitCode);
        Assert.Contains(message.Replace("{free}", free, StringComparison.Ordinal), silo.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Redis_grain_storage_without_its_connection_string_stops_the_silo_naming_the_key()
    {
        var ports = Ports.Free(3);
        var environment = SiloEnvironment(redis.Server.ConnectionString, $"redis-bad-{Guid.NewGuid():N}", ports[0], ports[1], ports[2], TestData.NewDirectory("redis-bad"));
        environment["Orleans__GrainStorage__platform-state__ProviderType"] = "Redis";
        environment["Orleans__GrainStorage__platform-state__ServiceKey"] = "control-state";

        await using var silo = ChildProcess.Start(BuiltPrograms.Silo, [], environment);
        var exited = await silo.WaitForExitAsync(Timeout);
        output.WriteLine(silo.Output);

        Assert.True(exited, $"The silo was still running after {Timeout}.");
        Assert.Equal(2, silo.ExitCode);
        Assert.Contains("ConnectionStrings:control-state (named by Orleans:GrainStorage:platform-state:ServiceKey) is not set", silo.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_command_line_takes_either_a_gateway_or_Redis_and_names_a_Redis_server_it_cannot_reach()
    {
        var both = await CliProcess.RunAsync(new Dictionary<string, string>(), "list", "--gateway", "127.0.0.1:30000", "--redis", redis.Server.ConnectionString);
        Assert.True(both.ExitCode == 2, both.ToString());
        Assert.Contains("either --gateway or --redis", both.StandardError, StringComparison.Ordinal);

        var bothVariables = await CliProcess.RunAsync(
            new Dictionary<string, string> { ["PLATFORM_GATEWAY"] = "127.0.0.1:30000", ["PLATFORM_REDIS"] = redis.Server.ConnectionString }, "list");
        Assert.True(bothVariables.ExitCode == 2, bothVariables.ToString());
        Assert.Contains("PLATFORM_GATEWAY and PLATFORM_REDIS", bothVariables.StandardError, StringComparison.Ordinal);

        // Redis answers, but no silo of this cluster is listed there: no gateway to connect to.
        var noSilo = await CliProcess.RunAsync(
            new Dictionary<string, string> { ["PLATFORM_REDIS"] = redis.Server.ConnectionString, ["PLATFORM_CLUSTER_ID"] = $"nobody-{Guid.NewGuid():N}" }, "list", "--connect-timeout", "3");
        Assert.True(noSilo.ExitCode == 4, noSilo.ToString());
        Assert.Contains($"Redis {redis.Server.ConnectionString}", noSilo.StandardError, StringComparison.Ordinal);

        var unreachable = $"127.0.0.1:{Ports.Free(1)[0]}";
        var down = await CliProcess.RunAsync(new Dictionary<string, string>(), "list", "--redis", unreachable, "--connect-timeout", "3");
        Assert.True(down.ExitCode == 4, down.ToString());
        Assert.Contains($"Redis {unreachable}", down.StandardError, StringComparison.Ordinal);
        Assert.Contains("(--redis)", down.StandardError, StringComparison.Ordinal);
    }

    private static ChildProcess StartSilo(string redisConnectionString, string clusterId, int siloPort, int gatewayPort, int httpPort, string shared) =>
        ChildProcess.Start(BuiltPrograms.Silo, [], SiloEnvironment(redisConnectionString, clusterId, siloPort, gatewayPort, httpPort, shared));

    /// <summary>What an Aspire AppHost sets for a silo with <c>WithClustering(redis)</c>, plus short failure detection.</summary>
    private static Dictionary<string, string> SiloEnvironment(string? redisConnectionString, string clusterId, int siloPort, int gatewayPort, int httpPort, string shared)
    {
        var environment = new Dictionary<string, string>
        {
            ["Orleans__ClusterId"] = clusterId,
            ["Orleans__ServiceId"] = ServiceId,
            ["Orleans__Clustering__ProviderType"] = "Redis",
            ["Orleans__Clustering__ServiceKey"] = ServiceKey,
            ["Orleans__Endpoints__SiloPort"] = siloPort.ToString(CultureInfo.InvariantCulture),
            ["Orleans__Endpoints__GatewayPort"] = gatewayPort.ToString(CultureInfo.InvariantCulture),
            ["Orleans__Endpoints__AdvertisedIPAddress"] = "127.0.0.1",
            ["Orleans__Membership__ProbeTimeout"] = "00:00:01",
            ["Orleans__Membership__NumMissedProbesLimit"] = "2",
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{httpPort}",
            ["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
            ["Platform__StateDirectory"] = Path.Combine(shared, "state"),
            ["Platform__CheckpointDirectory"] = Path.Combine(shared, "checkpoints"),
        };
        if (redisConnectionString is not null)
        {
            environment[$"ConnectionStrings__{ServiceKey}"] = redisConnectionString;
        }

        return environment;
    }

    private static async Task<IHost> ConnectThroughConfigurationAsync(string redisConnectionString, string clusterId)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Orleans:ClusterId"] = clusterId,
            ["Orleans:ServiceId"] = ServiceId,
            ["Orleans:Clustering:ProviderType"] = "Redis",
            ["Orleans:Clustering:ServiceKey"] = ServiceKey,
            [$"ConnectionStrings:{ServiceKey}"] = redisConnectionString,
        });

        // What Aspire's AddKeyedRedisClient("clustering") registers in a client app.
        builder.Services.AddKeyedSingleton<IConnectionMultiplexer>(
            ServiceKey,
            (services, _) => ConnectionMultiplexer.Connect(services.GetRequiredService<IConfiguration>().GetConnectionString(ServiceKey)!));
        builder.UseOrleansClient();
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    private static async Task<HttpStatusCode?> StatusOfAsync(int httpPort, string path)
    {
        try
        {
            using var response = await Http.GetAsync(new Uri($"http://127.0.0.1:{httpPort}{path}"));
            return response.StatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    private static string Logs(ChildProcess[] silos) =>
        string.Join('\n', silos.Select((s, i) => $"--- silo-{i} ---\n{string.Join('\n', s.Output.Split('\n').TakeLast(60))}"));

    /// <summary>The silo host's health endpoints.</summary>
    private static class SiloHealth
    {
        public const string Startup = "/health/startup";
        public const string Ready = "/health/ready";
        public const string Live = "/health/live";
    }
}
