using System.CommandLine;
using Platform.Checkpointing;
using Spectre.Console;

namespace Platform.Cli;

/// <summary><c>checkpoint</c> (trigger one now) and <c>checkpoints</c> (the history).</summary>
internal static class CheckpointCommands
{
    /// <summary><c>checkpoint &lt;jobId&gt;</c>: triggers a checkpoint and shows its progress until it completes or fails.</summary>
    public static Command Checkpoint()
    {
        var jobId = CommandLine.JobIdArgument();
        var command = new Command("checkpoint", "Trigger a checkpoint of a running job now and wait until it completes; exit code 1 when it fails.") { jobId };
        command.SetAction((parseResult, cancellationToken) => Invocation.RunAsync(parseResult, cancellationToken, async invocation =>
        {
            var id = parseResult.GetRequiredValue(jobId);
            var platform = await invocation.ConnectAsync();
            await invocation.RequireJobAsync(platform, id);
            var output = invocation.Output;

            CheckpointStats stats;
            if (output.Json)
            {
                stats = await platform.TriggerCheckpointAsync(id, new Progress(_ => { }), cancellationToken: invocation.CancellationToken);
            }
            else if (!Console.IsErrorRedirected)
            {
                stats = await output.Error.Status().StartAsync(
                    $"Triggering a checkpoint of job {id}",
                    context => platform.TriggerCheckpointAsync(id, new Progress(s => context.Status(Markup.Escape(Describe(s)))), cancellationToken: invocation.CancellationToken));
            }
            else
            {
                // Not a terminal: a plain line whenever another subtask acknowledged.
                var reported = -1;
                stats = await platform.TriggerCheckpointAsync(
                    id,
                    new Progress(s =>
                    {
                        if (s.Status == CheckpointStatus.InProgress && Interlocked.Exchange(ref reported, s.Subtasks.Count) != s.Subtasks.Count)
                        {
                            Console.Error.WriteLine(Describe(s));
                        }
                    }),
                    cancellationToken: invocation.CancellationToken);
            }

            if (output.Json)
            {
                output.WriteJson(CheckpointView.From(stats));
            }
            else if (stats.Status == CheckpointStatus.Completed)
            {
                output.Line($"Checkpoint {stats.Id} of job {id} completed in {Output.Duration(stats.EndToEndDuration)}: " +
                            $"state {Output.Bytes(stats.StateSize)}, checkpointed {Output.Bytes(stats.CheckpointedSize)}, {stats.Subtasks.Count} subtasks.");
            }

            if (stats.Status == CheckpointStatus.Completed)
            {
                return ExitCodes.Ok;
            }

            output.ReportError($"Checkpoint {stats.Id} of job {id} failed: {stats.FailureReason ?? "no reason was given"}", null);
            return ExitCodes.Failed;
        }));
        return command;
    }

    /// <summary><c>checkpoints &lt;jobId&gt;</c>: the counts and the recent history.</summary>
    public static Command Checkpoints()
    {
        var jobId = CommandLine.JobIdArgument();
        var command = new Command("checkpoints", "Show a job's checkpoint counts and its recent checkpoints, newest first.") { jobId };
        command.SetAction((parseResult, cancellationToken) => Invocation.RunAsync(parseResult, cancellationToken, async invocation =>
        {
            var id = parseResult.GetRequiredValue(jobId);
            var platform = await invocation.ConnectAsync();
            await invocation.RequireJobAsync(platform, id);
            var statistics = await platform.GetCheckpointStatisticsAsync(id).WaitAsync(invocation.CancellationToken);
            var output = invocation.Output;
            if (output.Json)
            {
                output.WriteJson(new
                {
                    jobId = id,
                    statistics.Completed,
                    statistics.Failed,
                    statistics.InProgress,
                    statistics.Restored,
                    statistics.LatestRestoredId,
                    statistics.Retained,
                    statistics.SkippedAsCorrupt,
                    checkpoints = statistics.History.Select(CheckpointView.From).ToList(),
                });
                return ExitCodes.Ok;
            }

            output.Line($"Job {id}: {statistics.Completed} completed, {statistics.Failed} failed, {statistics.InProgress} in progress, " +
                        $"restored {statistics.Restored} time(s)" + (statistics.LatestRestoredId is { } restored ? $" (latest from {restored})" : "") +
                        $"; retained: {(statistics.Retained.Count == 0 ? "none" : string.Join(", ", statistics.Retained))}.");
            foreach (var skipped in statistics.SkippedAsCorrupt)
            {
                output.Line($"Skipped as corrupt: {skipped}");
            }

            if (statistics.History.Count == 0)
            {
                output.Line("No checkpoints yet.");
                return ExitCodes.Ok;
            }

            var table = Output.Table("ID", "STATUS", "TRIGGERED", "DURATION", "STATE SIZE", "CHECKPOINTED", "ACKS", "FAILURE");
            foreach (var checkpoint in statistics.History)
            {
                Output.Row(
                    table,
                    checkpoint.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) + (checkpoint.SavepointPath is not null ? " (savepoint)" : checkpoint.IsManual ? " (manual)" : ""),
                    checkpoint.Status.ToString(),
                    Output.Time(checkpoint.TriggeredAt),
                    Output.Duration(checkpoint.EndToEndDuration),
                    Output.Bytes(checkpoint.StateSize),
                    Output.Bytes(checkpoint.CheckpointedSize),
                    $"{checkpoint.Subtasks.Count}/{checkpoint.SubtasksTotal}",
                    checkpoint.FailureReason);
            }

            output.Console.Write(table);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static string Describe(CheckpointStats stats) =>
        $"Checkpoint {stats.Id}: {stats.Subtasks.Count}/{stats.SubtasksTotal} subtasks acknowledged, {Output.Bytes(stats.StateSize)} so far";

    /// <summary>Reports progress synchronously, on the caller's thread (<see cref="Progress{T}"/> would post it elsewhere).</summary>
    private sealed class Progress(Action<CheckpointStats> report) : IProgress<CheckpointStats>
    {
        public void Report(CheckpointStats value) => report(value);
    }
}

/// <summary>One checkpoint (or savepoint, which has a path) in the JSON output: sizes in bytes, the duration in milliseconds.</summary>
internal sealed record CheckpointView(
    long Id,
    CheckpointStatus Status,
    bool Manual,
    DateTimeOffset TriggeredAt,
    double? DurationMs,
    long StateSize,
    long CheckpointedSize,
    int AcknowledgedSubtasks,
    int TotalSubtasks,
    string? FailureReason,
    string? SavepointPath)
{
    public static CheckpointView From(CheckpointStats stats) => new(
        stats.Id,
        stats.Status,
        stats.IsManual,
        stats.TriggeredAt,
        stats.EndToEndDuration?.TotalMilliseconds,
        stats.StateSize,
        stats.CheckpointedSize,
        stats.Subtasks.Count,
        stats.SubtasksTotal,
        stats.FailureReason,
        stats.SavepointPath);
}
