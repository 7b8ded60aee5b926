using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Platform.Tests.Hosting;

/// <summary>
/// A program run as a child process (<c>dotnet program.dll args</c>) whose output is captured line by line; disposing
/// it kills the process tree if it still runs.
/// </summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Lock _lock = new();

    private ChildProcess(Process process) => _process = process;

    /// <summary>The process id.</summary>
    public int Id => _process.Id;

    /// <summary>Whether it has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Its exit code, once it has exited.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>Everything it wrote so far, stdout and stderr interleaved as received (stderr lines prefixed "err: ").</summary>
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

    /// <summary>Starts <c>dotnet <paramref name="assembly"/> <paramref name="args"/></c> with extra environment variables.</summary>
    public static ChildProcess Start(string assembly, IEnumerable<string> args, IReadOnlyDictionary<string, string> environment, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(BuiltPrograms.DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? BuiltPrograms.Root,
        };

        // A test run started in the background by a non-interactive shell (as CI may) ignores SIGINT, and an ignored
        // signal stays ignored across exec: .NET then never sees Ctrl+C. env restores the default before exec (same pid).
        if (OperatingSystem.IsLinux() && File.Exists("/usr/bin/env"))
        {
            start.FileName = "/usr/bin/env";
            start.ArgumentList.Add("--default-signal=INT");
            start.ArgumentList.Add(BuiltPrograms.DotnetHost);
        }

        start.ArgumentList.Add(assembly);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // A silo writes its state under its working directory unless told otherwise: keep test runs apart.
        var scratch = Infrastructure.TestData.NewDirectory("process");
        start.Environment["Platform__StateDirectory"] = Path.Combine(scratch, "state");
        start.Environment["Platform__CheckpointDirectory"] = Path.Combine(scratch, "checkpoints");
        // Jobs' files: the tests' own (under the temp folder) and the repository's samples.
        start.Environment["Platform__DataRoots__0"] = Infrastructure.TestData.Root;
        start.Environment["Platform__DataRoots__1"] = BuiltPrograms.Root;
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start };
        var child = new ChildProcess(process);
        process.OutputDataReceived += (_, e) => child.Append(e.Data, "");
        process.ErrorDataReceived += (_, e) => child.Append(e.Data, "err: ");
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Waits for the process to exit (and its output to be drained); false when <paramref name="timeout"/> passed first.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancellation.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Sends SIGTERM (a polite request to stop), on Unix.</summary>
    public void Terminate()
    {
        if (Kill(_process.Id, 15) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}.");
        }
    }

    /// <summary>Sends SIGINT (what Ctrl+C in a terminal sends), on Unix.</summary>
    public void Interrupt()
    {
        if (Kill(_process.Id, 2) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, SIGINT) failed: errno {Marshal.GetLastPInvokeError()}.");
        }
    }

    /// <inheritdoc />
    /// <summary>Kills the process with SIGKILL: a crash, with no chance to clean up or announce anything.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 9);
            _process.WaitForExit();
        }
    }

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
    }

    private void Append(string? line, string prefix)
    {
        if (line is null)
        {
            return;
        }

        lock (_lock)
        {
            _output.Append(prefix).AppendLine(line);
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int processId, int signal);
}
