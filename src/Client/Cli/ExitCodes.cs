namespace Platform.Cli;

/// <summary>What the <c>platform</c> command's exit code means (the README's "Command line" section lists them).</summary>
internal static class ExitCodes
{
    /// <summary>The command did what was asked.</summary>
    public const int Ok = 0;

    /// <summary>The operation failed: a checkpoint failed, a job waited for with <c>--wait</c> did not finish, a call timed out.</summary>
    public const int Failed = 1;

    /// <summary>Bad usage: an unknown option, a missing argument, or job arguments the silo refused.</summary>
    public const int BadUsage = 2;

    /// <summary>The job id or the catalog job name is not known to the cluster.</summary>
    public const int NotFound = 3;

    /// <summary>The gateway could not be reached, or the connection to it was lost.</summary>
    public const int CannotConnect = 4;

    /// <summary>Interrupted with Ctrl+C (128 + SIGINT, as shells report it).</summary>
    public const int Interrupted = 130;
}

/// <summary>A failure the command line reports with its own message and exit code.</summary>
internal sealed class CliException(int exitCode, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The exit code to return.</summary>
    public int ExitCode { get; } = exitCode;
}
