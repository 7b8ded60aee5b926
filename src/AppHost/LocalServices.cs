using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Platform.AppHost;

/// <summary>
/// The services a chosen setup needs beside the silos, run as child processes on 127.0.0.1 with their data under the
/// run's directory: <c>redis-server</c> for Redis clustering, Azurite's blob service for Azure Blob checkpoints. What a
/// .NET Aspire AppHost would model as <c>AddRedis</c> and <c>AddAzureStorage(...).RunAsEmulator()</c>.
/// </summary>
internal sealed class LocalServices : IAsyncDisposable
{
    /// <summary>Azurite's well-known development account (public, documented by Microsoft; not a secret).</summary>
    private const string AzuriteAccount = "devstoreaccount1";
    private const string AzuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    private readonly List<ManagedProcess> _processes = [];
    private readonly Lock _lock = new();
    private bool _stopped;

    private LocalServices()
    {
    }

    /// <summary>The Redis connection string (StackExchange.Redis format), when Redis runs.</summary>
    public string? RedisConnectionString { get; private set; }

    /// <summary>The connection string of Azurite's blob service, when it runs.</summary>
    public string? AzuriteConnectionString { get; private set; }

    /// <summary>The address of Azurite's blob service, when it runs.</summary>
    public string? AzuriteBlobEndpoint { get; private set; }

    /// <summary>The processes started, for the summary and for stopping them.</summary>
    public IReadOnlyList<ManagedProcess> Processes
    {
        get
        {
            lock (_lock)
            {
                return [.. _processes];
            }
        }
    }

    /// <summary>Starts what <paramref name="options"/> needs (nothing for the embedded defaults) and waits until each answers.</summary>
    public static async Task<LocalServices> StartAsync(AppHostOptions options, RepositoryLayout layout, string runDirectory, ConsoleOutput console, CancellationToken cancellationToken)
    {
        var services = new LocalServices();
        try
        {
            if (options.Clustering == ClusteringChoice.Redis)
            {
                await services.StartRedisAsync(runDirectory, console, cancellationToken);
            }

            if (options.Storage == StorageChoice.AzureBlob)
            {
                await services.StartAzuriteAsync(layout, runDirectory, console, cancellationToken);
            }

            return services;
        }
        catch
        {
            await services.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops every service (after the silos that use them).</summary>
    public async ValueTask DisposeAsync()
    {
        List<ManagedProcess> processes;
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
            processes = [.. _processes];
        }

        await Task.WhenAll(processes.Select(p => p.StopAsync(StopGrace)));
    }

    /// <summary>Kills every service at once (the last resort when the AppHost exits without stopping them).</summary>
    public void Kill()
    {
        foreach (var process in Processes)
        {
            process.Kill();
        }
    }

    private async Task StartRedisAsync(string runDirectory, ConsoleOutput console, CancellationToken cancellationToken)
    {
        var server = FindOnPath("redis-server")
            ?? throw new AppHostException("--clustering redis needs redis-server, which is not on PATH; scripts/install-test-dependencies installs it (Debian package redis-server).");
        var port = FreePorts.Allocate(1)[0];
        var data = Directory.CreateDirectory(Path.Combine(runDirectory, "redis")).FullName;

        // Membership only: no persistence needed, and none of the disk writes that would come with it.
        var process = Add(StartWatched(
            "redis",
            server,
            ["--bind", "127.0.0.1", "--port", port.ToString(CultureInfo.InvariantCulture), "--save", "", "--appendonly", "no", "--dir", data],
            data,
            console));
        RedisConnectionString = $"127.0.0.1:{port}";
        console.Info($"redis pid={process.Id} address=127.0.0.1:{port}");
        await WaitUntilAsync(process, () => AnswersPingAsync(port, cancellationToken), $"redis-server answers PING on 127.0.0.1:{port}", cancellationToken);
        console.Info("redis is up");
    }

    private async Task StartAzuriteAsync(RepositoryLayout layout, string runDirectory, ConsoleOutput console, CancellationToken cancellationToken)
    {
        var script = layout.AzuriteBlobScript;
        if (!File.Exists(script))
        {
            throw new AppHostException($"--storage azure needs Azurite, which is not installed ({script} is missing); scripts/install-test-dependencies installs it with npm.");
        }

        var node = FindOnPath("node") ?? throw new AppHostException("--storage azure needs Node.js (node on PATH) to run Azurite; install the Debian package nodejs.");
        var port = FreePorts.Allocate(1)[0];
        var data = Directory.CreateDirectory(Path.Combine(runDirectory, "azurite")).FullName;
        var process = Add(StartWatched(
            "azurite",
            node,
            [
                script, "--blobHost", "127.0.0.1", "--blobPort", port.ToString(CultureInfo.InvariantCulture), "--location", data,
                // The Azure SDK may speak a newer API version than this Azurite knows.
                "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent",
            ],
            data,
            console));
        AzuriteConnectionString =
            $"DefaultEndpointsProtocol=http;AccountName={AzuriteAccount};AccountKey={AzuriteKey};BlobEndpoint=http://127.0.0.1:{port}/{AzuriteAccount};";
        AzuriteBlobEndpoint = $"http://127.0.0.1:{port}/{AzuriteAccount}";
        console.Info($"azurite pid={process.Id} blob={AzuriteBlobEndpoint}");
        await WaitUntilAsync(process, () => AcceptsAsync(port, cancellationToken), $"Azurite accepts connections on 127.0.0.1:{port}", cancellationToken);
        console.Info("azurite is up");
    }

    /// <summary>
    /// Starts a service under a small shell that stops it when the AppHost's process is gone. Silos watch their parent
    /// themselves (<c>Silo__ParentProcessId</c>); redis-server and Node cannot, and an AppHost killed with SIGKILL (or
    /// by the OOM killer) runs no cleanup, so without the watch they would outlive it. SIGTERM to the shell (how the
    /// AppHost stops a service) is passed on to the service.
    /// </summary>
    private static ManagedProcess StartWatched(string name, string program, IEnumerable<string> arguments, string workingDirectory, ConsoleOutput console)
    {
        if (OperatingSystem.IsWindows() || !File.Exists("/bin/sh"))
        {
            return ManagedProcess.Start(name, program, arguments, new Dictionary<string, string>(), workingDirectory, console);
        }

        const string Watch = """
            parent=$1; shift
            "$@" &
            child=$!
            trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit $?' TERM INT HUP
            while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done
            kill -TERM "$child" 2>/dev/null
            wait "$child"
            """;
        return ManagedProcess.Start(
            name,
            "/bin/sh",
            ["-c", Watch, "watch", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), program, .. arguments],
            new Dictionary<string, string>(),
            workingDirectory,
            console);
    }

    private ManagedProcess Add(ManagedProcess process)
    {
        lock (_lock)
        {
            _processes.Add(process);
            if (_stopped)
            {
                process.Kill();
                throw new OperationCanceledException();
            }
        }

        return process;
    }

    private static async Task WaitUntilAsync(ManagedProcess process, Func<Task<bool>> ready, string what, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (!await ready())
        {
            if (process.HasExited)
            {
                throw new AppHostException($"{process.Name} exited with code {process.ExitCode} while starting; its output is above (lines starting with [{process.Name}]).");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new AppHostException($"Waited {StartTimeout.TotalSeconds:0} s for {what}.");
            }

            await Task.Delay(PollInterval, cancellationToken);
        }
    }

    private static async Task<bool> AcceptsAsync(int port, CancellationToken cancellationToken)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port, cancellationToken);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static async Task<bool> AnswersPingAsync(int port, CancellationToken cancellationToken)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port, cancellationToken);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), cancellationToken);
            var buffer = new byte[64];
            var read = await stream.ReadAsync(buffer, cancellationToken);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            return false;
        }
    }

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program))
            .FirstOrDefault(File.Exists);
}
