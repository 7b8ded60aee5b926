using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Orleans.Runtime;

namespace Platform.Silo.Hosting;

/// <summary>
/// The silo's health endpoints, for an orchestrator's probes: <c>/health/startup</c> (the silo has started),
/// <c>/health/ready</c> (it is an active member of the cluster and takes work) and <c>/health/live</c> (the process
/// answers). Each runs only the checks with its tag.
/// </summary>
internal static class SiloHealthChecks
{
    public const string StartupPath = "/health/startup";
    public const string ReadyPath = "/health/ready";
    public const string LivePath = "/health/live";

    private const string StartupTag = "startup";
    private const string ReadyTag = "ready";
    private const string LiveTag = "live";

    /// <summary>How long the readiness probe waits for the membership table (a remote store, for Redis clustering).</summary>
    private static readonly TimeSpan MembershipTimeout = TimeSpan.FromSeconds(3);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = false };

    /// <summary>Registers the checks.</summary>
    public static IServiceCollection AddSiloHealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<SiloStartedCheck>("silo-started", tags: [StartupTag])
            .AddCheck<SiloActiveCheck>("silo-active", tags: [ReadyTag])
            // Degraded, not unhealthy, when the membership table cannot be read: readiness must stay local. On Azure
            // Container Apps a replica that is not ready is cut off from its ingress, which carries silo-to-silo traffic,
            // so a Redis brownout failing readiness everywhere would partition the whole cluster. Degraded answers 200
            // and says what is wrong in the body.
            .AddCheck<MembershipCheck>("membership", failureStatus: HealthStatus.Degraded, tags: [ReadyTag])

            // Liveness asks nothing of another process: a remote store that is down must not get a healthy silo restarted.
            .AddCheck("process", () => HealthCheckResult.Healthy("The process answers."), tags: [LiveTag]);
        return services;
    }

    /// <summary>Maps the three endpoints; each answers 200 when its checks pass and 503 otherwise, with a JSON body naming each check.</summary>
    public static void MapSiloHealthChecks(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapHealthChecks(StartupPath, Options(StartupTag));
        endpoints.MapHealthChecks(ReadyPath, Options(ReadyTag));
        endpoints.MapHealthChecks(LivePath, Options(LiveTag));
    }

    private static HealthCheckOptions Options(string tag) => new()
    {
        Predicate = registration => registration.Tags.Contains(tag),
        ResponseWriter = WriteAsync,
    };

    private static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        var body = new
        {
            status = report.Status.ToString(),
            checks = report.Entries.Select(e => new
            {
                name = e.Key,
                status = e.Value.Status.ToString(),
                description = e.Value.Description ?? e.Value.Exception?.Message,
                durationMs = Math.Round(e.Value.Duration.TotalMilliseconds, 1),
            }),
        };
        return context.Response.WriteAsync(JsonSerializer.Serialize(body, Json));
    }

    /// <summary>Startup: the host has started, so the silo has joined its cluster (the silo starts before the HTTP server).</summary>
    private sealed class SiloStartedCheck(IHostApplicationLifetime lifetime, ISiloStatusOracle oracle) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken) =>
            Task.FromResult(lifetime.ApplicationStarted.IsCancellationRequested && oracle.CurrentStatus is not (SiloStatus.None or SiloStatus.Created or SiloStatus.Joining)
                ? HealthCheckResult.Healthy($"The silo has started ({oracle.CurrentStatus}).")
                : HealthCheckResult.Unhealthy($"The silo is starting ({oracle.CurrentStatus})."));
    }

    /// <summary>Ready, locally: this silo sees itself as Active (not joining, shutting down or declared dead).</summary>
    private sealed class SiloActiveCheck(ISiloStatusOracle oracle) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken) =>
            Task.FromResult(oracle.CurrentStatus == SiloStatus.Active
                ? HealthCheckResult.Healthy("The silo is Active.")
                : HealthCheckResult.Unhealthy($"The silo is {oracle.CurrentStatus}, not Active."));
    }

    /// <summary>
    /// Ready, as the cluster sees it: the membership table (the primary silo, or Redis) answers and lists this silo as
    /// Active with its gateway, which is what clients and other silos go by. Reports the registration's failure status
    /// (Degraded) rather than Unhealthy: see <see cref="AddSiloHealthChecks"/>.
    /// </summary>
    private sealed class MembershipCheck(IMembershipTable table, ILocalSiloDetails silo) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken)
        {
            MembershipTableData row;
            try
            {
                row = await table.ReadRowAsync(silo.SiloAddress, cancellationToken).WaitAsync(MembershipTimeout, cancellationToken);
            }
            catch (TimeoutException)
            {
                return new HealthCheckResult(context.Registration.FailureStatus, $"The membership table did not answer within {MembershipTimeout.TotalSeconds:0} s.");
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // The message is enough: a probe that fails every few seconds should not log a stack trace each time.
                return new HealthCheckResult(context.Registration.FailureStatus, $"The membership table cannot be read: {ex.GetType().Name}: {ex.Message}");
            }

            if (row.TryGet(silo.SiloAddress)?.Item1 is not { } entry)
            {
                return new HealthCheckResult(context.Registration.FailureStatus, $"The membership table does not list this silo ({silo.SiloAddress}).");
            }

            if (entry.Status != SiloStatus.Active)
            {
                return new HealthCheckResult(context.Registration.FailureStatus, $"The membership table lists this silo as {entry.Status}.");
            }

            var gateway = silo.GatewayAddress?.Endpoint.Port ?? 0;
            return gateway != 0 && entry.ProxyPort != gateway
                ? new HealthCheckResult(context.Registration.FailureStatus, $"The membership table lists gateway port {entry.ProxyPort} for this silo, not {gateway}.")
                : HealthCheckResult.Healthy(gateway != 0 ? $"Active in the membership table, gateway port {gateway}." : "Active in the membership table (no gateway).");
        }
    }
}
