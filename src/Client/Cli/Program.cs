using System.CommandLine;
using Platform.Cli;

// The platform command line: see `platform --help` and the README's "Command line" section.
var parseResult = CommandLine.Build().Parse(args);
if (parseResult.Errors.Count > 0)
{
    // System.CommandLine would print the help and exit 1; bad usage is exit code 2 here, with the errors on stderr.
    foreach (var error in parseResult.Errors)
    {
        Console.Error.WriteLine($"error: {error.Message}");
    }

    Console.Error.WriteLine("Run 'platform --help' (or 'platform <command> --help') for usage.");
    return ExitCodes.BadUsage;
}

return await parseResult.InvokeAsync();
