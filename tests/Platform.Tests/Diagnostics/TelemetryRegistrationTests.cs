using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Hosting;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Platform.Tests.Diagnostics;

/// <summary>What <see cref="PlatformTelemetryExtensions.AddStreamingPlatformTelemetry{TBuilder}"/> registers, with and without an endpoint.</summary>
public sealed class TelemetryRegistrationTests
{
    [Fact]
    public void Without_an_otlp_endpoint_nothing_is_registered()
    {
        using var host = Build(new Dictionary<string, string?>());

        Assert.Null(host.Services.GetService<MeterProvider>());
        Assert.Null(host.Services.GetService<TracerProvider>());
    }

    [Fact]
    public void With_an_otlp_endpoint_metrics_and_traces_are_registered()
    {
        using var host = Build(new Dictionary<string, string?> { [PlatformTelemetryExtensions.OtlpEndpointKey] = "http://127.0.0.1:1" });

        Assert.NotNull(host.Services.GetService<MeterProvider>());
        Assert.NotNull(host.Services.GetService<TracerProvider>());
    }

    private static IHost Build(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddStreamingPlatformTelemetry();
        return builder.Build();
    }
}
