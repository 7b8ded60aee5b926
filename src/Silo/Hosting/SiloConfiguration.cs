using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
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
    public const string MembershipSection = "Orleans:Membership";
    public const string TlsSection = "Silo:Tls";
    public const string UrlsKey = "urls";
    public const string HttpPortsKey = "http_ports";
    public const string HttpsPortsKey = "https_ports";

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

        // Whatever the provider type: a bad value is named first, even when the provider type is missing too.
        Endpoint(configuration, PrimarySiloEndPointKey, problems);
        var clustering = configuration.GetSection(ClusteringSection);
        if (clustering.Exists())
        {
            var providerType = configuration[ClusteringProviderTypeKey];
            if (string.IsNullOrWhiteSpace(providerType))
            {
                problems.Add($"{ClusteringSection} is configured but {ClusteringProviderTypeKey} is not set; set it to the membership provider (for example '{DevelopmentClustering}').");
            }
        }

        MembershipOptions(configuration, problems);
        HttpAddresses(configuration, problems);
        problems.AddRange(Security.HttpSecurity.Problems(
            configuration.GetSection(Security.HttpSecurityOptions.SectionName).Get<Security.HttpSecurityOptions>() ?? new(),
            HttpUrls(configuration)));
        ParentProcess(configuration, problems);
        problems.AddRange(Platform.Security.ClusterTls.Problems(Tls(configuration), name => $"{TlsSection}:{name}"));

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

    /// <summary>
    /// The <c>Silo:Tls</c> section: TLS on the silo's connections to other silos and on its gateway, mutual (clients present
    /// a certificate too), off unless <c>Silo:Tls:CertificatePath</c> is set.
    /// </summary>
    public static Platform.Security.ClusterTlsSettings Tls(IConfiguration configuration) =>
        configuration.GetSection(TlsSection).Get<Platform.Security.ClusterTlsSettings>() ?? new();

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

    /// <summary>
    /// The <c>Orleans:Membership</c> values the host binds to <see cref="ClusterMembershipOptions"/>: Orleans binds them
    /// only when the silo starts, and a value it cannot convert fails deep inside the start (the host could not even stop).
    /// </summary>
    private static void MembershipOptions(IConfiguration configuration, List<string> problems)
    {
        foreach (var setting in configuration.GetSection(MembershipSection).GetChildren())
        {
            if (setting.Value is not { } value
                || typeof(ClusterMembershipOptions).GetProperty(setting.Key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase) is not { CanWrite: true } property)
            {
                continue;
            }

            var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            var converter = TypeDescriptor.GetConverter(type);
            if (!converter.CanConvertFrom(typeof(string)))
            {
                continue;
            }

            try
            {
                // The converter the configuration binder uses, so that what passes here binds there.
                converter.ConvertFromInvariantString(value);
            }
            catch (Exception ex) when (ex is FormatException or ArgumentException or NotSupportedException or OverflowException)
            {
                problems.Add($"{MembershipSection}:{property.Name} is '{value}', which is not {Expected(type)}.");
            }
        }

        static string Expected(Type type) => type switch
        {
            _ when type == typeof(TimeSpan) => "a duration as [d.]hh:mm:ss[.fff] (for example 00:00:01 for one second)",
            _ when type == typeof(bool) => "true or false",
            _ when type == typeof(int) || type == typeof(long) => "a whole number",
            _ when type.IsEnum => $"one of {string.Join(", ", Enum.GetNames(type))}",
            _ => $"a value of type {type.Name}",
        };
    }

    /// <summary>
    /// The addresses the HTTP server will listen on, as Kestrel chooses them: its <c>Kestrel:Endpoints</c>, else
    /// <c>urls</c>, else <c>http_ports</c>/<c>https_ports</c> (every interface), else <see cref="DefaultUrl"/>.
    /// </summary>
    public static IReadOnlyList<string> HttpUrls(IConfiguration configuration)
    {
        var endpoints = configuration.GetSection("Kestrel:Endpoints");
        if (endpoints.Exists())
        {
            return [.. endpoints.GetChildren().Select(e => e["Url"]).OfType<string>()];
        }

        if (configuration[UrlsKey] is { } urls && !string.IsNullOrWhiteSpace(urls))
        {
            return urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        }

        var ports = new[] { (HttpPortsKey, "http"), (HttpsPortsKey, "https") }
            .SelectMany(p => (configuration[p.Item1] ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(port => $"{p.Item2}://*:{port}"))
            .ToList();
        return ports.Count > 0 ? ports : [DefaultUrl];
    }

    /// <summary>
    /// The HTTP addresses (<c>urls</c>, <c>http_ports</c>, <c>https_ports</c>): Kestrel parses them only once the silo has
    /// started, so that a bad one would stop a silo that had already joined its cluster.
    /// </summary>
    private static void HttpAddresses(IConfiguration configuration, List<string> problems)
    {
        // Only what Kestrel will read: Kestrel:Endpoints override the urls, and urls override the ports.
        if (configuration.GetSection("Kestrel:Endpoints").Exists())
        {
            return;
        }

        if (configuration[UrlsKey] is { } urls && !string.IsNullOrWhiteSpace(urls))
        {
            foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!IsHttpAddress(url))
                {
                    var which = url == urls.Trim() ? ", which" : $": '{url}'";
                    problems.Add($"{SourceOf(UrlsKey, urls)} is '{urls}'{which} is not an http:// or https:// address with a host (for example {DefaultUrl}, or http://0.0.0.0:8080 for every interface; several are separated by ';').");
                }
            }

            return;
        }

        foreach (var key in new[] { HttpPortsKey, HttpsPortsKey })
        {
            if (configuration[key] is { } ports && !string.IsNullOrWhiteSpace(ports)
                && ports.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Any(p => !int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > IPEndPoint.MaxPort))
            {
                problems.Add($"{SourceOf(key, ports)} is '{ports}'; it must be port numbers between 1 and 65535, separated by ';'.");
            }
        }

        static bool IsHttpAddress(string url)
        {
            try
            {
                // Kestrel's own parser, and the checks Kestrel adds to it (scheme, no path base).
                var address = BindingAddress.Parse(url);
                return (string.Equals(address.Scheme, "http", StringComparison.OrdinalIgnoreCase) || string.Equals(address.Scheme, "https", StringComparison.OrdinalIgnoreCase))
                    && !string.IsNullOrEmpty(address.Host)
                    && string.IsNullOrEmpty(address.PathBase);
            }
            catch (FormatException)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// <c>Silo:ParentProcessId</c>: a process id, of a process that runs now. The watcher would stop a silo whose parent is
    /// already gone in the middle of its start, which surfaces only as a cancelled start.
    /// </summary>
    private static void ParentProcess(IConfiguration configuration, List<string> problems)
    {
        if (configuration[ParentProcessIdKey] is not { } parent)
        {
            return;
        }

        if (!int.TryParse(parent, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0)
        {
            problems.Add($"{ParentProcessIdKey} is '{parent}', which is not a process id.");
            return;
        }

        try
        {
            using var process = Process.GetProcessById(pid);
            if (!process.HasExited)
            {
                return;
            }
        }
        catch (ArgumentException)
        {
            // Not running.
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            // It runs but cannot be inspected; the watcher treats it the same way.
            return;
        }

        problems.Add($"{ParentProcessIdKey} is '{parent}', but no process with that id is running; the silo stops when that process exits, so set it to the id of the process that starts the silo (as the tests and benchmarks do), or leave it unset.");
    }

    // ASPNETCORE_URLS and DOTNET_URLS become the urls key; name the variable the user actually set.
    private static string SourceOf(string key, string value)
    {
        foreach (var prefix in new[] { "ASPNETCORE_", "DOTNET_" })
        {
            var variable = prefix + key.ToUpperInvariant();
            if (Environment.GetEnvironmentVariable(variable) == value)
            {
                return variable;
            }
        }

        return key;
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
