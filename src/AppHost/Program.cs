using Aspire.Hosting;
using Platform.AppHost;
using Platform.AppHost.Resources;

// The .NET Aspire AppHost. Each silo is a project resource (src/Silo) carrying the Orleans resource's keys; redis-server
// and Azurite, when an option asks for them, are executable resources (no container runtime needed); the silos wait for
// them. The word-count demo runs in this process once every silo is healthy (DemoService), and then the application stops.
if (AppHostOptions.IsHelp(args))
{
    Console.WriteLine(AppHostOptions.Usage);
    return 0;
}

IDistributedApplicationBuilder builder;
AppHostOptions options;
RepositoryLayout layout;
try
{
    builder = DistributedApplication.CreateBuilder(AppHostOptions.ToConfigurationArguments(args));
    options = AppHostOptions.From(builder.Configuration);
    layout = RepositoryLayout.Locate();
    LocalDashboard.AddDefaults(builder.Configuration);
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    Console.Error.WriteLine();
    Console.Error.WriteLine(AppHostOptions.Usage);
    return 2;
}
catch (AppHostException ex)
{
    Console.Error.WriteLine($"[apphost] error: {ex.Message}");
    return 1;
}

var demo = DemoSettings.Create(options, layout);
if (!File.Exists(demo.Input))
{
    Console.Error.WriteLine($"error: the input file {demo.Input} does not exist (option --input).");
    return 2;
}

try
{
    var runDirectory = demo.RunDirectory;

    var orleans = builder.AddOrleans("platform")
        .WithClusterId(demo.ClusterId)
        .WithServiceId(DemoSettings.ServiceId);

    // One Azurite for whatever asks for Azure Storage: checkpoints (--storage azure), clustering (--clustering azure).
    IResourceBuilder<AzuriteResource>? azurite = null;
    if (options.Storage == StorageChoice.AzureBlob || options.Clustering == ClusteringChoice.AzureStorage)
    {
        azurite = builder.AddAzurite("azurite", layout.AzuriteScript, Path.Combine(runDirectory, "azurite"));
    }

    IResourceBuilder<RedisServerResource>? redis = null;
    if (options.Clustering == ClusteringChoice.Redis)
    {
        // Membership and the platform's control state (job managers, coordinators, stream subscriptions) in Redis.
        redis = builder.AddRedisServer("redis", Path.Combine(runDirectory, "redis"));
        orleans.WithClustering(redis)
            .WithGrainStorage("platform-state", redis)
            .WithGrainStorage("PubSubStore", redis);
    }
    else if (options.Clustering == ClusteringChoice.AzureStorage && azurite is not null)
    {
        // Membership in Azurite's Table service (provider AzureTableStorage), the control state in its Blob service
        // (AzureBlobStorage, container grainstate): the Container Apps deployment's layout, on one storage account.
        var grainState = azurite.AddService("grainstate", "blob");
        orleans.WithClustering(azurite.AddService("clustering", "table"))
            .WithGrainStorage("platform-state", grainState)
            .WithGrainStorage("PubSubStore", grainState);
    }
    else
    {
        // silo-0 keeps the membership table; every silo is told its endpoint below (Aspire leaves the primary out).
        orleans.WithDevelopmentClustering();
    }

    IResourceBuilder<AzuriteServiceResource>? checkpoints = null;
    if (options.Storage == StorageChoice.AzureBlob && azurite is not null)
    {
        checkpoints = azurite.AddService("checkpoints", "blob");
    }

    IResourceBuilder<ProjectResource>? primary = null;
    foreach (var spec in demo.Silos)
    {
        var silo = builder.AddProject<Projects.Platform_Silo>(spec.Name)
            .WithReference(orleans)
            .WithSiloEndpoints(spec)
            .WithHttpHealthCheck("/health/ready")
            .WithEnvironment("Orleans__Name", spec.Name)
            .WithEnvironment("Orleans__Endpoints__AdvertisedIPAddress", "127.0.0.1")
            // The platform's own state and the checkpoints are shared by the silos of this run and start empty.
            .WithEnvironment("Platform__StateDirectory", Path.Combine(runDirectory, "state"))
            .WithEnvironment("Platform__CheckpointDirectory", Path.Combine(runDirectory, "checkpoints"))
            .WithEnvironment("Platform__SavepointDirectory", Path.Combine(runDirectory, "savepoints"))
            .WithEnvironment("Platform__RocksDb__LocalDirectory", Path.Combine(runDirectory, "rocksdb"))
            .WithEnvironment("Platform__DefaultStateBackend", options.Backend == BackendChoice.RocksDb ? "RocksDb" : "Heap")
            // The demo job's input and output are the only files its jobs may touch.
            .WithEnvironment("Platform__DataRoots__0", Path.GetDirectoryName(demo.Input)!)
            .WithEnvironment("Platform__DataRoots__1", demo.Output);

        if (options.Clustering == ClusteringChoice.Development)
        {
            silo.WithEnvironment("Orleans__Clustering__PrimarySiloEndPoint", demo.Silos[0].SiloEndpoint.ToString());
            if (primary is not null)
            {
                silo.WaitFor(primary);
            }
        }

        if (redis is not null)
        {
            silo.WaitFor(redis);
        }

        if (azurite is not null)
        {
            silo.WaitFor(azurite);
        }

        if (checkpoints is not null)
        {
            // ConnectionStrings__checkpoints, which the platform's Azure Blob checkpoint storage reads by default.
            silo.WithReference(checkpoints)
                .WithEnvironment("Platform__DefaultCheckpointStorage", "AzureBlob")
                .WithEnvironment("Platform__SavepointStorage", "AzureBlob");
        }

        primary ??= silo;
    }

    builder.Services.AddDemo(demo);

    await using var app = builder.Build();
    var watchdog = StartupWatchdog.WatchAsync(app.Services);
    await app.RunAsync();
    await watchdog;
    return app.Services.GetDemoExitCode();
}
catch (AppHostException ex)
{
    Console.Error.WriteLine($"[apphost] error: {ex.Message}");
    return 1;
}
