using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime;
using Platform.Hosting;
using Platform.Samples;
using Platform.Security;
using Orleans.Dashboard;
using Platform.Silo.Hosting;
using Platform.Silo.Rest;
using Platform.Silo.Security;
using Platform.Silo.WebUi;

// The silo host: an Orleans silo with the streaming platform, an HTTP endpoint, and configuration from appsettings.json,
// environment variables and the command line. Orleans reads the "Orleans" section (the keys .NET Aspire sets:
// Orleans__ClusterId, Orleans__Clustering__ProviderType, Orleans__Clustering__ServiceKey, Orleans__Endpoints__SiloPort, ...);
// the platform reads "Platform".
//
// The working directory matters: jobs name input and output files as the silo sees them, and a relative path resolves
// against the directory the silo was started in (appsettings.json is always read from beside the binary).
WebApplication app;
string? defaults;
var dashboard = true;
try
{
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
    defaults = SiloConfiguration.AddDefaults(builder.Configuration);
    SiloConfiguration.ThrowIfInvalid(builder.Configuration);
    SiloConfiguration.ThrowIfPortsInUse(builder.Configuration);
    // Logs, metrics and traces over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (as .NET Aspire sets it), else nothing.
    builder.AddStreamingPlatformTelemetry();

    if (string.IsNullOrWhiteSpace(builder.Configuration["urls"])
        && string.IsNullOrWhiteSpace(builder.Configuration["http_ports"])
        && string.IsNullOrWhiteSpace(builder.Configuration["https_ports"])
        && !builder.Configuration.GetSection("Kestrel:Endpoints").Exists())
    {
        builder.WebHost.UseUrls(SiloConfiguration.DefaultUrl);
    }

    // Redis for clustering or grain storage: reachable now, and the keyed connections a ServiceKey names (which Aspire's
    // Redis client integration would register).
    await RedisConnections.RegisterAsync(builder.Configuration, builder.Services);
    RedisConnections.UseBinaryStateFormat(builder.Configuration, builder.Services, PlatformStreams.StateStorageName, PlatformSiloBuilderExtensions.PubSubStoreName);
    // Azure Table / Blob storage for clustering or grain storage: the keyed clients a ServiceKey names (as Aspire's Azure
    // Storage client integrations would register), and the same binary state format.
    AzureStorageConnections.Register(builder.Configuration, builder.Services);
    AzureStorageConnections.UseBinaryStateFormat(builder.Configuration, builder.Services, PlatformStreams.StateStorageName, PlatformSiloBuilderExtensions.PubSubStoreName);

    builder.Services.AddSiloHealthChecks();

    // Flink's REST API, the web UI and the Orleans Dashboard, over the one client setup the CLI uses too.
    builder.Services.AddFlinkRestApi();
    builder.Services.AddPlatformHttpSecurity(builder.Configuration);
    dashboard = builder.Configuration.GetValue($"{HttpSecurityOptions.SectionName}:{nameof(HttpSecurityOptions.Dashboard)}", true);

    try
    {
        builder.UseOrleans(silo =>
        {
            silo.AddStreamingPlatform();
            // The demo jobs, startable by name (platform run word-count).
            silo.AddJobs(SampleJobs.All);
            // The Orleans Dashboard at /dashboard (its grain profiler runs only while someone watches).
            if (dashboard)
            {
                silo.AddDashboard();
            }
            // Mutual TLS between silos and on the gateway (Silo:Tls), checked by SiloConfiguration.Validate above.
            if (SiloConfiguration.Tls(builder.Configuration) is { Enabled: true } tls)
            {
                var certificate = ClusterTls.LoadCertificate(tls);
                var authorities = ClusterTls.LoadAuthorities(tls);
                silo.UseTls(certificate, options => ClusterTls.Configure(options, certificate, authorities));
            }

            // Failure detection (Orleans' ClusterMembershipOptions: ProbeTimeout, NumMissedProbesLimit, ...).
            silo.Configure<ClusterMembershipOptions>(builder.Configuration.GetSection(SiloConfiguration.MembershipSection));
        });
    }
    catch (InvalidOperationException ex)
    {
        // For example an unknown Orleans:Clustering:ProviderType ("Could not find Clustering provider named ...").
        throw new SiloConfigurationException([SiloConfiguration.DescribeProviderError(ex)], ex);
    }

    if (int.TryParse(builder.Configuration[SiloConfiguration.ParentProcessIdKey], out var parentProcessId))
    {
        builder.Services.AddHostedService(services => ActivatorUtilities.CreateInstance<ParentProcessWatcher>(services, parentProcessId));
    }

    app = builder.Build();
}
catch (Exception ex)
{
    return StartupFailure.Report(ex, Console.Error, alreadyLogged: false);
}

await using (app)
{
    app.MapGet("/", (ILocalSiloDetails silo, IOptions<ClusterOptions> cluster) =>
        $"Platform silo {silo.Name} ({silo.SiloAddress}) in cluster '{cluster.Value.ClusterId}'; health at " +
        $"{SiloHealthChecks.StartupPath}, {SiloHealthChecks.ReadyPath} and {SiloHealthChecks.LivePath}; web UI at {WebUi.Path}/, " +
        $"REST API at /jobs (described at /openapi/v1.json), Orleans Dashboard at {WebUi.DashboardPath}/.");
    app.MapSiloHealthChecks();
    app.UseAuthentication();
    app.UseAuthorization();
    app.UseWebUi();
    app.MapOpenApi();
    app.MapFlinkRestApi();
    app.MapWebUi();
    if (dashboard)
    {
        app.MapOrleansDashboard(WebUi.DashboardPath).RequireAuthorization(FlinkRestApi.AdminPolicy);
    }

    try
    {
        await app.StartAsync();
    }
    catch (Exception ex)
    {
        // Services that did start (the silo starts before the HTTP server) leave the cluster before the process exits.
        using (var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(15)))
        {
            try
            {
                await app.StopAsync(stopping.Token);
            }
            catch (Exception stopError) when (stopError is OperationCanceledException or InvalidOperationException or AggregateException or ArgumentException)
            {
                // Best effort: the process is exiting with the original error either way. A host whose start failed before
                // it had resolved its hosted services throws ArgumentNullException here (it would crash the process).
            }
        }

        return StartupFailure.Report(ex, Console.Error, alreadyLogged: true);
    }

    var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Platform.Silo");
    if (defaults is not null)
    {
        SiloLog.DefaultsApplied(logger, defaults);
    }

    var details = app.Services.GetRequiredService<ILocalSiloDetails>();
    var clusterOptions = app.Services.GetRequiredService<IOptions<ClusterOptions>>().Value;
    var configuration = app.Services.GetRequiredService<IConfiguration>();
    SiloLog.SiloStarted(
        logger,
        details.Name,
        details.SiloAddress.Endpoint.ToString(),
        details.GatewayAddress?.Endpoint.ToString() ?? "(none)",
        clusterOptions.ClusterId,
        clusterOptions.ServiceId,
        configuration[SiloConfiguration.ClusteringProviderTypeKey] ?? "(default)",
        string.Join(", ", app.Urls),
        Environment.CurrentDirectory);

    await app.WaitForShutdownAsync();
    return 0;
}
