using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Hosting;
using Platform.Client;
using Platform.Connectors;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Platform.Tests.Hosting;

/// <summary>The real silo host (Platform.Silo.dll) as a child process, configured the way an orchestrator configures it.</summary>
[Collection(HostingCollection.Name)]
public sealed class SiloHostTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };

    [Fact]
    public async Task A_submission_from_a_separate_client_process_works()
    {
        var ports = Ports.Free(3);
        var (siloPort, gatewayPort, httpPort) = (ports[0], ports[1], ports[2]);
        var clusterId = $"hosting-{Guid.NewGuid():N}";
        const string serviceId = "platform-hosting-tests";

        // No Orleans:Clustering section: the silo defaults to development clustering on the loopback address, and
        // must keep the configured ids and ports (the client below finds it only if it does).
        await using var silo = ChildProcess.Start(BuiltPrograms.Silo, [], new Dictionary<string, string>
        {
            ["Orleans__ClusterId"] = clusterId,
            ["Orleans__ServiceId"] = serviceId,
            ["Orleans__Endpoints__SiloPort"] = siloPort.ToString(CultureInfo.InvariantCulture),
            ["Orleans__Endpoints__GatewayPort"] = gatewayPort.ToString(CultureInfo.InvariantCulture),
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{httpPort}",
            ["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
            ["Platform__StateDirectory"] = Path.Combine(TestData.NewDirectory("silo"), "state"),
            ["Platform__CheckpointDirectory"] = Path.Combine(TestData.NewDirectory("silo"), "checkpoints"),
        });
        try
        {
            await Poll.UntilAsync(
                async () => !silo.HasExited ? await IsLiveAsync(httpPort) : throw new InvalidOperationException($"The silo exited with code {silo.ExitCode}:\n{silo.Output}"),
                Timeout,
                () => $"the silo answers on http://127.0.0.1:{httpPort}/health/live\n{silo.Output}");

            // Development clustering: startup and readiness (Active in the primary's membership table) answer too.
            foreach (var path in new[] { "/health/startup", "/health/ready", "/" })
            {
                using var response = await Http.GetAsync(new Uri($"http://127.0.0.1:{httpPort}{path}"));
                Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }

            using var client = await ConnectAsync(clusterId, serviceId, gatewayPort);
            var platform = new PlatformClient(client.Services.GetRequiredService<IClusterClient>());

            var input = TestData.WriteText(lines: 2000, seed: 11);
            var outputDirectory = TestData.NewDirectory("hosting-output");
            var expected = File.ReadLines(input).SelectMany(Tokenizer.Split).GroupBy(w => w).ToDictionary(g => g.Key, g => (long)g.Count());

            var jobId = await platform.SubmitAsync(WordCountJob.Build(input, parallelism: 2, outputDirectory));
            var status = await platform.WaitForCompletionAsync(jobId, Timeout);

            Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}\n{status.Failure?.StackTrace}");
            var running = await platform.GetCollectedAsync<WordCount>(jobId, WordCountJob.CollectSinkUid);
            Assert.Equal(expected.OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));

            // The silo process wrote the part files; their highest count per word is the same total.
            var fromFiles = FileSink.ReadCommittedLines(outputDirectory)
                .Select(line => line.Split('\t'))
                .GroupBy(fields => fields[0])
                .ToDictionary(g => g.Key, g => g.Max(fields => long.Parse(fields[1], CultureInfo.InvariantCulture)));
            Assert.Equal(expected.OrderBy(p => p.Key), fromFiles.OrderBy(p => p.Key));

            await client.StopAsync();
        }
        finally
        {
            output.WriteLine(silo.Output);
        }
    }

    [Theory]
    [InlineData("Orleans__Endpoints__SiloPort", "notaport", "Orleans:Endpoints:SiloPort")]
    [InlineData("Platform__BatchSize", "0", "Platform:BatchSize")]
    [InlineData("Platform__StateBackend__ProviderType", "Cassandra", "Platform:StateBackend:ProviderType")]
    [InlineData("Platform__RocksDb__WriteBufferSize", "100", "Platform:RocksDb:WriteBufferSize")]
    [InlineData("Platform__DefaultCheckpointStorage", "AzureBlob", "Platform:DefaultCheckpointStorage")]
    [InlineData("Platform__AzureBlob__ServiceUri", "blob.core.windows.net", "Platform:AzureBlob:ServiceUri")]
    [InlineData("Platform__AzureBlob__ContainerName", "Checkpoints_1", "Platform:AzureBlob:ContainerName")]
    public async Task Bad_settings_stop_the_silo_with_an_error_naming_the_setting(string variable, string value, string setting)
    {
        var ports = Ports.Free(3);
        var environment = new Dictionary<string, string>
        {
            ["Orleans__ClusterId"] = $"hosting-{Guid.NewGuid():N}",
            ["Orleans__Endpoints__SiloPort"] = ports[0].ToString(CultureInfo.InvariantCulture),
            ["Orleans__Endpoints__GatewayPort"] = ports[1].ToString(CultureInfo.InvariantCulture),
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{ports[2]}",
            ["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
        };
        environment[variable] = value;

        await using var silo = ChildProcess.Start(BuiltPrograms.Silo, [], environment);
        var exited = await silo.WaitForExitAsync(Timeout);
        output.WriteLine(silo.Output);

        Assert.True(exited, $"The silo was still running after {Timeout} with {variable}={value}.");
        Assert.NotEqual(0, silo.ExitCode);
        Assert.Matches(new Regex($"{Regex.Escape(setting)} is '?{Regex.Escape(value)}'?"), silo.Output);
    }

    [Theory]
    [InlineData("Orleans__Membership__ProbeTimeout", "abc", "Orleans:Membership:ProbeTimeout", "not a duration")]
    [InlineData("ASPNETCORE_URLS", "garbage", "ASPNETCORE_URLS", "not an http:// or https:// address")]
    [InlineData("Silo__ParentProcessId", DeadProcessId, "Silo:ParentProcessId", "no process with that id is running")]
    [InlineData("Orleans__Clustering__PrimarySiloEndPoint", "garbage", "Orleans:Clustering:PrimarySiloEndPoint", "not an IP endpoint")]
    public async Task Values_Orleans_and_Kestrel_read_only_while_starting_are_refused_with_exit_code_2_before_Orleans_starts(
        string variable, string value, string setting, string why)
    {
        if (value == DeadProcessId)
        {
            // A process id that was just freed (its process ran and exited).
            using var gone = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(BuiltPrograms.DotnetHost, "--version") { RedirectStandardOutput = true })!;
            await gone.WaitForExitAsync();
            value = gone.Id.ToString(CultureInfo.InvariantCulture);
        }

        var ports = Ports.Free(3);
        var environment = new Dictionary<string, string>
        {
            ["Orleans__ClusterId"] = $"hosting-{Guid.NewGuid():N}",
            ["Orleans__Endpoints__SiloPort"] = ports[0].ToString(CultureInfo.InvariantCulture),
            ["Orleans__Endpoints__GatewayPort"] = ports[1].ToString(CultureInfo.InvariantCulture),
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{ports[2]}",
            ["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
        };
        environment[variable] = value;

        await using var silo = ChildProcess.Start(BuiltPrograms.Silo, [], environment);
        var exited = await silo.WaitForExitAsync(Timeout);
        output.WriteLine(silo.Output);

        Assert.True(exited, $"The silo was still running after {Timeout} with {variable}={value}.");
        // 2 is the host's exit code for bad settings (1 is a failed start; 134 an unhandled exception).
        Assert.True(silo.ExitCode == 2, $"exit code {silo.ExitCode} with {variable}={value}:\n{silo.Output}");
        Assert.Matches(new Regex($"{Regex.Escape(setting)} is '{Regex.Escape(value)}'[^.]*{Regex.Escape(why)}"), silo.Output);
        // Refused up front: no Orleans component logged anything (it would have, had the silo begun to start).
        Assert.DoesNotContain("Orleans.", silo.Output, StringComparison.Ordinal);
    }

    private const string DeadProcessId = "(a process id that is not running)";

    internal static async Task<bool> IsLiveAsync(int httpPort)
    {
        try
        {
            using var response = await Http.GetAsync(new Uri($"http://127.0.0.1:{httpPort}/health/live"));
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException)
        {
            return false;
        }
    }

    internal static async Task<IHost> ConnectAsync(string clusterId, string serviceId, int gatewayPort)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(client => client
            .UseStaticClustering(new IPEndPoint(IPAddress.Loopback, gatewayPort))
            .Configure<ClusterOptions>(o =>
            {
                o.ClusterId = clusterId;
                o.ServiceId = serviceId;
            }));
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }
}

[CollectionDefinition(Name)]
public sealed class HostingCollection
{
    /// <summary>Tests that start real processes run one at a time, so that they do not compete for the machine's cores.</summary>
    public const string Name = "hosting";
}
