using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Reflection;
using Platform.Testing;

namespace Platform.Benchmarks.ExactlyOnce;

/// <summary>
/// A process of the built silo host (<c>dotnet src/Silo/bin/{configuration}/net10.0/Platform.Silo.dll</c>) clustered
/// through Redis with the keys .NET Aspire sets, as tests/Platform.Tests/Hosting/RedisClusterTests.cs starts them; its
/// output goes to a log file. <see cref="Kill"/> is a SIGKILL: a crash with no chance to announce anything.
/// </summary>
internal sealed class SiloProcess : IAsyncDisposable
{
    /// <summary>The membership table's key in the silo's configuration (<c>ConnectionStrings:clustering</c>).</summary>
    public const string ServiceKey = "clustering";

    /// <summary>The Orleans service id of every benchmark silo.</summary>
    public const string ServiceId = "platform-exactly-once-bench";

    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Lock _lock = new();

    private SiloProcess(Process process, StreamWriter log, string name, int siloPort, int httpPort)
    {
        _process = process;
        _log = log;
        Name = name;
        SiloPort = siloPort;
        HttpPort = httpPort;
    }

    /// <summary>A name for logs and results (silo-0, silo-1, ... in the order started).</summary>
    public string Name { get; }

    /// <summary>The silo-to-silo port: the silo address Orleans reports is <c>S127.0.0.1:{port}:{generation}</c>.</summary>
    public int SiloPort { get; }

    /// <summary>The port of its health endpoints.</summary>
    public int HttpPort { get; }

    /// <summary>Its process id (kept after it exited).</summary>
    public int ProcessId { get; private set; }

    /// <summary>Whether it has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Starts a silo of cluster <paramref name="clusterId"/> whose membership table is in <paramref name="redisConnectionString"/>.</summary>
    /// <param name="name">Its name, also the log file's.</param>
    /// <param name="redisConnectionString">The Redis server of the membership table.</param>
    /// <param name="clusterId">The Orleans cluster id.</param>
    /// <param name="sharedDirectory">State and checkpoints, shared by every silo (one machine); logs go to <c>logs/</c> in it.</param>
    public static SiloProcess Start(string name, string redisConnectionString, string clusterId, string sharedDirectory)
    {
        var siloPort = ServerProcess.FreePort();
        var gatewayPort = ServerProcess.FreePort();
        var httpPort = ServerProcess.FreePort();
        var start = new ProcessStartInfo(DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = sharedDirectory,
        };
        start.ArgumentList.Add(SiloAssembly);
        var environment = new Dictionary<string, string>
        {
            ["Orleans__ClusterId"] = clusterId,
            ["Orleans__ServiceId"] = ServiceId,
            ["Orleans__Clustering__ProviderType"] = "Redis",
            ["Orleans__Clustering__ServiceKey"] = ServiceKey,
            [$"ConnectionStrings__{ServiceKey}"] = redisConnectionString,
            ["Orleans__Endpoints__SiloPort"] = Text(siloPort),
            ["Orleans__Endpoints__GatewayPort"] = Text(gatewayPort),
            ["Orleans__Endpoints__AdvertisedIPAddress"] = "127.0.0.1",

            // Short probes (1 s, 2 missed): a SIGKILLed silo is declared dead in a few seconds, not the default ~14 s.
            ["Orleans__Membership__ProbeTimeout"] = "00:00:01",
            ["Orleans__Membership__NumMissedProbesLimit"] = "2",
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{Text(httpPort)}",

            // A silo whose parent (this benchmark) dies stops too: nothing is left running after a crashed run.
            ["Silo__ParentProcessId"] = Text(Environment.ProcessId),
            ["Platform__StateDirectory"] = Path.Combine(sharedDirectory, "state"),
            ["Platform__CheckpointDirectory"] = Path.Combine(sharedDirectory, "checkpoints"),
            // The job's input and file sink output are under the benchmark's directory.
            ["Platform__DataRoots__0"] = Path.GetDirectoryName(Path.GetFullPath(sharedDirectory))!,
            ["Logging__LogLevel__Default"] = "Warning",
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var logs = Path.Combine(sharedDirectory, "logs");
        Directory.CreateDirectory(logs);
        var log = new StreamWriter(Path.Combine(logs, $"{name}.log"), append: false) { AutoFlush = true };
        var process = new Process { StartInfo = start };
        var silo = new SiloProcess(process, log, name, siloPort, httpPort);
        process.OutputDataReceived += (_, e) => silo.Append(e.Data, "");
        process.ErrorDataReceived += (_, e) => silo.Append(e.Data, "err: ");
        process.Start();
        silo.ProcessId = process.Id;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return silo;
    }

    /// <summary>Whether the silo address <paramref name="siloAddress"/> (<c>S127.0.0.1:port:generation</c>) is this process's.</summary>
    public bool Is(string? siloAddress) =>
        siloAddress?.StartsWith($"S127.0.0.1:{Text(SiloPort)}:", StringComparison.Ordinal) == true;

    /// <summary>Whether <c>/health/ready</c> answers 200 now.</summary>
    public async Task<bool> IsReadyAsync()
    {
        if (_process.HasExited)
        {
            throw new InvalidOperationException($"{Name} exited with code {_process.ExitCode}; see its log.");
        }

        try
        {
            using var response = await Http.GetAsync(new Uri($"http://127.0.0.1:{Text(HttpPort)}/health/ready"));
            return response.StatusCode == HttpStatusCode.OK;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    /// <summary>SIGKILLs the process and waits until it is gone.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            // Process.Kill on Unix is SIGKILL.
            _process.Kill();
            _process.WaitForExit();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
        lock (_lock)
        {
            _log.Dispose();
        }
    }

    private static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    /// <summary>The silo host built beside this benchmark (the benchmark project builds it through a project reference).</summary>
    private static string SiloAssembly
    {
        get
        {
            var configuration = typeof(SiloProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration is { Length: > 0 } c ? c : "Release";
            var framework = Path.GetFileName(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory));
            var path = Path.Combine(RepositoryRoot, "src", "Silo", "bin", configuration, framework, "Platform.Silo.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is not built; build the solution ({configuration}) first.", path);
        }
    }

    private static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Platform.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException($"No Platform.sln above {AppContext.BaseDirectory}: run the benchmark from its build output in the repository.");
        }
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    private void Append(string? line, string prefix)
    {
        if (line is null)
        {
            return;
        }

        lock (_lock)
        {
            try
            {
                _log.WriteLine(prefix + line);
            }
            catch (ObjectDisposedException)
            {
                // Output that arrives after the log closed.
            }
        }
    }
}
