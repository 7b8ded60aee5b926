using System.Diagnostics;
using System.Reflection;

namespace Platform.Tests.Infra;

/// <summary>
/// The real Bicep compiler, from the <c>Azure.Bicep.CommandLine.linux-x64</c> package the test project restores (its path
/// is stamped into this assembly as the <c>BicepPath</c> metadata). Missing, it is an error, never a skipped test.
/// </summary>
public static class BicepCompiler
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    private static readonly Lazy<string> LazyPath = new(Locate);

    /// <summary>The compiler executable.</summary>
    public static string Path => LazyPath.Value;

    /// <summary>Runs <c>bicep <paramref name="command"/> <paramref name="file"/> --stdout</c>.</summary>
    public static async Task<BicepResult> RunAsync(string command, string file)
    {
        var start = new ProcessStartInfo(Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = System.IO.Path.GetDirectoryName(file)!,
        };
        start.ArgumentList.Add(command);
        start.ArgumentList.Add(file);
        start.ArgumentList.Add("--stdout");
        // No telemetry, no update checks: the compiler must work offline.
        start.Environment["BICEP_TELEMETRY_ENABLED"] = "false";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{Path} did not start.");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var cancellation = new CancellationTokenSource(Timeout);
        try
        {
            await process.WaitForExitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"bicep {command} {file} did not finish within {Timeout.TotalSeconds:0} s.");
        }

        return new BicepResult(process.ExitCode, await output, await errors);
    }

    private static string Locate()
    {
        var path = typeof(BicepCompiler).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .SingleOrDefault(a => a.Key == "BicepPath")?.Value;
        if (string.IsNullOrEmpty(path) || !System.IO.Path.IsPathRooted(path))
        {
            throw new InvalidOperationException(
                $"The test assembly names no Bicep compiler (BicepPath metadata is '{path}'); restore tests/Platform.Tests, which references Azure.Bicep.CommandLine.linux-x64.");
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The Bicep compiler is missing at {path}; restore tests/Platform.Tests (package Azure.Bicep.CommandLine.linux-x64).", path);
        }

        // NuGet extracts the executable as it was packed; make sure it may be run.
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("The test project restores the Linux x64 Bicep compiler only.");
        }

        var mode = File.GetUnixFileMode(path);
        if ((mode & UnixFileMode.UserExecute) == 0)
        {
            File.SetUnixFileMode(path, mode | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        }

        return path;
    }
}

/// <summary>What a Bicep compiler run produced: the exit code, the compiled JSON and the diagnostics.</summary>
/// <param name="ExitCode">The compiler's exit code (non-zero on an error).</param>
/// <param name="Output">Standard output: the compiled ARM JSON (with <c>--stdout</c>).</param>
/// <param name="Diagnostics">Standard error: errors, warnings and linter findings, one a line.</param>
public sealed record BicepResult(int ExitCode, string Output, string Diagnostics);
