using Platform.AppHost;

// A small orchestrator standing in for a .NET Aspire AppHost: starts silos as child processes (configured with the
// environment variables Aspire would set), runs the word-count demo on them, prints the result and stops them.
// Every silo it starts is stopped on the way out: on success, on an error, on Ctrl+C or SIGTERM.
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
    cluster = await LocalCluster.StartAsync(options.Silos, layout, console, signals.Token);
    await using (var connection = await ClusterConnection.ConnectAsync(cluster, console, signals.Token))
    {
        demoSucceeded = await WordCountDemo.RunAsync(connection.Client, input, output, options.Parallelism, cluster.NameOf, console, signals.Token);
    }

    console.Line();
    console.Line($"Cluster '{cluster.ClusterId}' (service '{cluster.ServiceId}'), silo-0 is the primary:");
    foreach (var silo in cluster.Silos)
    {
        console.Line($"  {silo.Spec.Name} pid={silo.Id} silo={silo.Spec.SiloEndpoint} gateway={silo.Spec.GatewayEndpoint} http={silo.Spec.HttpAddress}");
    }

    if (demoSucceeded && options.KeepRunning)
    {
        console.Line();
        console.Info("the cluster keeps running; press Ctrl+C to stop it");
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
    if (cluster is not null)
    {
        await cluster.DisposeAsync();
    }
}
