using System.Globalization;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Platform.AppHost;

/// <summary>
/// Says what the application is waiting for while Aspire has not finished starting: every <see cref="Interval"/> until
/// the host reports it started, one line with each resource's state, so that a start that hangs (DCP slow to create its
/// resources, a service that never becomes healthy) is visible on the console instead of silent.
/// </summary>
internal static class StartupWatchdog
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    /// <summary>Watches the application's start in the background; the task ends once it started or is stopping.</summary>
    public static Task WatchAsync(IServiceProvider services)
    {
        var lifetime = services.GetRequiredService<IHostApplicationLifetime>();
        var notifications = services.GetRequiredService<ResourceNotificationService>();
        var model = services.GetRequiredService<DistributedApplicationModel>();
        var console = services.GetRequiredService<ConsoleOutput>();
        return Task.Run(async () =>
        {
            using var done = CancellationTokenSource.CreateLinkedTokenSource(lifetime.ApplicationStarted, lifetime.ApplicationStopping);
            var waited = TimeSpan.Zero;
            while (!done.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(Interval, done.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                waited += Interval;
                console.Info($"Aspire has not finished starting after {waited.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)} s; resources: {Describe(model, notifications)}");
            }
        });
    }

    private static string Describe(DistributedApplicationModel model, ResourceNotificationService notifications)
    {
        var states = model.Resources.Select(resource =>
        {
            if (!notifications.TryGetCurrentState(resource.Name, out var current))
            {
                return $"{resource.Name} (no state yet)";
            }

            var snapshot = current.Snapshot;
            var health = snapshot.HealthStatus is { } status ? $", {status}" : "";
            var exit = snapshot.ExitCode is { } code ? $", exit code {code}" : "";
            return $"{resource.Name} ({snapshot.State?.Text ?? "not started"}{health}{exit})";
        });
        return string.Join("; ", states);
    }
}
