using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Platform.Tests.Hosting;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// A real Azurite blob service (<c>azurite-blob</c>, installed under <c>tools/azurite</c> by
/// <c>scripts/install-test-dependencies</c>) on 127.0.0.1 and a free port, with its own data folder; or the whole Azurite
/// (blob, queue and table services, each on a free port) for Orleans' Azure Table membership. It can be killed and
/// started again on the same ports and data, as an outage of the storage service.
/// </summary>
public sealed class AzuriteProcess : IAsyncDisposable
{
    // Azurite's well-known development account (public, documented; not a secret).
    private const string Account = "devstoreaccount1";

    /// <summary>The well-known key of Azurite's development account (public; not a secret).</summary>
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly StringBuilder _output = new();
    private readonly Lock _lock = new();
    private Process? _process;

    private AzuriteProcess(int port, string location, int? queuePort = null, int? tablePort = null)
    {
        Port = port;
        Location = location;
        QueuePort = queuePort;
        TablePort = tablePort;
    }

    /// <summary>The blob service's port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>The queue service's port, when the whole Azurite runs.</summary>
    public int? QueuePort { get; }

    /// <summary>The table service's port, when the whole Azurite runs.</summary>
    public int? TablePort { get; }

    /// <summary>The folder Azurite keeps its data in; it survives a kill.</summary>
    public string Location { get; }

    /// <summary>A connection string to the development account.</summary>
    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName={Account};AccountKey={AccountKey};BlobEndpoint=http://127.0.0.1:{Port}/{Account};";

    /// <summary>A connection string to the development account's table service, as .NET Aspire gives a table resource.</summary>
    public string TableConnectionString => TablePort is { } tablePort
        ? $"DefaultEndpointsProtocol=http;AccountName={Account};AccountKey={AccountKey};TableEndpoint=http://127.0.0.1:{tablePort}/{Account};"
        : throw new InvalidOperationException("This Azurite runs the blob service only; start it with StartWithTablesAsync.");

    /// <summary>Whether the process is running.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>The installed <c>azurite-blob</c> script.</summary>
    public static string Script
    {
        get
        {
            var script = Path.Combine(AzuriteSources, "blob", "main.js");
            return File.Exists(script)
                ? script
                : throw new FileNotFoundException($"Azurite is not installed ({script} is missing); run scripts/install-test-dependencies (needs node and npm).", script);
        }
    }

    private static string AzuriteSources => Path.Combine(BuiltPrograms.Root, "tools", "azurite", "node_modules", "azurite", "dist", "src");

    /// <summary>
    /// Starts two in-process silos (TCP between them) whose checkpoints go to <paramref name="container"/> of this
    /// Azurite, configured by keys as a deployment sets them, plus <paramref name="settings"/>.
    /// </summary>
    public async Task<Orleans.TestingHost.TestCluster> StartClusterAsync(string container, IReadOnlyDictionary<string, string>? settings = null)
    {
        var builder = new Orleans.TestingHost.TestClusterBuilder(2);
        builder.Options.ClusterId = $"blob-{Guid.NewGuid():N}";
        builder.Options.ServiceId = "platform-blob-tests";
        builder.Options.ConnectionTransport = Orleans.TestingHost.ConnectionTransportType.TcpSocket;
        builder.UseSharedDirectories(TestData.NewDirectory("blob-cluster"));
        builder.Properties["Platform:DefaultCheckpointStorage"] = "AzureBlob";
        builder.Properties["Platform:AzureBlob:ConnectionString"] = ConnectionString;
        builder.Properties["Platform:AzureBlob:ContainerName"] = container;
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            builder.Properties[key] = value;
        }

        builder.AddSiloBuilderConfigurator<PlatformTestSiloConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    /// <summary>Starts Azurite on a free port with a new data folder, and returns once it answers.</summary>
    public static async Task<AzuriteProcess> StartAsync()
    {
        var azurite = new AzuriteProcess(Ports.Free(1)[0], TestData.NewDirectory("azurite"));
        await azurite.StartAgainAsync();
        return azurite;
    }

    /// <summary>Starts the whole Azurite (blob, queue and table services on free ports) with a new data folder.</summary>
    public static async Task<AzuriteProcess> StartWithTablesAsync()
    {
        var ports = Ports.Free(3);
        var azurite = new AzuriteProcess(ports[0], TestData.NewDirectory("azurite"), ports[1], ports[2]);
        await azurite.StartAgainAsync();
        return azurite;
    }

    /// <summary>Starts the process (again) on the same port and data folder, and returns once it accepts connections.</summary>
    public async Task StartAgainAsync()
    {
        if (IsRunning)
        {
            throw new InvalidOperationException("Azurite is already running.");
        }

        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Location,
        };
        var services = TablePort is { } tablePort
            ? new[]
            {
                Path.Combine(AzuriteSources, "azurite.js"), "--blobHost", "127.0.0.1", "--blobPort", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--queueHost", "127.0.0.1", "--queuePort", QueuePort!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--tableHost", "127.0.0.1", "--tablePort", tablePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }
            : [Script, "--blobHost", "127.0.0.1", "--blobPort", Port.ToString(System.Globalization.CultureInfo.InvariantCulture)];
        foreach (var arg in services.Concat(new[]
        {
            "--location", Location, "--debug", Path.Combine(Location, "debug.log"),
            // The SDK may speak a newer API version than this Azurite knows; the calls the storage makes are old ones.
            "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent",
        }))
        {
            start.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        await Poll.UntilAsync(
            async () => process.HasExited
                ? throw new InvalidOperationException($"Azurite exited with code {process.ExitCode} while starting: {Output}")
                : await AcceptsAsync(Port) && (TablePort is not { } table || await AcceptsAsync(table)),
            StartTimeout,
            () => $"Azurite answers on 127.0.0.1:{Port}{(TablePort is { } table ? $" and {table}" : "")}; it wrote: {Output}");
    }

    /// <summary>
    /// Returns once Azurite has saved its metadata and extent databases to disk after this call. Azurite keeps them in
    /// memory and saves them every 5 s, so a kill loses what it acknowledged since; Azure Storage does not, so an outage
    /// test kills it only after a save, to lose nothing acknowledged before the outage.
    /// </summary>
    public Task WaitUntilSavedAsync(TimeSpan timeout)
    {
        var since = DateTime.UtcNow;
        var files = new[] { "__azurite_db_blob__.json", "__azurite_db_blob_extent__.json" }.Select(f => Path.Combine(Location, f)).ToList();
        return Poll.UntilAsync(
            () => files.All(f => File.Exists(f) && File.GetLastWriteTimeUtc(f) > since),
            timeout,
            () => $"Azurite saves {string.Join(" and ", files)} to disk");
    }

    /// <summary>Kills the process (SIGKILL): the service disappears mid-request, its data stays on disk.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
    }

    /// <summary>What the process wrote.</summary>
    public string Output
    {
        get
        {
            lock (_lock)
            {
                return _output.ToString();
            }
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        return ValueTask.CompletedTask;
    }

    private static async Task<bool> AcceptsAsync(int port)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_lock)
            {
                _output.AppendLine(line);
            }
        }
    }
}

/// <summary>One Azurite shared by the tests of a class; each test uses its own container.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    /// <summary>The running Azurite.</summary>
    public AzuriteProcess Azurite { get; private set; } = null!;

    /// <summary>A container name no other test uses.</summary>
    public static string NewContainerName() => $"test-{Guid.NewGuid():N}";

    /// <inheritdoc />
    public async Task InitializeAsync() => Azurite = await AzuriteProcess.StartAsync();

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (Azurite is not null)
        {
            await Azurite.DisposeAsync();
        }
    }
}

/// <summary>One whole Azurite (blob, queue and table services) shared by the tests of a class; each test uses its own tables and containers.</summary>
public sealed class AzuriteWithTablesFixture : IAsyncLifetime
{
    /// <summary>The running Azurite.</summary>
    public AzuriteProcess Azurite { get; private set; } = null!;

    /// <inheritdoc />
    public async Task InitializeAsync() => Azurite = await AzuriteProcess.StartWithTablesAsync();

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (Azurite is not null)
        {
            await Azurite.DisposeAsync();
        }
    }
}
