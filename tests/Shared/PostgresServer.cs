using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Npgsql;

namespace Platform.Testing;

/// <summary>
/// A real PostgreSQL server (Debian's <c>postgresql</c> package; scripts/install-test-dependencies installs it) on
/// 127.0.0.1 and a free port, in a data directory of its own under the temp folder, with fsync off; stopped on
/// dispose. PostgreSQL refuses to run as root, so as root the data directory belongs to the <c>postgres</c> user and
/// initdb and the server run as it (setpriv); otherwise they run as the current user. Shared by the tests
/// (<c>PostgresServerFixture</c>) and the benchmarks (tests/Shared is linked into both).
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private const int SigQuit = 3;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Lock _lock = new();

    private PostgresServer(Process process, int port, string directory, int maxPreparedTransactions)
    {
        _process = process;
        Port = port;
        Directory = directory;
        MaxPreparedTransactions = maxPreparedTransactions;
    }

    /// <summary>The port it listens on (127.0.0.1).</summary>
    public int Port { get; }

    /// <summary>Its directory (data directory and socket).</summary>
    public string Directory { get; }

    /// <summary>Its <c>max_prepared_transactions</c>.</summary>
    public int MaxPreparedTransactions { get; }

    /// <summary>A connection string for its superuser <c>platform</c> and database <c>postgres</c>.</summary>
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=platform;Database=postgres;Timeout=10";

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

    /// <summary>Whether PostgreSQL's initdb and postgres are installed (Debian's layout or PATH).</summary>
    public static bool IsInstalled => FindBinDirectory() is not null;

    /// <summary>Initializes a data directory, starts a server and returns once it accepts connections.</summary>
    /// <param name="maxPreparedTransactions">Its <c>max_prepared_transactions</c> (0: no two-phase commit).</param>
    /// <param name="settings">Further server settings (<c>-c name=value</c>), such as <c>track_commit_timestamp=on</c>.</param>
    /// <param name="directory">Its directory (deleted on dispose); a new temporary one when <c>null</c>.</param>
    /// <exception cref="InvalidOperationException">PostgreSQL is not installed, or it failed to start.</exception>
    public static async Task<PostgresServer> StartAsync(int maxPreparedTransactions = 16, IEnumerable<string>? settings = null, string? directory = null)
    {
        var bin = FindBinDirectory()
            ?? throw new InvalidOperationException("PostgreSQL (initdb, postgres) is not installed; scripts/install-test-dependencies installs it (apt-get install postgresql).");
        directory ??= ServerProcess.NewDirectory("postgres");
        System.IO.Directory.CreateDirectory(directory);
        var data = Path.Combine(directory, "data");
        var asRoot = Environment.UserName == "root" || geteuid() == 0;
        if (asRoot)
        {
            await RunAsync("chown", ["postgres:postgres", directory], directory);
        }

        await RunAsync(Path.Combine(bin, "initdb"), ["-D", data, "-U", "platform", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"], directory, asRoot);

        var port = ServerProcess.FreePort();
        var start = Start(Path.Combine(bin, "postgres"), asRoot,
        [
            "-D", data, "-p", port.ToString(CultureInfo.InvariantCulture),
            "-c", "listen_addresses=127.0.0.1", "-c", $"unix_socket_directories={directory}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", $"max_prepared_transactions={maxPreparedTransactions.ToString(CultureInfo.InvariantCulture)}",
            "-c", "max_connections=100", "-c", "shared_buffers=32MB", "-c", "log_min_messages=warning",
            .. (settings ?? []).SelectMany(setting => new[] { "-c", setting }),
        ], directory);
        var process = new Process { StartInfo = start };
        var server = new PostgresServer(process, port, directory, maxPreparedTransactions);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await ServerProcess.WaitUntilAsync(
                async () => !process.HasExited ? await server.AcceptsConnectionsAsync() : throw new InvalidOperationException($"postgres exited with code {process.ExitCode}:\n{server.Output}"),
                StartTimeout,
                () => $"PostgreSQL accepts connections on 127.0.0.1:{port}\n{server.Output}");
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>Opens a connection to database <c>postgres</c>.</summary>
    public async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>Runs one statement and returns its first value.</summary>
    public async Task<object?> ScalarAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    /// <summary>Runs statements.</summary>
    public async Task ExecuteAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Whether the server accepts a connection now.</summary>
    public async Task<bool> AcceptsConnectionsAsync()
    {
        try
        {
            await using var connection = new NpgsqlConnection(ConnectionString + ";Pooling=false;Timeout=2");
            await connection.OpenAsync();
            return true;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or IOException)
        {
            return false;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                // SIGQUIT is PostgreSQL's immediate shutdown: the postmaster takes its backends down with it (SIGKILL would leave them).
                _ = kill(_process.Id, SigQuit);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                try
                {
                    await _process.WaitForExitAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill(entireProcessTree: true);
                    await _process.WaitForExitAsync();
                }
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left for the temp folder's cleanup.
        }
    }

    private static ProcessStartInfo Start(string executable, bool asRoot, IEnumerable<string> arguments, string workingDirectory)
    {
        var start = new ProcessStartInfo(asRoot ? "setpriv" : executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        if (asRoot)
        {
            // setpriv execs the program (no process in between), so the process here is the postmaster itself.
            foreach (var arg in new[] { "--reuid=postgres", "--regid=postgres", "--init-groups", "--", executable })
            {
                start.ArgumentList.Add(arg);
            }
        }

        foreach (var arg in arguments)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["LC_ALL"] = "C";
        return start;
    }

    private static async Task RunAsync(string executable, string[] arguments, string workingDirectory, bool asRoot = false)
    {
        using var process = new Process { StartInfo = asRoot ? Start(executable, true, arguments, workingDirectory) : Start(executable, false, arguments, workingDirectory) };
        process.Start();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{executable} {string.Join(' ', arguments)} exited with code {process.ExitCode}:\n{await output}\n{await error}");
        }
    }

    private static string? FindBinDirectory()
    {
        var versioned = System.IO.Directory.Exists("/usr/lib/postgresql")
            ? System.IO.Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "postgres"))).OrderByDescending(d => d, StringComparer.Ordinal)
            : Enumerable.Empty<string>();
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(d => File.Exists(Path.Combine(d, "postgres")) && File.Exists(Path.Combine(d, "initdb")));
        return versioned.Concat(onPath).FirstOrDefault();
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

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    [DllImport("libc")]
    private static extern uint geteuid();
}
