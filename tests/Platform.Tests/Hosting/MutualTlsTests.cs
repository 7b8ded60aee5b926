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
using Platform.Security;
using Platform.Tests.Cli;
using Platform.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Platform.Tests.Hosting;

/// <summary>
/// Mutual TLS (<c>Silo:Tls</c>) on real silo processes with certificates generated for the test: silos admit each other
/// and clients whose certificates their authority issued, and nobody else.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class MutualTlsTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Silos_with_mutual_TLS_form_a_cluster_run_a_job_and_admit_only_clients_their_authority_issued()
    {
        var directory = TestData.NewDirectory("mutual-tls");
        using var authority = new TestCertificates(directory, "cluster");
        using var rogue = new TestCertificates(directory, "rogue");
        var silos = new[] { authority.Issue("silo-0"), authority.Issue("silo-1") };
        var client = authority.Issue("operator");
        var stranger = rogue.Issue("stranger");

        var clusterId = $"tls-{Guid.NewGuid():N}";
        const string serviceId = "platform-tls-tests";
        var ports = Ports.Free(6);
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
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{ports[(index * 3) + 2]}",
            ["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
            ["Silo__Http__Dashboard"] = "false",
            ["Silo__Tls__CertificatePath"] = silos[index].Certificate,
            ["Silo__Tls__KeyPath"] = silos[index].Key,
            ["Silo__Tls__CertificateAuthorityPath"] = authority.AuthorityPath,
            ["Platform__StateDirectory"] = Path.Combine(directory, $"state-{index}"),
            ["Platform__CheckpointDirectory"] = Path.Combine(directory, "checkpoints"),
        }, directory);

        await using var silo0 = StartSilo(0);
        await using var silo1 = StartSilo(1);
        try
        {
            // The SDK's client over TLS sees both silos join: they admitted each other's certificates.
            var tls = new ClusterTlsSettings
            {
                CertificatePath = client.Certificate,
                KeyPath = client.Key,
                CertificateAuthorityPath = authority.AuthorityPath,
            };
            using var host = await ProcessClusterClient.ConnectAsync(clusterId, serviceId, Timeout, orleans => orleans.UseClusterTls(tls), ports[1], ports[4]);
            var cluster = host.Services.GetRequiredService<IClusterClient>();
            await Poll.UntilAsync(async () => (await cluster.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true)).Count == 2, Timeout, () => $"two silos are active\n{silo0.Output}\n{silo1.Output}");

            // A job spread over both silos: its records and barriers cross the silo-to-silo TLS connection.
            var platform = new PlatformClient(cluster);
            const long records = 5_000;
            var job = WordCountJob.BuildGenerated(records, 20, parallelism: 2, recordsPerSecondPerSubtask: 2_000, new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(300), Storage = CheckpointStorageKind.FileSystem });
            var jobId = await platform.SubmitAsync(job);
            var status = await platform.WaitForCompletionAsync(jobId, Timeout);
            Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
            Assert.Equal(2, status.Tasks.Select(t => t.Silo).Distinct().Count());
            var counts = WordCountJob.FinalCounts(await platform.GetCollectedAsync<WordCount>(jobId, WordCountJob.CollectSinkUid));
            Assert.Equal(GeneratedWords.CountsOf(records, 20).OrderBy(p => p.Key), counts.OrderBy(p => p.Key));
            await host.StopAsync();

            // The command line: with the authority's certificate it is let in; without one, or with a stranger's, it is not.
            var environment = new Dictionary<string, string>
            {
                ["PLATFORM_GATEWAY"] = $"127.0.0.1:{ports[1]}",
                ["PLATFORM_CLUSTER_ID"] = clusterId,
                ["PLATFORM_SERVICE_ID"] = serviceId,
            };
            var admitted = await CliProcess.RunAsync(environment, "list", "--tls-certificate", client.Certificate, "--tls-key", client.Key, "--tls-ca", authority.AuthorityPath);
            Assert.True(admitted.ExitCode == 0, admitted.ToString());
            Assert.Contains(jobId, admitted.StandardOutput);

            var plain = await CliProcess.RunAsync(environment, "list", "--connect-timeout", "5");
            output.WriteLine(plain.ToString());
            Assert.True(plain.ExitCode == 4, plain.ToString());
            Assert.Contains("silos that require TLS (Silo:Tls)", plain.StandardError);
            Assert.Contains("--tls-certificate", plain.StandardError);

            var strangers = await CliProcess.RunAsync(environment, "list", "--connect-timeout", "5", "--tls-certificate", stranger.Certificate, "--tls-key", stranger.Key, "--tls-ca", authority.AuthorityPath);
            output.WriteLine(strangers.ToString());
            Assert.True(strangers.ExitCode == 4, strangers.ToString());
            Assert.DoesNotContain(jobId, strangers.StandardOutput);
            Assert.Contains("certificates the other side does not trust", strangers.StandardError);

            // A client that trusts another authority refuses the silos' certificates itself.
            var distrusting = await CliProcess.RunAsync(environment, "list", "--connect-timeout", "5", "--tls-certificate", client.Certificate, "--tls-key", client.Key, "--tls-ca", rogue.AuthorityPath);
            output.WriteLine(distrusting.ToString());
            Assert.True(distrusting.ExitCode == 4, distrusting.ToString());

            // Bad files are bad usage, named by their option.
            var missing = await CliProcess.RunAsync(environment, "list", "--tls-certificate", Path.Combine(directory, "no-such.pem"));
            Assert.True(missing.ExitCode == 2, missing.ToString());
            Assert.Contains("--tls-certificate is '", missing.StandardError);
            Assert.Contains("does not exist", missing.StandardError);
            var keyless = await CliProcess.RunAsync(environment, "list", "--tls-certificate", client.Certificate);
            Assert.True(keyless.ExitCode == 2, keyless.ToString());
            Assert.Contains("--tls-certificate", keyless.StandardError);
        }
        catch
        {
            output.WriteLine($"--- silo-0 ---\n{silo0.Output}\n--- silo-1 ---\n{silo1.Output}");
            throw;
        }
    }

    [Fact]
    public async Task A_silo_refuses_to_start_with_an_unreadable_or_expired_certificate_naming_the_setting()
    {
        var directory = TestData.NewDirectory("mutual-tls-bad");
        using var authority = new TestCertificates(directory, "cluster");
        var expired = authority.Issue("expired", notAfter: DateTimeOffset.UtcNow.AddMinutes(-1));
        var garbage = Path.Combine(directory, "garbage.pem");
        await File.WriteAllTextAsync(garbage, "not a certificate");
        foreach (var (settings, expected) in new (Dictionary<string, string> Settings, string Expected)[]
        {
            (new() { ["Silo__Tls__CertificatePath"] = Path.Combine(directory, "missing.pem") }, "Silo:Tls:CertificatePath is '"),
            (new() { ["Silo__Tls__CertificatePath"] = garbage }, "Silo:Tls:CertificatePath is '" + garbage),
            (new() { ["Silo__Tls__CertificatePath"] = expired.Certificate, ["Silo__Tls__KeyPath"] = expired.Key }, "which is valid only from"),
            (new() { ["Silo__Tls__CertificateAuthorityPath"] = authority.AuthorityPath }, "Silo:Tls:CertificateAuthorityPath is set but Silo:Tls:CertificatePath is not"),
        })
        {
            var ports = Ports.Free(3);
            settings["Orleans__ClusterId"] = $"tls-bad-{Guid.NewGuid():N}";
            settings["Orleans__Endpoints__SiloPort"] = ports[0].ToString(CultureInfo.InvariantCulture);
            settings["Orleans__Endpoints__GatewayPort"] = ports[1].ToString(CultureInfo.InvariantCulture);
            settings["ASPNETCORE_URLS"] = $"http://127.0.0.1:{ports[2]}";
            settings["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
            await using var silo = ChildProcess.Start(BuiltPrograms.Silo, [], settings, directory);
            Assert.True(await silo.WaitForExitAsync(Timeout), "the silo with bad TLS settings kept running");
            Assert.True(silo.ExitCode == 2, $"exit {silo.ExitCode}:\n{silo.Output}");
            Assert.Contains(expected, silo.Output);
        }
    }
}
