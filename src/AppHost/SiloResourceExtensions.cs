using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;

namespace Platform.AppHost;

/// <summary>Gives a silo project resource the ports of its <see cref="SiloSpec"/>.</summary>
internal static class SiloResourceExtensions
{
    /// <summary>
    /// Fixes the silo and gateway endpoints that <c>WithReference(orleans)</c> added (<c>Orleans__Endpoints__SiloPort</c>,
    /// <c>Orleans__Endpoints__GatewayPort</c>) and adds the HTTP endpoint (<c>ASPNETCORE_URLS</c>), all on the spec's ports
    /// and not proxied: Orleans' endpoints must be dialled directly.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithSiloEndpoints(this IResourceBuilder<ProjectResource> silo, SiloSpec spec)
    {
        silo.WithEndpoint("orleans-silo", e => Fix(e, spec.SiloPort), createIfNotExists: false);
        silo.WithEndpoint("orleans-gateway", e => Fix(e, spec.GatewayPort), createIfNotExists: false);
        return silo.WithHttpEndpoint(port: spec.HttpPort, targetPort: spec.HttpPort, name: "http", isProxied: false);

        static void Fix(EndpointAnnotation endpoint, int port)
        {
            endpoint.IsProxied = false;
            endpoint.Port = port;
            endpoint.TargetPort = port;
        }
    }
}
