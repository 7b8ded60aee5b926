using System.Diagnostics;
using System.Reflection;

namespace Platform.AppHost;

/// <summary>Where the repository, the silo binary, the sample input and the demo output are.</summary>
internal sealed class RepositoryLayout
{
    private RepositoryLayout(string root, string configuration, string targetFramework)
    {
        Root = root;
        Configuration = configuration;
        TargetFramework = targetFramework;
    }

    /// <summary>The repository root (the directory holding Platform.sln).</summary>
    public string Root { get; }

    /// <summary>The build configuration the AppHost was built in; the silo of the same configuration is started.</summary>
    public string Configuration { get; }

    /// <summary>The target framework folder name (net10.0).</summary>
    public string TargetFramework { get; }

    /// <summary>The silo project.</summary>
    public string SiloProject => Path.Combine(Root, "src", "Silo", "Platform.Silo.csproj");

    /// <summary>The built silo.</summary>
    public string SiloAssembly => Path.Combine(Root, "src", "Silo", "bin", Configuration, TargetFramework, "Platform.Silo.dll");

    /// <summary>The demo's default input.</summary>
    public string DefaultInput => Path.Combine(Root, "samples", "wordcount", "input.txt");

    /// <summary>The demo's default output directory.</summary>
    public string DefaultOutput => Path.Combine(Root, ".artifacts", "wordcount-output");

    /// <summary>Azurite's blob service, as scripts/install-test-dependencies installs it (npm, pinned in tools/azurite).</summary>
    public string AzuriteBlobScript => Path.Combine(Root, "tools", "azurite", "node_modules", "azurite", "dist", "src", "blob", "main.js");

    /// <summary>The dotnet host that runs the silo (the one running this process when known).</summary>
    public static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
        : Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self
        : "dotnet";

    /// <summary>Finds the repository from the AppHost's binary (or else the current directory).</summary>
    public static RepositoryLayout Locate()
    {
        var root = FindRoot(AppContext.BaseDirectory) ?? FindRoot(Environment.CurrentDirectory)
            ?? throw new AppHostException(
                $"Cannot find the repository (a directory holding Platform.sln) above {AppContext.BaseDirectory} or {Environment.CurrentDirectory}; run the AppHost from the repository.");
        var configuration = typeof(RepositoryLayout).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration is { Length: > 0 } c ? c : "Debug";
        var folder = Path.GetFileName(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory));
        var targetFramework = folder.StartsWith("net", StringComparison.Ordinal) ? folder : "net10.0";
        return new RepositoryLayout(root, configuration, targetFramework);
    }

    /// <summary>Builds the silo when its binary is missing (a normal build of the AppHost builds it too).</summary>
    public async Task EnsureSiloBuiltAsync(ConsoleOutput console, CancellationToken cancellationToken)
    {
        if (File.Exists(SiloAssembly))
        {
            return;
        }

        console.Info($"{SiloAssembly} is missing; building the silo ({Configuration})...");
        var start = new ProcessStartInfo(DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Root,
        };
        foreach (var arg in new[] { "build", SiloProject, "--configuration", Configuration, "--nologo", "--verbosity", "quiet" })
        {
            start.ArgumentList.Add(arg);
        }

        using var build = Process.Start(start) ?? throw new AppHostException("Could not start 'dotnet build' for the silo.");
        build.OutputDataReceived += (_, e) => { if (e.Data is { } line) { console.Line($"[build] {line}"); } };
        build.ErrorDataReceived += (_, e) => { if (e.Data is { } line) { console.ErrorLine($"[build] {line}"); } };
        build.BeginOutputReadLine();
        build.BeginErrorReadLine();
        try
        {
            await build.WaitForExitAsync(cancellationToken);
        }
        finally
        {
            if (!build.HasExited)
            {
                build.Kill(entireProcessTree: true);
            }
        }

        if (build.ExitCode != 0 || !File.Exists(SiloAssembly))
        {
            throw new AppHostException($"Building the silo failed (exit code {build.ExitCode}); see the [build] lines above.");
        }
    }

    private static string? FindRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Platform.sln")))
            {
                return dir.FullName;
            }
        }

        return null;
    }
}
