using System.Diagnostics;

namespace Platform.AppHost;

/// <summary>
/// A child process the AppHost started and owns (a silo, Redis, Azurite): its output lines are copied to the console
/// prefixed with its name, and it is stopped (SIGTERM, then SIGKILL) or killed with everything it started.
/// </summary>
internal sealed class ManagedProcess
{
    private readonly Process _process;

    private ManagedProcess(string name, Process process)
    {
        Name = name;
        _process = process;
        Id = process.Id;
    }

    /// <summary>The name its output lines are prefixed with.</summary>
    public string Name { get; }

    /// <summary>The operating system's process id.</summary>
    public int Id { get; }

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>The exit code, once exited.</summary>
    public int ExitCode => _process.ExitCode;

    private static string? SetSid { get; } = OperatingSystem.IsWindows()
        ? null
        : new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists);

    /// <summary>Starts <paramref name="fileName"/> with <paramref name="arguments"/> in <paramref name="workingDirectory"/>.</summary>
    public static ManagedProcess Start(
        string name,
        string fileName,
        IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string> environment,
        string workingDirectory,
        ConsoleOutput console)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };

        // In a session of its own, a child does not receive the terminal's Ctrl+C: the AppHost alone does and stops its
        // children in order (the primary silo, which holds the membership table, last). setsid execs in place: same id.
        if (SetSid is { } setsid)
        {
            start.FileName = setsid;
            start.ArgumentList.Add(fileName);
        }
        else
        {
            start.FileName = fileName;
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                console.Line($"[{name}] {line}");
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                console.ErrorLine($"[{name}] {line}");
            }
        };
        try
        {
            if (!process.Start())
            {
                throw new AppHostException($"Could not start {name} ({fileName}).");
            }
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new AppHostException($"Could not start {name} ({fileName}): {ex.Message}.");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new ManagedProcess(name, process);
    }

    /// <summary>
    /// Asks the process to stop (SIGTERM: a silo leaves the cluster gracefully), and kills it and anything it started when
    /// it has not exited after <paramref name="grace"/>. Waits until the process is gone and its output drained.
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
