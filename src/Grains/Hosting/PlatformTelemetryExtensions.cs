using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Platform.Diagnostics;

namespace Orleans.Hosting;

/// <summary>
/// OpenTelemetry for a silo that runs the streaming platform: the platform's meter and checkpoint spans
/// (<see cref="PlatformTelemetry"/>) and Orleans' meter and activity sources, exported over OTLP.
/// </summary>
public static class PlatformTelemetryExtensions
{
    /// <summary>The standard variable that turns export on (.NET Aspire sets it for every project resource).</summary>
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>The standard variable naming the service; without it the silo reports itself as <see cref="DefaultServiceName"/>.</summary>
    public const string ServiceNameKey = "OTEL_SERVICE_NAME";

    /// <summary>The service name when <see cref="ServiceNameKey"/> is not set.</summary>
    public const string DefaultServiceName = "platform-silo";

    /// <summary>
    /// When <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (and only then), exports logs, metrics and traces over OTLP the way
    /// .NET Aspire's service defaults do: the standard <c>OTEL_*</c> settings (<c>OTEL_EXPORTER_OTLP_PROTOCOL</c>,
    /// <c>OTEL_EXPORTER_OTLP_HEADERS</c>, <c>OTEL_SERVICE_NAME</c>, <c>OTEL_RESOURCE_ATTRIBUTES</c>,
    /// <c>OTEL_METRIC_EXPORT_INTERVAL</c>, ...) come from configuration, environment variables included. Without it,
    /// nothing is registered and the platform's instruments cost a check each.
    /// </summary>
    public static TBuilder AddStreamingPlatformTelemetry<TBuilder>(this TBuilder builder)
        where TBuilder : IHostApplicationBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (string.IsNullOrWhiteSpace(builder.Configuration[OtlpEndpointKey]))
        {
            return builder;
        }

        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });
        var telemetry = builder.Services.AddOpenTelemetry();
        if (string.IsNullOrWhiteSpace(builder.Configuration[ServiceNameKey]))
        {
            telemetry.ConfigureResource(resource => resource.AddService(DefaultServiceName));
        }

        telemetry
            .WithMetrics(metrics => metrics.AddStreamingPlatformInstrumentation())
            .WithTracing(tracing => tracing.AddStreamingPlatformInstrumentation())
            .UseOtlpExporter();
        return builder;
    }

    /// <summary>Adds the platform's meter (<c>Platform.Streaming</c>) and Orleans' (<c>Microsoft.Orleans</c>), for a silo that wires its own exporters.</summary>
    public static MeterProviderBuilder AddStreamingPlatformInstrumentation(this MeterProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddMeter(PlatformTelemetry.MeterName, PlatformTelemetry.OrleansMeterName);
    }

    /// <summary>
    /// Adds the platform's checkpoint and restore spans (<c>Platform.Streaming.Checkpoints</c>) and Orleans' activity
    /// sources (<c>Microsoft.Orleans.*</c>; grain-call spans need <c>siloBuilder.AddActivityPropagation()</c> as well).
    /// </summary>
    public static TracerProviderBuilder AddStreamingPlatformInstrumentation(this TracerProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddSource(PlatformTelemetry.CheckpointsActivitySourceName, PlatformTelemetry.OrleansActivitySources);
    }
}
