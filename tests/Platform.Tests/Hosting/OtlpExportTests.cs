using System.Globalization;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Platform.Checkpointing;
using Platform.Client;
using Platform.Diagnostics;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Platform.Tests.Hosting;

/// <summary>The real silo host exports over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, as .NET Aspire sets it.</summary>
[Collection(HostingCollection.Name)]
public sealed class OtlpExportTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task The_silo_host_sends_traces_metrics_and_logs_over_otlp_http()
    {
        await using var receiver = new OtlpReceiver();
        var ports = Ports.Free(3);
        var clusterId = $"otlp-{Guid.NewGuid():N}";
        const string serviceId = "platform-otlp-tests";
        const string serviceName = "platform-otlp-test-silo";
        await using var silo = ChildProcess.Start(BuiltPrograms.Silo, [], new Dictionary<string, string>
        {
            ["Orleans__ClusterId"] = clusterId,
            ["Orleans__ServiceId"] = serviceId,
            ["Orleans__Endpoints__SiloPort"] = ports[0].ToString(CultureInfo.InvariantCulture),
            ["Orleans__Endpoints__GatewayPort"] = ports[1].ToString(CultureInfo.InvariantCulture),
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{ports[2]}",
            ["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
            ["Platform__StateDirectory"] = Path.Combine(TestData.NewDirectory("silo"), "state"),
            ["Platform__CheckpointDirectory"] = Path.Combine(TestData.NewDirectory("silo"), "checkpoints"),
            // What .NET Aspire injects into a project resource (with its short export intervals), over http/protobuf.
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Endpoint,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_SERVICE_NAME"] = serviceName,
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "500",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
            ["OTEL_BLRP_SCHEDULE_DELAY"] = "200",
        });
        try
        {
            await Poll.UntilAsync(
                async () => !silo.HasExited ? await SiloHostTests.IsLiveAsync(ports[2]) : throw new InvalidOperationException($"The silo exited with code {silo.ExitCode}:\n{silo.Output}"),
                Timeout,
                () => $"the silo answers on http://127.0.0.1:{ports[2]}/health/live\n{silo.Output}");
            using var client = await SiloHostTests.ConnectAsync(clusterId, serviceId, ports[1]);
            var platform = new PlatformClient(client.Services.GetRequiredService<IClusterClient>());

            // A short checkpointed job: its checkpoints are the platform's spans and metrics.
            var settings = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(200), Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("otlp-checkpoints") };
            var jobId = await platform.SubmitAsync(WordCountJob.BuildGenerated(6_000, 20, 1, 3_000, settings));
            var status = await platform.WaitForCompletionAsync(jobId, Timeout);
            Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
            Assert.True((await platform.GetCheckpointStatisticsAsync(jobId)).Completed > 0, "the job completed checkpoints");

            await Poll.UntilAsync(
                () => Task.FromResult(
                    Contains(receiver.Bodies("/v1/traces"), PlatformTelemetry.Spans.Checkpoint)
                    && Contains(receiver.Bodies("/v1/metrics"), PlatformTelemetry.MeterName)
                    && Contains(receiver.Bodies("/v1/metrics"), "platform.checkpoint.completed")
                    && Contains(receiver.Bodies("/v1/logs"), "Platform")),
                Timeout,
                () => $"checkpoint spans, the platform's metrics and logs arrive (requests so far: {string.Join(", ", receiver.Paths)})\n{silo.Output}");

            // The resource names the service as OTEL_SERVICE_NAME says, in every signal; Orleans' meter is exported too.
            Assert.True(Contains(receiver.Bodies("/v1/traces"), serviceName), "traces carry the service name");
            Assert.True(Contains(receiver.Bodies("/v1/logs"), serviceName), "logs carry the service name");
            Assert.True(Contains(receiver.Bodies("/v1/metrics"), PlatformTelemetry.OrleansMeterName), "Orleans' meter is exported");
            Assert.True(Contains(receiver.Bodies("/v1/metrics"), jobId), "the platform's metrics carry the job's id");
            await client.StopAsync();
        }
        finally
        {
            output.WriteLine(silo.Output);
        }
    }

    // OTLP's protobuf keeps strings as UTF-8 bytes: a name in the payload is found as is.
    private static bool Contains(IReadOnlyList<byte[]> bodies, string text)
    {
        var needle = Encoding.UTF8.GetBytes(text);
        return bodies.Any(b => b.AsSpan().IndexOf(needle) >= 0);
    }
}
