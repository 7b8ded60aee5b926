using System.Globalization;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Platform.AppHost;

/// <summary>
/// Runs the word-count demo inside the AppHost once Aspire reports every silo healthy, prints its results and then stops
/// the whole application (or, with <c>--keep-running</c>, starts the endless streaming job and keeps it up until Ctrl+C).
/// </summary>
/// <remarks>
/// The demo is a client of the cluster, not part of it, and its output belongs on the AppHost's console beside the
/// dashboard's URL; in this process it also sees the silos' health from Aspire itself and decides when the application
/// ends, which a project resource could not do.
/// </remarks>
internal sealed class DemoService(
    DemoSettings settings,
    DemoOutcome outcome,
    ConsoleOutput console,
    ResourceNotificationService notifications,
    DistributedApplicationModel model,
    IHostApplicationLifetime lifetime) : BackgroundService
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(3);

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Let the host finish starting (and Aspire print the dashboard's address) before the demo's lines.
        await Task.Yield();
        try
        {
            outcome.ExitCode = await RunAsync(stoppingToken) ? 0 : 1;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Ctrl+C or SIGTERM: a successful demo with --keep-running ends this way; anything earlier is an interruption.
            outcome.ExitCode = outcome.Completion.Task.IsCompletedSuccessfully && outcome.Result is not null ? 0 : 130;
        }
        catch (Exception ex)
        {
            console.Error(ex is AppHostException ? ex.Message : ex.ToString());
            outcome.ExitCode = 1;
        }
        finally
        {
            outcome.Completion.TrySetResult(outcome.Result);
            if (!settings.Options.KeepRunning || outcome.ExitCode != 0)
            {
                lifetime.StopApplication();
            }
        }
    }

    private async Task<bool> RunAsync(CancellationToken cancellationToken)
    {
        var options = settings.Options;
        var clustering = options.Clustering switch
        {
            ClusteringChoice.Redis => "Redis clustering",
            ClusteringChoice.AzureStorage => "Azure Table clustering, Azure Blob control state",
            _ => $"development clustering, primary {settings.Silos[0].SiloEndpoint}",
        };
        console.Info($"starting {settings.Silos.Count} silo{(settings.Silos.Count == 1 ? "" : "s")} of cluster '{settings.ClusterId}' ({clustering}; " +
                     $"{(options.Storage == StorageChoice.AzureBlob ? "Azure Blob" : "file-system")} checkpoints; {(options.Backend == BackendChoice.RocksDb ? "RocksDB" : "heap")} state)");

        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            deadline.CancelAfter(StartTimeout);
            try
            {
                foreach (var service in new[] { "redis", "azurite" })
                {
                    if (notifications.TryGetCurrentState(service, out _))
                    {
                        await notifications.WaitForResourceHealthyAsync(service, WaitBehavior.StopOnResourceUnavailable, deadline.Token);
                        console.Info($"{service} pid={Pid(service)} {ServiceAddress(service)}is healthy");
                    }
                }

                foreach (var silo in settings.Silos)
                {
                    await notifications.WaitForResourceHealthyAsync(silo.Name, WaitBehavior.StopOnResourceUnavailable, deadline.Token);
                    console.Info($"{silo.Name} pid={Pid(silo.Name)} silo={silo.SiloEndpoint} gateway={silo.GatewayEndpoint} http={silo.HttpAddress} is healthy");
                }

                if (DashboardUrl() is { } dashboard)
                {
                    console.Info($"dashboard: {dashboard} (resources, logs, traces and metrics; the login link with its token is printed above)");
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new AppHostException($"The silos were not all healthy within {StartTimeout.TotalMinutes:0} minutes; the dashboard shows each resource's state and logs.");
            }
            catch (DistributedApplicationException ex)
            {
                throw new AppHostException($"{ex.Message} The dashboard shows the resource's logs.");
            }
        }

        await using var connection = await ClusterConnection.ConnectAsync(settings, console, cancellationToken);
        var result = await WordCountDemo.RunAsync(connection.Client, settings.Input, settings.Output, options.Parallelism, settings.NameOf, console, cancellationToken);
        outcome.Result = result;
        if (result is null)
        {
            return false;
        }

        var streamingJob = options.KeepRunning ? await StreamingDemo.StartAsync(connection.Client, options.Parallelism, console, cancellationToken) : null;
        console.Line();
        var membership = options.Clustering switch
        {
            ClusteringChoice.Redis => ", membership in Redis",
            ClusteringChoice.AzureStorage => ", membership in Azure Table storage",
            _ => ", silo-0 is the primary",
        };
        console.Line($"Cluster '{settings.ClusterId}' (service '{DemoSettings.ServiceId}'){membership}");
        console.Line($"  run directory {settings.RunDirectory}");
        outcome.Completion.TrySetResult(result);

        if (streamingJob is not null)
        {
            console.Line();
            console.Info("the application keeps running; press Ctrl+C to stop it");
            await StreamingDemo.WatchAsync(connection.Client, streamingJob, console, cancellationToken);
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        console.Info("stopping the application");
        return true;
    }

    /// <summary>The dashboard's address, once DCP has given its resource an endpoint; <c>null</c> without a dashboard.</summary>
    private string? DashboardUrl() =>
        model.Resources.FirstOrDefault(r => r.Name == DashboardResourceName) is IResourceWithEndpoints dashboard
        && dashboard.Annotations.OfType<EndpointAnnotation>().FirstOrDefault(e => e.AllocatedEndpoint is not null) is { } endpoint
            ? endpoint.AllocatedEndpoint!.UriString
            : null;

    private const string DashboardResourceName = "aspire-dashboard";

    private string Pid(string resource) =>
        notifications.TryGetCurrentState(resource, out var state)
        && state.Snapshot.Properties.FirstOrDefault(p => p.Name == "executable.pid")?.Value is { } pid
            ? Convert.ToString(pid, CultureInfo.InvariantCulture) ?? "?"
            : "?";

    private string ServiceAddress(string resource) =>
        notifications.TryGetCurrentState(resource, out var state) && state.Resource is IResourceWithEndpoints endpoints
            ? string.Concat(endpoints.Annotations.OfType<EndpointAnnotation>().Select(e => $"{e.Name}=127.0.0.1:{e.Port} "))
            : "";
}

/// <summary>How the demo ended: the exit code of the AppHost and, for tests, the counts it found.</summary>
internal sealed class DemoOutcome
{
    /// <summary>0 when the demo finished; 1 on a failure; 130 when interrupted before it finished.</summary>
    public int ExitCode { get; set; } = 1;

    /// <summary>The demo's result once it has one (<c>null</c> when it failed).</summary>
    public WordCountResult? Result { get; set; }

    /// <summary>Completed with the result once the word-count job has ended (and its results are printed).</summary>
    public TaskCompletionSource<WordCountResult?> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>Registers the demo with the AppHost's services.</summary>
internal static class DemoServiceExtensions
{
    /// <summary>Adds the demo (it starts with the application).</summary>
    public static IServiceCollection AddDemo(this IServiceCollection services, DemoSettings settings) => services
        .AddSingleton(settings)
        .AddSingleton<DemoOutcome>()
        .AddSingleton<ConsoleOutput>()
        .AddHostedService<DemoService>();

    /// <summary>The AppHost's exit code after the application stopped.</summary>
    public static int GetDemoExitCode(this IServiceProvider services) => services.GetRequiredService<DemoOutcome>().ExitCode;
}
