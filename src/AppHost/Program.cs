using Platform.AppHost;

// A small orchestrator standing in for a .NET Aspire AppHost: starts the services a setup needs (redis-server, Azurite)
// and silos as child processes (configured with the environment variables Aspire would set), runs the word-count demo
// on them, prints the result and stops them. Every process it starts is stopped on the way out: on success, on an
// error, on Ctrl+C or SIGTERM.
AppHostOptions options;
try
{
    options = AppHostOptions.Parse(args);
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    Console.Error.WriteLine();
    Console.Error.WriteLine(AppHostOptions.Usage);
    return 2;
}

if (options.Help)
{
    Console.WriteLine(AppHostOptions.Usage);
    return 0;
}

var console = new ConsoleOutput();
using var signals = new ShutdownSignals(console);
LocalServices? services = null;
LocalCluster? cluster = null;
var demoSucceeded = false;
try
{
    var layout = RepositoryLayout.Locate();
    var input = Path.GetFullPath(options.Input ?? layout.DefaultInput);
    var output = Path.GetFullPath(options.Output ?? layout.DefaultOutput);
    if (!File.Exists(input))
    {
        console.Error($"the input file {input} does not exist (option --input).");
        return 2;
    }

    await layout.EnsureSiloBuiltAsync(console, signals.Token);

    // Everything of this run (the silos' shared state, checkpoints, RocksDB files, the services' data) in one folder.
    var clusterId = LocalCluster.NewClusterId();
    var runDirectory = Path.Combine(layout.Root, ".artifacts", "apphost", clusterId);
    services = await LocalServices.StartAsync(options, layout, runDirectory, console, signals.Token);
    cluster = await LocalCluster.StartAsync(clusterId, options, services, runDirectory, layout, console, signals.Token);
    await using var connection = await ClusterConnection.ConnectAsync(cluster, console, signals.Token);
    demoSucceeded = await WordCountDemo.RunAsync(connection.Client, input, output, options.Parallelism, cluster.NameOf, console, signals.Token);
    var streamingJob = demoSucceeded && options.KeepRunning
        ? await StreamingDemo.StartAsync(connection.Client, options.Parallelism, console, signals.Token)
        : null;

    console.Line();
    console.Line($"Cluster '{cluster.ClusterId}' (service '{cluster.ServiceId}'){(options.Clustering == ClusteringChoice.Development ? ", silo-0 is the primary" : ", membership in Redis")}:");
    foreach (var silo in cluster.Silos)
    {
        console.Line($"  {silo.Spec.Name} pid={silo.Id} silo={silo.Spec.SiloEndpoint} gateway={silo.Spec.GatewayEndpoint} http={silo.Spec.HttpAddress}");
    }

    if (services.RedisConnectionString is { } redis)
    {
        console.Line($"  redis {redis} (cluster membership)");
    }

    if (services.AzuriteBlobEndpoint is { } blob)
    {
        console.Line($"  azurite {blob} (checkpoints)");
    }

    console.Line($"  run directory {runDirectory}");

    if (demoSucceeded && options.KeepRunning)
    {
        console.Line();
        console.Info("the cluster keeps running; press Ctrl+C to stop it");
        await StreamingDemo.WatchAsync(connection.Client, streamingJob!, console, signals.Token);
        await Task.Delay(Timeout.Infinite, signals.Token);
    }

    return demoSucceeded ? 0 : 1;
}
catch (OperationCanceledException) when (signals.Token.IsCancellationRequested)
{
    // After a successful demo with --keep-running, Ctrl+C is the expected way out.
    return demoSucceeded ? 0 : signals.ExitCode;
}
catch (AppHostException ex)
{
    console.Error(ex.Message);
    return 1;
}
catch (Exception ex)
{
    console.Error(ex.ToString());
    return 1;
}
finally
{
    // The silos first, then the services they use, even when stopping the silos failed.
    try
    {
        if (cluster is not null)
        {
            await cluster.DisposeAsync();
        }
    }
    finally
    {
        if (services is not null)
        {
            await services.DisposeAsync();
        }
    }
}
