using System.Diagnostics;
using System.Net;

namespace Platform.AppHost;

/// <summary>What one silo process is started with.</summary>
internal sealed record SiloSpec(string Name, int SiloPort, int GatewayPort, int HttpPort)
{
    /// <summary>The silo-to-silo endpoint.</summary>
    public IPEndPoint SiloEndpoint => new(IPAddress.Loopback, SiloPort);

    /// <summary>The client gateway endpoint.</summary>
    public IPEndPoint GatewayEndpoint => new(IPAddress.Loopback, GatewayPort);

    /// <summary>The HTTP base address.</summary>
    public Uri HttpAddress => new($"http://127.0.0.1:{HttpPort}/");
}

/// <summary>
/// A silo running as a child process (<c>dotnet Platform.Silo.dll</c>), configured through environment variables with the
/// names .NET Aspire uses; its output lines are copied to the console prefixed with its name.
/// </summary>
internal sealed class SiloProcess
{
    private readonly Process _process;

    private SiloProcess(SiloSpec spec, Process process)
    {
        Spec = spec;
        _process = process;
        Id = process.Id;
    }

    /// <summary>Its name, configuration and addresses.</summary>
    public SiloSpec Spec { get; }

    /// <summary>The operating system's process id.</summary>
    public int Id { get; }

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>The exit code, once exited.</summary>
    public int ExitCode => _process.ExitCode;

    private static string? SetSid { get; } = OperatingSystem.IsWindows()
        ? null
        : new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists);

    /// <summary>Starts the silo process.</summary>
    public static SiloProcess Start(
        SiloSpec spec,
        RepositoryLayout layout,
        IReadOnlyDictionary<string, string> environment,
        ConsoleOutput console)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,

            // Relative paths in jobs resolve against the silo's working directory: the repository root.
            WorkingDirectory = layout.Root,
        };

        // In a session of its own, a silo does not receive the terminal's Ctrl+C: the AppHost alone does and stops the
        // silos in order (the primary, which holds the membership table, last). setsid execs in place: same process id.
        if (SetSid is { } setsid)
        {
            start.FileName = setsid;
            start.ArgumentList.Add(RepositoryLayout.DotnetHost);
        }
        else
        {
            start.FileName = RepositoryLayout.DotnetHost;
        }

        start.ArgumentList.Add(layout.SiloAssembly);
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                console.Line($"[{spec.Name}] {line}");
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                console.ErrorLine($"[{spec.Name}] {line}");
            }
        };
        if (!process.Start())
        {
            throw new AppHostException($"Could not start {spec.Name} ({start.FileName} {layout.SiloAssembly}).");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new SiloProcess(spec, process);
    }

    /// <summary>
    /// Asks the silo to stop (SIGTERM: it leaves the cluster gracefully), and kills it and anything it started when it
    /// has not exited after <paramref name="grace"/>. Waits until the process is gone and its output drained.
    /// </summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (!_process.HasExited && !OperatingSystem.IsWindows())
        {
            _ = NativeMethods.Kill(Id, NativeMethods.SigTerm);
        }

        using (var timeout = new CancellationTokenSource(OperatingSystem.IsWindows() ? TimeSpan.Zero : grace))
        {
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                Kill();
            }
        }

        await _process.WaitForExitAsync();
        _process.Dispose();
    }

    /// <summary>Kills the process and its descendants at once (idempotent, never throws).</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            // Already gone.
        }
    }

    /// <summary>Waits until the process exits.</summary>
    public Task WaitForExitAsync(CancellationToken cancellationToken) => _process.WaitForExitAsync(cancellationToken);
}
