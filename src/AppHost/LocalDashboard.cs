using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Platform.AppHost;

/// <summary>
/// The addresses the dashboard needs when nothing configures them (no launch profile, as when the built AppHost is run
/// directly): plain http on free loopback ports, which Aspire accepts only with <c>ASPIRE_ALLOW_UNSECURED_TRANSPORT</c>
/// (there is no development certificate on these machines).
/// </summary>
internal static class LocalDashboard
{
    public const string UrlsKey = "ASPNETCORE_URLS";
    public const string OtlpKey = "ASPIRE_DASHBOARD_OTLP_ENDPOINT_URL";
    public const string ResourceServiceKey = "ASPIRE_RESOURCE_SERVICE_ENDPOINT_URL";
    public const string UnsecuredTransportKey = "ASPIRE_ALLOW_UNSECURED_TRANSPORT";

    /// <summary>Adds a value for each of the four keys that has none; a configured value always wins.</summary>
    public static void AddDefaults(IConfigurationManager configuration)
    {
        var missing = new[] { UrlsKey, OtlpKey, ResourceServiceKey }
            .Where(key => string.IsNullOrEmpty(configuration[key]) && string.IsNullOrEmpty(configuration[LegacyName(key)]))
            .ToList();
        var ports = FreePorts.Allocate(missing.Count);
        var defaults = missing.Select((key, i) => KeyValuePair.Create(key, (string?)$"http://localhost:{ports[i].ToString(CultureInfo.InvariantCulture)}")).ToList();
        if (string.IsNullOrEmpty(configuration[UnsecuredTransportKey]))
        {
            defaults.Add(KeyValuePair.Create(UnsecuredTransportKey, (string?)"true"));
        }

        if (defaults.Count > 0)
        {
            configuration.AddInMemoryCollection(defaults);
        }
    }

    /// <summary>The DOTNET_ name Aspire still reads for the two dashboard URLs.</summary>
    private static string LegacyName(string key) => key switch
    {
        OtlpKey => "DOTNET_DASHBOARD_OTLP_ENDPOINT_URL",
        ResourceServiceKey => "DOTNET_RESOURCE_SERVICE_ENDPOINT_URL",
        _ => key,
    };
}
