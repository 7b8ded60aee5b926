using System.CommandLine;
using Platform.Client;
using Platform.Runtime;
using Spectre.Console;

namespace Platform.Cli;

/// <summary>run, list, status and cancel.</summary>
internal static class JobCommands
{
    /// <summary>
    /// <c>run &lt;name&gt; [--arg key=value]... [--parallelism N] [--from-savepoint PATH [--allow-non-restored-state]] [--wait]</c>:
    /// starts a catalog job, from empty state or from a savepoint or retained checkpoint.
    /// </summary>
    public static Command Run()
    {
        var name = new Argument<string>("name") { Description = "The catalog name of the job (platform catalog lists them)." };
        var arguments = new Option<string[]>("--arg", "-a")
        {
            Description = "A job argument as key=value; repeat for several (platform catalog lists each job's arguments).",
            HelpName = "key=value",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var parallelism = new Option<int?>("--parallelism", "-p")
        {
            Description = "The parallelism of the job's operators that do not set their own (overrides the catalog's).",
            HelpName = "N",
            // System.CommandLine's own message names the .NET type (System.Nullable`1[System.Int32]).
            CustomParser = result => CommandLine.ParsePositive(result, "--parallelism", "the number of parallel subtasks of each operator"),
        };
        var fromSavepoint = new Option<string?>("--from-savepoint", "-s")
        {
            Description = "Start from this savepoint (or a retained checkpoint's chk-N directory), as the silos see the path.",
            HelpName = "PATH",
        };
        var allowNonRestored = new Option<bool>("--allow-non-restored-state", "-n")
        {
            Description = "With --from-savepoint: drop the state of operators the job no longer has instead of refusing to start.",
        };
        var wait = new Option<bool>("--wait", "-w")
        {
            Description = "Wait until the job ends; the exit code is 0 when it finished and 1 when it failed or was cancelled.",
        };
        var command = new Command("run", "Start a job of the silos' catalog by name.") { name, arguments, parallelism, fromSavepoint, allowNonRestored, wait };
        command.SetAction((parseResult, cancellationToken) => Invocation.RunAsync(parseResult, cancellationToken, async invocation =>
        {
            var jobName = parseResult.GetRequiredValue(name);
            var jobArguments = ParseArguments(parseResult.GetValue(arguments) ?? []);
            var platform = await invocation.ConnectAsync();
            var output = invocation.Output;

            var restore = parseResult.GetValue(fromSavepoint) is { Length: > 0 } path
                ? new Platform.Checkpointing.RestoreSettings { Path = path, AllowNonRestoredState = parseResult.GetValue(allowNonRestored) }
                : parseResult.GetValue(allowNonRestored)
                    ? throw new CliException(ExitCodes.BadUsage, "--allow-non-restored-state needs --from-savepoint.")
                    : null;
            var jobId = await platform.RunAsync(jobName, jobArguments, parseResult.GetValue(parallelism), invocation.CancellationToken, restore);
            if (restore is not null)
            {
                // Show the restore: subtasks read their share of the savepoint before they run.
                await WaitUntilRestoredAsync(invocation, platform, jobId, restore.Path);
            }

            if (!parseResult.GetValue(wait))
            {
                var status = await platform.GetStatusAsync(jobId).WaitAsync(invocation.CancellationToken);
                if (output.Json)
                {
                    output.WriteJson(new { jobId, name = jobName, status });
                }
                else
                {
                    output.Line($"Started job {jobId} ({jobName}): {status.State}.");
                }

                return ExitCodes.Ok;
            }

            if (!output.Json)
            {
                Console.Error.WriteLine($"Started job {jobId} ({jobName}); waiting for it to end (Ctrl+C stops waiting, not the job).");
            }

            var final = await platform.WaitForCompletionAsync(jobId, timeout: null, invocation.CancellationToken);
            if (output.Json)
            {
                output.WriteJson(new { jobId, name = jobName, status = final });
            }
            else
            {
                output.Line($"Job {jobId} ({jobName}) {final.State} after {Output.Duration((final.EndedAt ?? DateTimeOffset.UtcNow) - final.SubmittedAt)}.");
            }

            if (final.State == JobState.Finished)
            {
                return ExitCodes.Ok;
            }

            output.ReportError($"Job {jobId} ended {final.State}" + (final.Failure is { } failure ? $": {failure.Describe()}" : "."), null);
            return ExitCodes.Failed;
        }));
        return command;
    }

    private static async Task WaitUntilRestoredAsync(Invocation invocation, PlatformClient platform, string jobId, string path)
    {
        static string Describe(string jobId, string path, JobStatusInfo status) =>
            $"Restoring job {jobId} from {path}: {status.Tasks.Count(t => t.State is not (TaskState.Created or TaskState.Initializing))} of {status.Tasks.Count} subtasks restored";

        if (invocation.Output.Json)
        {
            await platform.WaitUntilRunningAsync(jobId, cancellationToken: invocation.CancellationToken);
        }
        else if (!Console.IsErrorRedirected)
        {
            await invocation.Output.Error.Status().StartAsync(
                Markup.Escape($"Restoring job {jobId} from {path}"),
                context => platform.WaitUntilRunningAsync(jobId, new Progress<JobStatusInfo>(s => context.Status(Markup.Escape(Describe(jobId, path, s)))), cancellationToken: invocation.CancellationToken));
        }
        else
        {
            // Not a terminal: a plain line whenever another subtask restored.
            var reported = "";
            await platform.WaitUntilRunningAsync(
                jobId,
                new Progress<JobStatusInfo>(s =>
                {
                    var line = Describe(jobId, path, s);
                    if (Interlocked.Exchange(ref reported, line) != line)
                    {
                        Console.Error.WriteLine(line);
                    }
                }),
                cancellationToken: invocation.CancellationToken);
        }
    }

    /// <summary><c>list</c>: every job the cluster knows, newest first.</summary>
    public static Command List()
    {
        var command = new Command("list", "List the cluster's jobs, newest first.");
        command.SetAction((parseResult, cancellationToken) => Invocation.RunAsync(parseResult, cancellationToken, async invocation =>
        {
            var platform = await invocation.ConnectAsync();
            var jobs = await platform.ListJobsAsync().WaitAsync(invocation.CancellationToken);
            var output = invocation.Output;
            if (output.Json)
            {
                output.WriteJson(jobs);
                return ExitCodes.Ok;
            }

            if (jobs.Count == 0)
            {
                output.Line("No jobs.");
                return ExitCodes.Ok;
            }

            var table = Output.Table("JOB ID", "NAME", "STATE", "SUBMITTED", "DURATION");
            foreach (var job in jobs)
            {
                Output.Row(table, job.JobId, job.Name, job.State.ToString(), Output.Time(job.SubmittedAt), Output.Duration((job.EndedAt ?? DateTimeOffset.UtcNow) - job.SubmittedAt));
            }

            output.Console.Write(table);
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary><c>status &lt;jobId&gt;</c>: the job's state, failure and subtasks.</summary>
    public static Command Status()
    {
        var jobId = CommandLine.JobIdArgument();
        var command = new Command("status", "Show a job's state, its last failure and its subtasks.") { jobId };
        command.SetAction((parseResult, cancellationToken) => Invocation.RunAsync(parseResult, cancellationToken, async invocation =>
        {
            var id = parseResult.GetRequiredValue(jobId);
            var platform = await invocation.ConnectAsync();
            await invocation.RequireJobAsync(platform, id);
            var status = await platform.GetStatusAsync(id).WaitAsync(invocation.CancellationToken);
            var output = invocation.Output;
            if (output.Json)
            {
                output.WriteJson(status);
                return ExitCodes.Ok;
            }

            output.Line($"Job        {status.JobId} ({status.Name})");
            output.Line($"State      {status.State}" + (status.Attempt > 1 ? $", attempt {status.Attempt}, {status.Restarts} restart(s)" : ""));
            output.Line($"Submitted  {Output.Time(status.SubmittedAt)}" + (status.EndedAt is { } ended ? $", ended {Output.Time(ended)} after {Output.Duration(ended - status.SubmittedAt)}" : ""));
            if (status.RestoredFromCheckpoint is { } restored)
            {
                output.Line($"Restored   from checkpoint {restored}");
            }

            if (status.Failure is { } failure)
            {
                output.Line($"Failure    {failure.Describe()}");
            }

            foreach (var cause in status.RestartCauses.Take(3))
            {
                output.Line($"Restarted  after: {cause.Describe()}");
            }

            if (status.Tasks.Count > 0)
            {
                output.Line();
                var table = Output.Table("TASK", "SUBTASK", "STATE", "SILO", "KEY GROUPS", "RECORDS IN", "RECORDS OUT");
                foreach (var task in status.Tasks)
                {
                    Output.Row(
                        table,
                        task.TaskName,
                        $"{task.SubtaskIndex + 1}/{task.Parallelism}",
                        task.State.ToString(),
                        task.Silo,
                        task.KeyGroupStart is { } start ? $"{start}-{task.KeyGroupEnd}" : "",
                        task.RecordsIn.ToString("N0", System.Globalization.CultureInfo.InvariantCulture),
                        task.RecordsOut.ToString("N0", System.Globalization.CultureInfo.InvariantCulture));
                }

                output.Console.Write(table);
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary><c>cancel &lt;jobId&gt;</c>: cancels the job and waits until it is cancelled.</summary>
    public static Command Cancel()
    {
        var jobId = CommandLine.JobIdArgument();
        var command = new Command("cancel", "Cancel a job.") { jobId };
        command.SetAction((parseResult, cancellationToken) => Invocation.RunAsync(parseResult, cancellationToken, async invocation =>
        {
            var id = parseResult.GetRequiredValue(jobId);
            var platform = await invocation.ConnectAsync();
            await invocation.RequireJobAsync(platform, id);
            var before = await platform.GetStatusAsync(id).WaitAsync(invocation.CancellationToken);
            var status = before.State.IsTerminal() ? before : await platform.CancelAsync(id).WaitAsync(invocation.CancellationToken);
            var output = invocation.Output;
            if (output.Json)
            {
                output.WriteJson(status);
            }
            else
            {
                output.Line(before.State.IsTerminal()
                    ? $"Job {id} ({status.Name}) had already ended: {status.State}."
                    : $"Job {id} ({status.Name}) is {status.State}.");
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>Parses <c>key=value</c> pairs; a pair without '=' or a key given twice is bad usage.</summary>
    private static Dictionary<string, string> ParseArguments(IEnumerable<string> pairs)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new CliException(ExitCodes.BadUsage, $"--arg '{pair}' is not key=value (for example --arg input=/data/words.txt).");
            }

            var key = pair[..equals].Trim();
            if (!result.TryAdd(key, pair[(equals + 1)..]))
            {
                throw new CliException(ExitCodes.BadUsage, $"--arg {key} is given twice; give each argument once.");
            }
        }

        return result;
    }
}
