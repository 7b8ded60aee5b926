using System.Reflection;

namespace Platform.Tests.Hosting;

/// <summary>
/// The silo host, the AppHost, the command line and the benchmarks as built beside this test assembly (same configuration and target
/// framework); the test project builds them through project references that do not reference their assemblies.
/// </summary>
public static class BuiltPrograms
{
    private static readonly Lazy<string> LazyRoot = new(FindRoot);

    /// <summary>The repository root (the directory holding Platform.sln).</summary>
    public static string Root => LazyRoot.Value;

    /// <summary>The configuration this test assembly was built in.</summary>
    public static string Configuration =>
        typeof(BuiltPrograms).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration is { Length: > 0 } c ? c : "Debug";

    /// <summary>The target framework folder (net10.0).</summary>
    public static string TargetFramework => Path.GetFileName(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory));

    /// <summary>The built silo host.</summary>
    public static string Silo => Require(Path.Combine(Root, "src", "Silo", "bin", Configuration, TargetFramework, "Platform.Silo.dll"));

    /// <summary>The built AppHost.</summary>
    public static string AppHost => Require(Path.Combine(Root, "src", "AppHost", "bin", Configuration, TargetFramework, "Platform.AppHost.dll"));

    /// <summary>The built command line (<c>platform</c>).</summary>
    public static string Cli => Require(Path.Combine(Root, "src", "Client", "Cli", "bin", Configuration, TargetFramework, "platform.dll"));

    /// <summary>The built benchmarks program (<c>bench/Platform.Benchmarks</c>).</summary>
    public static string Benchmarks => Require(Path.Combine(Root, "bench", "Platform.Benchmarks", "bin", Configuration, TargetFramework, "Platform.Benchmarks.dll"));

    /// <summary>The dotnet host that runs the programs.</summary>
    public static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private static string Require(string path) =>
        File.Exists(path) ? path : throw new FileNotFoundException($"{path} is not built; build the solution ({Configuration}) first.", path);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Platform.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Platform.sln above {AppContext.BaseDirectory}.");
    }
}
