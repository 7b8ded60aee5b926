using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Platform.Tests.Hosting;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// A real <c>redis-server</c> on 127.0.0.1 and a free port, with nothing persisted (<c>--save "" --appendonly no</c>) and
/// its own temporary directory; stopped (killed) on dispose. scripts/install-test-dependencies installs redis-server.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Lock _lock = new();

    private RedisServer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    /// <summary>The port it listens on (127.0.0.1).</summary>
    public int Port { get; }

    /// <summary>Its connection string, as <c>ConnectionStrings:&lt;name&gt;</c> holds it.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    /// <summary>What it wrote so far.</summary>
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

    /// <summary>Starts a server and returns once it answers PING.</summary>
    /// <exception cref="InvalidOperationException">redis-server is not installed, or it exited.</exception>
    public static async Task<RedisServer> StartAsync()
    {
        var executable = FindExecutable("redis-server")
            ?? throw new InvalidOperationException("redis-server is not on PATH; scripts/install-test-dependencies installs it (apt-get install redis-server).");
        var port = Ports.Free(1)[0];
        var directory = TestData.NewDirectory("redis");
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        foreach (var arg in new[] { "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory, "--daemonize", "no" })
        {
            start.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = start };
        var server = new RedisServer(process, port);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await Poll.UntilAsync(
                async () => !process.HasExited ? await server.PingAsync() : throw new InvalidOperationException($"redis-server exited with code {process.ExitCode}:\n{server.Output}"),
                StartTimeout,
                () => $"redis-server answers PING on {server.ConnectionString}\n{server.Output}");
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>Whether the server answers PING now.</summary>
    public async Task<bool> PingAsync()
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await client.ConnectAsync("127.0.0.1", Port, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), timeout.Token);
            var buffer = new byte[16];
            var read = await stream.ReadAsync(buffer, timeout.Token);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Kills the server (SIGKILL, as a crash) and waits until it is gone.</summary>
    public async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lock)
        {
            _output.AppendLine(line);
        }
    }

    private static string? FindExecutable(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        .Select(directory => Path.Combine(directory, name))
        .FirstOrDefault(File.Exists);
}

/// <summary>One <see cref="RedisServer"/> shared by the tests of a class.</summary>
public sealed class RedisServerFixture : IAsyncLifetime
{
    private RedisServer? _server;

    /// <summary>The running server.</summary>
    public RedisServer Server => _server ?? throw new InvalidOperationException("The Redis server has not started.");

    /// <inheritdoc />
    public async Task InitializeAsync() => _server = await RedisServer.StartAsync();

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
