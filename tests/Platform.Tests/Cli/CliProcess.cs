using System.Diagnostics;
using Platform.Tests.Hosting;

namespace Platform.Tests.Cli;

/// <summary>What one run of the real command line (<c>dotnet platform.dll ...</c>) did.</summary>
public sealed record CliResult(string[] Arguments, int ExitCode, string StandardOutput, string StandardError)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"platform {string.Join(' ', Arguments)} -> exit {ExitCode}\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}";
}

/// <summary>Runs the built command line as a child process, with stdout and stderr captured apart.</summary>
public static class CliProcess
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    /// <summary>Runs <c>platform <paramref name="args"/></c> with <paramref name="environment"/> and waits for it to exit.</summary>
    public static async Task<CliResult> RunAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo(BuiltPrograms.DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = BuiltPrograms.Root,
        };
        start.ArgumentList.Add(BuiltPrograms.Cli);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // Only what the test sets: a PLATFORM_* variable of the machine running the tests must not leak in.
        foreach (var variable in new[] { "PLATFORM_GATEWAY", "PLATFORM_REDIS", "PLATFORM_CLUSTER_ID", "PLATFORM_SERVICE_ID", "PLATFORM_CONNECT_TIMEOUT", "PLATFORM_TLS_CERTIFICATE", "PLATFORM_TLS_KEY", "PLATFORM_TLS_CA", "PLATFORM_TLS_PASSWORD" })
        {
            start.Environment.Remove(variable);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"platform {string.Join(' ', args)} was still running after {Timeout}.");
        }

        return new CliResult(args, process.ExitCode, await stdout, await stderr);
    }
}
