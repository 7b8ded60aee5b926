using System.Net;
using System.Net.Sockets;

namespace Platform.AppHost;

/// <summary>Picks TCP ports that are free on the loopback address right now.</summary>
internal static class FreePorts
{
    /// <summary>Returns <paramref name="count"/> distinct free ports (the OS picks each by a bind to port 0).</summary>
    public static int[] Allocate(int count)
    {
        // Hold every listener until all ports are known, so that the OS cannot hand out one port twice.
        var listeners = new List<TcpListener>(count);
        try
        {
            for (var i = 0; i < count; i++)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0) { ExclusiveAddressUse = true };
                listener.Start();
                listeners.Add(listener);
            }

            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Dispose();
            }
        }
    }
}
