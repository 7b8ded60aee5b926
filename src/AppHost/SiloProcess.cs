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
/// A silo running as a child process (<c>dotnet Platform.Silo.dll</c>) in the repository root, configured through
/// environment variables with the names .NET Aspire uses.
/// </summary>
internal sealed class SiloProcess(SiloSpec spec, ManagedProcess process)
{
    /// <summary>Its name, configuration and addresses.</summary>
    public SiloSpec Spec { get; } = spec;

    /// <summary>The process.</summary>
    public ManagedProcess Process { get; } = process;

    /// <summary>The operating system's process id.</summary>
    public int Id => Process.Id;

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => Process.HasExited;

    /// <summary>The exit code, once exited.</summary>
    public int ExitCode => Process.ExitCode;

    /// <summary>Starts the silo process; relative paths in jobs resolve against its working directory, the repository root.</summary>
    public static SiloProcess Start(SiloSpec spec, RepositoryLayout layout, IReadOnlyDictionary<string, string> environment, ConsoleOutput console) =>
        new(spec, ManagedProcess.Start(spec.Name, RepositoryLayout.DotnetHost, [layout.SiloAssembly], environment, layout.Root, console));

    /// <inheritdoc cref="ManagedProcess.StopAsync"/>
    public Task StopAsync(TimeSpan grace) => Process.StopAsync(grace);

    /// <inheritdoc cref="ManagedProcess.Kill"/>
    public void Kill() => Process.Kill();
}
