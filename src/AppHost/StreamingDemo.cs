using Platform.Client;
using Platform.Runtime;

namespace Platform.AppHost;

/// <summary>
/// With <c>--keep-running</c>: an endless job (the catalog's <c>generated-word-count</c>, rate-limited) that checkpoints
/// every second, so that the CLI has a live job to watch, savepoint and stop, and the checkpoint storage fills; its
/// progress is printed whenever its checkpoint counts change, at most every few seconds.
/// </summary>
internal static class StreamingDemo
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(5);

    /// <summary>Starts the job and returns its id.</summary>
    public static async Task<string> StartAsync(IClusterClient client, int parallelism, ConsoleOutput console, CancellationToken cancellationToken)
    {
        var platform = new PlatformClient(client);
        var jobId = await platform.RunAsync(
            "generated-word-count",
            new Dictionary<string, string> { ["rate"] = "200", ["checkpoint-interval"] = "1s" },
            parallelism,
            cancellationToken);
        console.Info($"started streaming job {jobId} (generated-word-count, 200 words/s per source subtask, a checkpoint every second)");
        return jobId;
    }

    /// <summary>Prints the job's progress until cancelled (Ctrl+C) or the job ends.</summary>
    public static async Task WatchAsync(IClusterClient client, string jobId, ConsoleOutput console, CancellationToken cancellationToken)
    {
        var platform = new PlatformClient(client);
        var last = "";
        while (!cancellationToken.IsCancellationRequested)
        {
            var status = await platform.GetStatusAsync(jobId);
            var checkpoints = await platform.GetCheckpointStatisticsAsync(jobId);
            var line = $"streaming job {jobId} {status.State}: checkpoints {checkpoints.Completed} completed, {checkpoints.Failed} failed" +
                       (checkpoints.History.FirstOrDefault(c => c.Status == Checkpointing.CheckpointStatus.Completed) is { } latest
                           ? $", latest {latest.Id} ({latest.StateSize} bytes of state)"
                           : "");
            if (line != last)
            {
                console.Info(line);
                last = line;
            }

            if (status.State.IsTerminal())
            {
                return;
            }

            await Task.Delay(ProgressInterval, cancellationToken);
        }
    }
}
