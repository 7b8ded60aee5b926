using System.CommandLine;
using Platform.Catalog;
using Spectre.Console;

namespace Platform.Cli;

/// <summary><c>catalog [name]</c>: the jobs the silos registered and their arguments.</summary>
internal static class CatalogCommand
{
    public static Command Create()
    {
        var name = new Argument<string?>("name") { Description = "Show only this job.", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("catalog", "List the jobs the silos registered (startable with run) and their arguments.") { name };
        command.SetAction((parseResult, cancellationToken) => Invocation.RunAsync(parseResult, cancellationToken, async invocation =>
        {
            var platform = await invocation.ConnectAsync();
            IReadOnlyList<JobCatalogEntry> entries = await platform.GetCatalogAsync().WaitAsync(invocation.CancellationToken);
            if (parseResult.GetValue(name) is { } only)
            {
                var entry = entries.FirstOrDefault(e => e.Name == only)
                    ?? throw new CliException(ExitCodes.NotFound, new JobNotInCatalogException(only, [.. entries.Select(e => e.Name)]).Message);
                entries = [entry];
            }

            var output = invocation.Output;
            if (output.Json)
            {
                output.WriteJson(entries);
                return ExitCodes.Ok;
            }

            if (entries.Count == 0)
            {
                output.Line("The silos registered no jobs.");
                return ExitCodes.Ok;
            }

            foreach (var entry in entries)
            {
                output.Line($"{entry.Name} (parallelism {entry.Parallelism})");
                output.Line($"  {entry.Description}");
                if (entry.Arguments.Count == 0)
                {
                    output.Line("  No arguments.");
                }
                else
                {
                    var table = Output.Table("ARGUMENT", "TYPE", "DEFAULT", "REQUIRED", "DESCRIPTION");
                    foreach (var argument in entry.Arguments)
                    {
                        Output.Row(table, argument.Name, Describe(argument), argument.Default, argument.Required ? "yes" : "", argument.Description);
                    }

                    output.Console.Write(new Padder(table).Padding(2, 0, 0, 0));
                }

                output.Line();
            }

            output.Line("Start one with: platform run <name> --arg key=value ...");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static string Describe(JobArgument argument)
    {
        static string Format(double value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return (argument.Minimum, argument.Maximum) switch
        {
            ({ } min, { } max) => $"{argument.TypeName} {Format(min)}..{Format(max)}",
            ({ } min, null) => $"{argument.TypeName} >= {Format(min)}",
            (null, { } max) => $"{argument.TypeName} <= {Format(max)}",
            _ => argument.TypeName,
        };
    }
}
