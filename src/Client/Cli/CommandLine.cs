using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Platform.Cli;

/// <summary>The <c>platform</c> command tree: global options and one command per operation.</summary>
internal static class CommandLine
{
    public static readonly Option<string?> Gateway = new("--gateway", "-g")
    {
        Description = $"The silo gateway to connect to, host:port (several: comma-separated). Default: ${ConnectionSettings.GatewayVariable}, else {ConnectionSettings.DefaultGateway}.",
        HelpName = "host:port",
        Recursive = true,
    };

    public static readonly Option<string?> Redis = new("--redis")
    {
        Description = $"Find the gateways in the silos' Redis membership table (silos with Orleans:Clustering:ProviderType=Redis): a Redis connection string such as 127.0.0.1:6379. Default: ${ConnectionSettings.RedisVariable}. Not with --gateway.",
        HelpName = "connection-string",
        Recursive = true,
    };

    public static readonly Option<string?> ClusterId = new("--cluster-id")
    {
        Description = $"The cluster id the silos were started with (Orleans:ClusterId). Default: ${ConnectionSettings.ClusterIdVariable}, else {ConnectionSettings.DefaultId}.",
        HelpName = "id",
        Recursive = true,
    };

    public static readonly Option<string?> ServiceId = new("--service-id")
    {
        Description = $"The service id the silos were started with (Orleans:ServiceId). Default: ${ConnectionSettings.ServiceIdVariable}, else {ConnectionSettings.DefaultId}.",
        HelpName = "id",
        Recursive = true,
    };

    public static readonly Option<string?> ConnectTimeout = new("--connect-timeout")
    {
        Description = $"How long to wait for the cluster to accept this client, in seconds; refused connections are retried with backoff meanwhile. Default: ${ConnectionSettings.ConnectTimeoutVariable}, else {ConnectionSettings.DefaultConnectTimeoutSeconds}.",
        HelpName = "seconds",
        Recursive = true,
    };

    public static readonly Option<string?> TlsCertificate = new("--tls-certificate")
    {
        Description = $"Connect over mutual TLS (silos with Silo:Tls): this client's certificate with its key, a PEM or .pfx/.p12 file (its password in ${ConnectionSettings.TlsPasswordVariable}). Default: ${ConnectionSettings.TlsCertificateVariable}.",
        HelpName = "path",
        Recursive = true,
    };

    public static readonly Option<string?> TlsKey = new("--tls-key")
    {
        Description = $"The PEM private key of --tls-certificate, when it is not in the same file. Default: ${ConnectionSettings.TlsKeyVariable}.",
        HelpName = "path",
        Recursive = true,
    };

    public static readonly Option<string?> TlsCa = new("--tls-ca")
    {
        Description = $"A PEM file of the authorities the silos' certificates must be issued by (else the machine's trusted roots). Default: ${ConnectionSettings.TlsCaVariable}.",
        HelpName = "path",
        Recursive = true,
    };

    public static readonly Option<bool> Json = new("--json")
    {
        Description = "Write the result as one JSON document on stdout (errors still go to stderr).",
        Recursive = true,
    };

    public static readonly Option<bool> Verbose = new("--verbose", "-v")
    {
        Description = "Show the full exception on errors and the Orleans client's warnings.",
        Recursive = true,
    };

    /// <summary>Builds the command tree.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand(
            "Runs and watches stream jobs on a platform cluster: start catalog jobs by name, list, inspect and cancel jobs, " +
            "trigger and list checkpoints. Exit codes: 0 ok, 1 operation failed, 2 bad usage, 3 not found, 4 cannot connect.")
        {
            Gateway,
            Redis,
            ClusterId,
            ServiceId,
            ConnectTimeout,
            TlsCertificate,
            TlsKey,
            TlsCa,
            Json,
            Verbose,
            JobCommands.Run(),
            JobCommands.List(),
            CatalogCommand.Create(),
            JobCommands.Status(),
            JobCommands.Cancel(),
            CheckpointCommands.Checkpoint(),
            CheckpointCommands.Checkpoints(),
            SavepointCommands.Savepoint(),
            SavepointCommands.Stop(),
        };
        return root;
    }

    /// <summary>
    /// Parses an option's single token as a whole number of at least 1, or adds an error naming the option, the value
    /// and what it must be.
    /// </summary>
    public static int? ParsePositive(ArgumentResult result, string option, string what)
    {
        if (result.Tokens.Count == 0)
        {
            return null;
        }

        var token = result.Tokens[^1].Value;
        if (int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= 1)
        {
            return value;
        }

        result.AddError($"{option} is '{token}'; it must be a whole number of at least 1 ({what}).");
        return null;
    }

    /// <summary>
    /// Parses an option's single token as one of <typeparamref name="TEnum"/>'s names in any case (<paramref name="fallback"/>
    /// without one), or adds an error listing them.
    /// </summary>
    public static TEnum ParseChoice<TEnum>(ArgumentResult result, string option, TEnum fallback)
        where TEnum : struct, Enum
    {
        if (result.Tokens.Count == 0)
        {
            return fallback;
        }

        var token = result.Tokens[^1].Value;
        // Names only: Enum.TryParse would also take a number ("7") that is no member.
        if (Enum.GetNames<TEnum>().FirstOrDefault(n => string.Equals(n, token, StringComparison.OrdinalIgnoreCase)) is { } name)
        {
            return Enum.Parse<TEnum>(name);
        }

        result.AddError($"{option} is '{token}'; it must be one of {string.Join(", ", Enum.GetNames<TEnum>().Select(n => n.ToLowerInvariant()))}.");
        return fallback;
    }

    /// <summary>An argument holding a job id.</summary>
    public static Argument<string> JobIdArgument() => new("jobId") { Description = "The job's id, as run and list show it." };
}
