using System.Net;
using System.Net.Sockets;

namespace Platform.Tests.Hosting;

/// <summary>Free TCP ports on the loopback address.</summary>
public static class Ports
{
    /// <summary>Returns <paramref name="count"/> distinct ports that the OS reports free (bind to port 0).</summary>
    public static int[] Free(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0) { ExclusiveAddressUse = true }).ToList();
        try
        {
            listeners.ForEach(l => l.Start());
            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            listeners.ForEach(l => l.Dispose());
        }
    }
}
