using System.Net;
using System.Net.Sockets;

namespace Platform.Testing;

/// <summary>
/// What the real-server helpers (<see cref="RedisServer"/>, <see cref="PostgresServer"/>) need around a process: free
/// ports, a temporary directory, a program on PATH, and waiting for a condition. Compiled into the tests and the
/// benchmarks (tests/Shared, linked by both projects), so that neither copies the other's server start-up.
/// </summary>
internal static class ServerProcess
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    /// <summary>A port the OS reports free on the loopback address (bind to port 0).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0) { ExclusiveAddressUse = true };
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A new, empty directory <c>{temp}/platform-tests/{name}-{guid}</c> (where the tests' own temporary directories go).</summary>
    public static string NewDirectory(string name)
    {
        var path = Path.Combine(Path.GetTempPath(), "platform-tests", $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>The full path of <paramref name="name"/> in a directory on PATH, or <c>null</c>.</summary>
    public static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        .Select(directory => Path.Combine(directory, name))
        .FirstOrDefault(File.Exists);

    /// <summary>Returns once <paramref name="condition"/> holds; a <see cref="TimeoutException"/> describing it after <paramref name="timeout"/>.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> describe)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTimeOffset.UtcNow >= deadline)
            {
                throw new TimeoutException($"Still not true after {timeout}: {describe()}");
            }

            await Task.Delay(PollInterval);
        }
    }
}
