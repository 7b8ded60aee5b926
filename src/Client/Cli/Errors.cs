using Orleans.Runtime;
using Orleans.Runtime.Messaging;
using Platform.Catalog;
using Platform.Runtime;

namespace Platform.Cli;

/// <summary>Turns an exception into the exit code and the message for people that the command line reports.</summary>
internal static class Errors
{
    /// <summary>The exit code and message for <paramref name="exception"/>, a failure while talking to the cluster at <paramref name="settings"/>.</summary>
    public static (int ExitCode, string Message) Describe(Exception exception, ConnectionSettings? settings)
    {
        var where = settings?.Describe() ?? "the gateway";
        return exception switch
        {
            CliException cli => (cli.ExitCode, cli.Message),
            JobNotInCatalogException notInCatalog => (ExitCodes.NotFound, notInCatalog.Message + " (platform catalog lists them.)"),
            JobArgumentException arguments => (ExitCodes.BadUsage, arguments.Message),
            JobValidationException validation => (ExitCodes.BadUsage, validation.Message),
            SiloUnavailableException or ConnectionFailedException or GatewayTooBusyException or OrleansMessageRejectionException =>
                (ExitCodes.CannotConnect, $"Lost the connection to the cluster at {where}: {Innermost(exception).Message}"),
            TimeoutException => (ExitCodes.Failed, $"No answer in time from the cluster at {where}: {exception.Message}"),
            InvalidOperationException => (ExitCodes.Failed, exception.Message),
            _ => (ExitCodes.Failed, $"{exception.GetType().Name}: {exception.Message}"),
        };
    }

    /// <summary>The innermost exception, whose message usually says what actually went wrong.</summary>
    public static Exception Innermost(Exception exception)
    {
        while (exception.InnerException is not null)
        {
            exception = exception.InnerException;
        }

        return exception;
    }
}
