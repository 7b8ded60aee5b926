using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.Options;
using Platform.Hosting;

namespace Platform.Silo.Hosting;

/// <summary>
/// The configuration keys the silo host relies on (Orleans' own keys, as .NET Aspire sets them), their defaults, and
/// the checks that turn a bad value into a startup error naming the setting.
/// </summary>
/// <remarks>
/// Orleans reads the <c>Orleans</c> section itself (<c>UseOrleans</c> on an <see cref="IHostApplicationBuilder"/>), but it
/// silently ignores values it cannot parse (a <c>SiloPort</c> of <c>"notaport"</c> leaves the default port in place), so
/// the host checks the keys first.
/// </remarks>
internal static class SiloConfiguration
{
    public const string ClusterIdKey = "Orleans:ClusterId";
    public const string ServiceIdKey = "Orleans:ServiceId";
    public const string ClusteringSection = "Orleans:Clustering";
    public const string ClusteringProviderTypeKey = "Orleans:Clustering:ProviderType";
    public const string PrimarySiloEndPointKey = "Orleans:Clustering:PrimarySiloEndPoint";
    public const string SiloPortKey = "Orleans:Endpoints:SiloPort";
    public const string GatewayPortKey = "Orleans:Endpoints:GatewayPort";
    public const string AdvertisedIPAddressKey = "Orleans:Endpoints:AdvertisedIPAddress";
    public const string SiloListeningEndpointKey = "Orleans:Endpoints:SiloListeningEndpoint";
    public const string GatewayListeningEndpointKey = "Orleans:Endpoints:GatewayListeningEndpoint";
    public const string ParentProcessIdKey = "Silo:ParentProcessId";

    /// <summary>The provider type of Orleans' development clustering (the primary silo keeps the membership table).</summary>
    public const string DevelopmentClustering = "Development";

    /// <summary>The cluster and service id of a silo that is given no clustering configuration (as <c>UseLocalhostClustering</c>).</summary>
    public const string DevelopmentId = "dev";

    /// <summary>The HTTP address when neither <c>--urls</c>, <c>ASPNETCORE_URLS</c> nor Kestrel endpoints are configured.</summary>
    public const string DefaultUrl = "http://127.0.0.1:8080";

    private const int DefaultSiloPort = 11111;
    private const int DefaultGatewayPort = 30000;

    /// <summary>
    /// Adds defaults beneath every other configuration source, so that a configured value always wins:
    /// without an <c>Orleans:Clustering</c> section, development clustering on the loopback address with this silo as
    /// its own primary, silo port 11111, gateway port 30000 and cluster/service id <c>dev</c> (what
    /// <c>UseLocalhostClustering</c> does, without overwriting configured ids and ports); with development clustering
    /// whose primary silo is on a loopback address, the loopback address as the advertised address (the primary
    /// recognizes itself by its advertised endpoint). Returns a description of what was defaulted, or <c>null</c>.
    /// </summary>
    public static string? AddDefaults(IConfigurationManager configuration)
    {
        var defaults = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        string? description = null;
        if (!configuration.GetSection(ClusteringSection).Exists())
        {
            defaults[ClusteringProviderTypeKey] = DevelopmentClustering;
            defaults[ClusterIdKey] = DevelopmentId;
            defaults[ServiceIdKey] = DevelopmentId;
            defaults[SiloPortKey] = DefaultSiloPort.ToString(CultureInfo.InvariantCulture);
            defaults[GatewayPortKey] = DefaultGatewayPort.ToString(CultureInfo.InvariantCulture);
            defaults[AdvertisedIPAddressKey] = IPAddress.Loopback.ToString();
            description = $"no {ClusteringSection} section is configured, so this silo uses development clustering on this machine as its own primary";
        }
        else if (string.Equals(configuration[ClusteringProviderTypeKey], DevelopmentClustering, StringComparison.OrdinalIgnoreCase)
            && IPEndPoint.TryParse(configuration[PrimarySiloEndPointKey] ?? "", out var primary)
            && IPAddress.IsLoopback(primary.Address))
        {
            defaults[AdvertisedIPAddressKey] = primary.Address.ToString();
            description = $"the primary silo is on a loopback address, so this silo advertises {primary.Address} unless {AdvertisedIPAddressKey} is set";
        }

        if (defaults.Count > 0)
        {
            configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = defaults });
        }

        return description;
    }

    /// <summary>Throws a <see cref="SiloConfigurationException"/> listing every bad setting, when there is one.</summary>
    public static void ThrowIfInvalid(IConfiguration configuration)
    {
        var problems = Validate(configuration);
        if (problems.Count > 0)
        {
            throw new SiloConfigurationException(problems);
        }
    }

    /// <summary>Every problem with the settings the silo relies on, one sentence each, each naming its setting.</summary>
    public static IReadOnlyList<string> Validate(IConfiguration configuration)
    {
        var problems = new List<string>();
        RequireNonEmpty(configuration, ClusterIdKey, "the cluster id that silos and clients of one cluster share", problems);
        RequireNonEmpty(configuration, ServiceIdKey, "the id of the service that outlives deployments", problems);

        var siloPort = Port(configuration, SiloPortKey, allowZero: false, problems) ?? DefaultSiloPort;
        var gatewayPort = Port(configuration, GatewayPortKey, allowZero: true, problems) ?? DefaultGatewayPort;
        if (siloPort == gatewayPort)
        {
            problems.Add($"{SiloPortKey} and {GatewayPortKey} are both {siloPort}; the silo-to-silo and the client gateway ports must differ.");
        }

        if (configuration[AdvertisedIPAddressKey] is { } advertised)
        {
            if (!IPAddress.TryParse(advertised, out var address))
            {
                problems.Add($"{AdvertisedIPAddressKey} is '{advertised}', which is not an IP address (for example 127.0.0.1 or 10.0.0.4).");
            }
            else if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) || address.Equals(IPAddress.None) || address.Equals(IPAddress.IPv6None))
            {
                problems.Add($"{AdvertisedIPAddressKey} is '{advertised}'; the advertised address is the one other silos dial, so it cannot be a wildcard (to listen on every interface, set {SiloListeningEndpointKey} instead).");
            }
        }

        Endpoint(configuration, SiloListeningEndpointKey, problems);
        Endpoint(configuration, GatewayListeningEndpointKey, problems);

        var clustering = configuration.GetSection(ClusteringSection);
        if (clustering.Exists())
        {
            var providerType = configuration[ClusteringProviderTypeKey];
            if (string.IsNullOrWhiteSpace(providerType))
            {
                problems.Add($"{ClusteringSection} is configured but {ClusteringProviderTypeKey} is not set; set it to the membership provider (for example '{DevelopmentClustering}').");
            }
            else if (string.Equals(providerType, DevelopmentClustering, StringComparison.OrdinalIgnoreCase))
            {
                Endpoint(configuration, PrimarySiloEndPointKey, problems);
            }

        }

        if (configuration[ParentProcessIdKey] is { } parent
            && (!int.TryParse(parent, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0))
        {
            problems.Add($"{ParentProcessIdKey} is '{parent}', which is not a process id.");
        }

        RedisConnections.Validate(configuration, problems);
        AzureStorageConnections.Validate(configuration, problems);
        ValidatePlatform(configuration, problems);
        return problems;
    }

    /// <summary>
    /// Throws when another process already listens on the silo or gateway port. Orleans listens with address reuse,
    /// which on Linux lets a second silo bind the same port without an error (the kernel then splits connections
    /// between the two), so the host probes each port with an exclusive bind first.
    /// </summary>
    public static void ThrowIfPortsInUse(IConfiguration configuration)
    {
        var problems = new List<string>();
        var address = IPAddress.TryParse(configuration[AdvertisedIPAddressKey] ?? "", out var advertised) ? advertised : IPAddress.Any;
        Probe(SiloPortKey, SiloListeningEndpointKey);
        Probe(GatewayPortKey, GatewayListeningEndpointKey);
        if (problems.Count > 0)
        {
            throw new SiloConfigurationException(problems);
        }

        void Probe(string portKey, string listeningEndpointKey)
        {
            var endpoint = IPEndPoint.TryParse(configuration[listeningEndpointKey] ?? "", out var listening) && listening.Port != 0
                ? listening
                : int.TryParse(configuration[portKey], CultureInfo.InvariantCulture, out var port) && port != 0 ? new IPEndPoint(address, port) : null;
            if (endpoint is null)
            {
                return;
            }

            try
            {
                using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { ExclusiveAddressUse = true };
                socket.Bind(endpoint);
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                problems.Add($"{portKey} is {endpoint.Port}, but another process already listens on {endpoint}; choose a free port.");
            }
            catch (SocketException)
            {
                // Not ours to judge (for example an address of another machine); Orleans reports what it cannot bind.
            }
        }
    }

    /// <summary>Names the setting behind an error Orleans raised while applying the <c>Orleans</c> section.</summary>
    public static string DescribeProviderError(InvalidOperationException exception)
    {
        // Orleans: "Could not find {kind} provider named '{name}'. ... Known {kind} providers: ..."
        var match = Regex.Match(exception.Message, @"Could not find (?<kind>\w+) provider named '(?<name>[^']*)'");
        if (!match.Success)
        {
            return $"The Orleans section cannot be applied: {exception.Message}";
        }

        var kind = match.Groups["kind"].Value;
        var key = kind is "Clustering" or "Reminders" ? $"Orleans:{kind}:ProviderType" : $"Orleans:{kind}:<name>:ProviderType";
        return $"{key} is '{match.Groups["name"].Value}', which no referenced package provides. {exception.Message}";
    }

    /// <summary>
    /// Binds the <c>Platform</c> section the way <c>AddStreamingPlatform</c> does and runs its validator, so that every
    /// bad setting is reported together with the Orleans ones (the options' ValidateOnStart stays as the backstop).
    /// </summary>
    private static void ValidatePlatform(IConfiguration configuration, List<string> problems)
    {
        var section = configuration.GetSection(StreamingPlatformOptions.SectionName);
        var options = new StreamingPlatformOptions();
        try
        {
            section.Bind(options, o => o.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException ex)
        {
            problems.Add($"The {StreamingPlatformOptions.SectionName} section cannot be read: {ex.Message}");
            return;
        }

        options.AzureBlob.NamedConnectionString = configuration[options.AzureBlob.NamedConnectionKey];
        var result = new StreamingPlatformOptionsValidator().Validate(Options.DefaultName, options);
        if (result.Failed)
        {
            problems.AddRange(result.Failures ?? []);
        }
    }

    private static void RequireNonEmpty(IConfiguration configuration, string key, string what, List<string> problems)
    {
        if (configuration[key] is { } value && string.IsNullOrWhiteSpace(value))
        {
            problems.Add($"{key} is empty; it is {what}.");
        }
    }

    private static int? Port(IConfiguration configuration, string key, bool allowZero, List<string> problems)
    {
        if (configuration[key] is not { } value)
        {
            return null;
        }

        var min = allowZero ? 0 : 1;
        if (int.TryParse(value, NumberStyles.AllowLeadingWhite | NumberStyles.AllowTrailingWhite, CultureInfo.InvariantCulture, out var port)
            && port >= min && port <= IPEndPoint.MaxPort)
        {
            return port;
        }

        problems.Add(allowZero
            ? $"{key} is '{value}'; it must be a port number between 1 and 65535, or 0 to run without a client gateway."
            : $"{key} is '{value}'; it must be a port number between 1 and 65535.");
        return null;
    }

    private static void Endpoint(IConfiguration configuration, string key, List<string> problems)
    {
        if (configuration[key] is { } value && (!IPEndPoint.TryParse(value, out var endpoint) || endpoint.Port == 0))
        {
            problems.Add($"{key} is '{value}', which is not an IP endpoint with a port (for example 127.0.0.1:11111).");
        }
    }
}
