using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
namespace Platform.Testing;

/// <summary>
/// A real <c>redis-server</c> on 127.0.0.1 and a free port, with nothing persisted (<c>--save "" --appendonly no</c>) and
/// its own temporary directory; stopped (killed) on dispose. scripts/install-test-dependencies installs redis-server.
/// Shared by the tests (<c>RedisServerFixture</c>) and the benchmarks (tests/Shared is linked into both).
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

    /// <summary>Whether redis-server is on PATH.</summary>
    public static bool IsInstalled => ServerProcess.FindOnPath("redis-server") is not null;

    /// <summary>Starts a server and returns once it answers PING.</summary>
    /// <param name="directory">Its working directory; a new temporary one when <c>null</c>.</param>
    /// <exception cref="InvalidOperationException">redis-server is not installed, or it exited.</exception>
    public static async Task<RedisServer> StartAsync(string? directory = null)
    {
        var executable = ServerProcess.FindOnPath("redis-server")
            ?? throw new InvalidOperationException("redis-server is not on PATH; scripts/install-test-dependencies installs it (apt-get install redis-server).");
        var port = ServerProcess.FreePort();
        directory ??= ServerProcess.NewDirectory("redis");
        Directory.CreateDirectory(directory);
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
            await ServerProcess.WaitUntilAsync(
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
}
