using System.CommandLine;
using Platform.Checkpointing;
using Platform.Client;
using Spectre.Console;

namespace Platform.Cli;

/// <summary><c>savepoint</c> (take one; <c>savepoint dispose</c> deletes one) and <c>stop</c> (stop with a savepoint).</summary>
internal static class SavepointCommands
{
    /// <summary><c>savepoint &lt;jobId&gt; [--target DIR|URL] [--format portable|native] [--request-id ID]</c>, and <c>savepoint dispose &lt;path&gt;</c>.</summary>
    public static Command Savepoint()
    {
        var jobId = CommandLine.JobIdArgument();
        var (target, format, requestId) = RequestOptions();
        var command = new Command("savepoint", "Take a savepoint of a running job and print its path; the job keeps running.") { jobId, target, format, requestId };
        command.SetAction((parseResult, cancellationToken) => Invocation.RunAsync(parseResult, cancellationToken, async invocation =>
        {
            var id = parseResult.GetRequiredValue(jobId);
            var platform = await invocation.ConnectAsync();
            await invocation.RequireJobAsync(platform, id);
            var request = Request(parseResult, target, format, requestId);
            var savepoint = await WithProgressAsync(invocation, $"Taking a savepoint of job {id}", () => platform.TriggerSavepointAsync(id, request, cancellationToken: invocation.CancellationToken));
            Report(invocation.Output, savepoint, $"Savepoint {savepoint.CheckpointId} of job {id}");
            return ExitCodes.Ok;
        }));
        command.Subcommands.Add(Dispose());
        return command;
    }

    /// <summary><c>stop &lt;jobId&gt; [--drain] [--target DIR|URL] [--format portable|native] [--request-id ID]</c>.</summary>
    public static Command Stop()
    {
        var jobId = CommandLine.JobIdArgument();
        var (target, format, requestId) = RequestOptions();
        var command = new Command(
            "stop",
            "Stop a job with a savepoint: sources stop at the savepoint, the job finishes, and run --from-savepoint resumes it with nothing lost or repeated.")
            { jobId, target, format, requestId };
        var drain = new Option<bool>("--drain", "-d")
        {
            Description = "Let bounded work finish first: bounded sources read to the end of their input before the savepoint, so the job ends with everything processed (end it for good rather than pause it).",
        };
        command.Options.Add(drain);
        command.SetAction((parseResult, cancellationToken) => Invocation.RunAsync(parseResult, cancellationToken, async invocation =>
        {
            var id = parseResult.GetRequiredValue(jobId);
            var platform = await invocation.ConnectAsync();
            await invocation.RequireJobAsync(platform, id);
            var request = Request(parseResult, target, format, requestId) with { Drain = parseResult.GetValue(drain) };
            var savepoint = await WithProgressAsync(invocation, request.Drain ? $"Draining and stopping job {id} with a savepoint" : $"Stopping job {id} with a savepoint", () => platform.StopWithSavepointAsync(id, request, cancellationToken: invocation.CancellationToken));
            Report(invocation.Output, savepoint, $"Job {id} stopped with savepoint {savepoint.CheckpointId}");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Dispose()
    {
        var path = new Argument<string>("path") { Description = "The savepoint's directory or blob URL, as savepoint or stop printed it." };
        var command = new Command("dispose", "Delete a savepoint.") { path };
        command.SetAction((parseResult, cancellationToken) => Invocation.RunAsync(parseResult, cancellationToken, async invocation =>
        {
            var savepoint = parseResult.GetRequiredValue(path);
            var platform = await invocation.ConnectAsync();
            try
            {
                await platform.DisposeSavepointAsync(savepoint).WaitAsync(invocation.CancellationToken);
            }
            catch (ArgumentException ex)
            {
                throw new CliException(ExitCodes.NotFound, ex.Message, ex);
            }

            if (invocation.Output.Json)
            {
                invocation.Output.WriteJson(new { disposed = savepoint });
            }
            else
            {
                invocation.Output.Line($"Disposed of savepoint {savepoint}.");
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static (Option<string?> Target, Option<SavepointFormat> Format, Option<string?> RequestId) RequestOptions() =>
    (
        new Option<string?>("--target", "-t") { Description = "The directory, or blob URL in the silos' container, to write the savepoint under (default: the silos' savepoint root).", HelpName = "DIR|URL" },
        new Option<SavepointFormat>("--format", "-f")
        {
            Description = "portable (any backend and parallelism; the default) or native (the RocksDB backend's own files; a job on the heap backend has none).",
            HelpName = "portable|native",
            DefaultValueFactory = _ => SavepointFormat.Portable,
            CustomParser = result => CommandLine.ParseChoice(result, "--format", SavepointFormat.Portable),
        },
        new Option<string?>("--request-id") { Description = "An id that makes a retried request return the same savepoint instead of taking another.", HelpName = "ID" }
    );

    private static SavepointRequest Request(ParseResult parseResult, Option<string?> target, Option<SavepointFormat> format, Option<string?> requestId) => new()
    {
        TargetDirectory = parseResult.GetValue(target),
        Format = parseResult.GetValue(format),
        RequestId = parseResult.GetValue(requestId),
    };

    private static async Task<SavepointInfo> WithProgressAsync(Invocation invocation, string what, Func<Task<SavepointInfo>> run)
    {
        try
        {
            if (invocation.Output.Json)
            {
                return await run();
            }

            if (!Console.IsErrorRedirected)
            {
                return await invocation.Output.Error.Status().StartAsync(Markup.Escape(what) + "…", _ => run());
            }

            Console.Error.WriteLine(what + "…");
            return await run();
        }
        catch (ArgumentException ex)
        {
            throw new CliException(ExitCodes.BadUsage, ex.Message, ex);
        }
    }

    private static void Report(Output output, SavepointInfo savepoint, string what)
    {
        if (output.Json)
        {
            output.WriteJson(savepoint);
            return;
        }

        output.Line($"{what}: {savepoint.Path} ({Output.Bytes(savepoint.Size)}).");
    }
}
