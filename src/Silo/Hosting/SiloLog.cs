namespace Platform.Silo.Hosting;

/// <summary>The silo host's log messages.</summary>
internal static partial class SiloLog
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Configuration defaults: {Description}")]
    public static partial void DefaultsApplied(ILogger logger, string description);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Silo {SiloName} is up: silo endpoint {SiloAddress}, gateway {GatewayAddress}, cluster '{ClusterId}', service '{ServiceId}', " +
                  "clustering {Clustering}, HTTP {Urls}. Relative file paths in jobs resolve against the working directory {WorkingDirectory}")]
    public static partial void SiloStarted(ILogger logger, string siloName, string siloAddress, string gatewayAddress, string clusterId, string serviceId,
        string clustering, string urls, string workingDirectory);
}
