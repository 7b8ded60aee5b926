using System.CommandLine;
using Platform.Client;

namespace Platform.Cli;

/// <summary>What a command's action gets: its output, and the cluster once it asks for it.</summary>
internal sealed class Invocation(ParseResult parseResult, Output output, CancellationToken cancellationToken)
{
    private Connection? _connection;

    /// <summary>The parsed command line.</summary>
    public ParseResult ParseResult { get; } = parseResult;

    /// <summary>Where results and progress go.</summary>
    public Output Output { get; } = output;

    /// <summary>Cancelled by Ctrl+C.</summary>
    public CancellationToken CancellationToken { get; } = cancellationToken;

    /// <summary>Where the cluster is, once resolved.</summary>
    public ConnectionSettings? Settings { get; private set; }

    /// <summary>Connects to the cluster (once) and returns the platform's client.</summary>
    public async Task<PlatformClient> ConnectAsync()
    {
        if (_connection is null)
        {
            Settings = ConnectionSettings.Resolve(
                ParseResult.GetValue(CommandLine.Gateway),
                ParseResult.GetValue(CommandLine.ClusterId),
                ParseResult.GetValue(CommandLine.ServiceId),
                ParseResult.GetValue(CommandLine.Redis),
                ParseResult.GetValue(CommandLine.ConnectTimeout),
                ConnectionSettings.ResolveTls(ParseResult.GetValue(CommandLine.TlsCertificate), ParseResult.GetValue(CommandLine.TlsKey), ParseResult.GetValue(CommandLine.TlsCa)));
            _connection = await Connection.OpenAsync(Settings, Output.Verbose, CancellationToken);
        }

        return _connection.Platform;
    }

    /// <summary>Fails with <see cref="ExitCodes.NotFound"/> unless the cluster's job registry knows <paramref name="jobId"/>.</summary>
    /// <remarks>
    /// Asking a job manager for an unknown id would activate an empty one, which answers with a blank status; the
    /// registry lists every submitted job (up to its last 1,000, oldest finished ones forgotten first).
    /// </remarks>
    public async Task RequireJobAsync(PlatformClient platform, string jobId)
    {
        var jobs = await platform.ListJobsAsync().WaitAsync(CancellationToken);
        if (!jobs.Any(j => j.JobId == jobId))
        {
            throw new CliException(ExitCodes.NotFound, $"No job with id '{jobId}' is known to the cluster at {Settings?.Describe()}; platform list shows the jobs.");
        }
    }

    /// <summary>
    /// Runs a command's action: reports any failure as one line on stderr with its exit code, and closes the
    /// connection to the cluster.
    /// </summary>
    public static async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken, Func<Invocation, Task<int>> action)
    {
        var output = new Output(parseResult.GetValue(CommandLine.Json), parseResult.GetValue(CommandLine.Verbose));
        var invocation = new Invocation(parseResult, output, cancellationToken);
        try
        {
            return await action(invocation);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            output.ReportError("Interrupted.", null);
            return ExitCodes.Interrupted;
        }
        catch (Exception ex)
        {
            var (exitCode, message) = Errors.Describe(ex, invocation.Settings);
            output.ReportError(message, ex);
            return exitCode;
        }
        finally
        {
            if (invocation._connection is { } connection)
            {
                await connection.DisposeAsync();
            }
        }
    }
}
