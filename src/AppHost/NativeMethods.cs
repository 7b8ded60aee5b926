using System.Runtime.InteropServices;

namespace Platform.AppHost;

/// <summary>POSIX calls that .NET's Process class does not offer.</summary>
internal static class NativeMethods
{
    /// <summary>SIGTERM: asks a process to shut down (the silo stops gracefully and leaves the cluster).</summary>
    public const int SigTerm = 15;

    /// <summary>Sends <paramref name="signal"/> to the process <paramref name="processId"/>; 0 on success.</summary>
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static extern int Kill(int processId, int signal);
}
