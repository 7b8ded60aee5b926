using System.Globalization;
using Platform.Client;
using Platform.Connectors;
using Platform.Runtime;
using Platform.Samples;

namespace Platform.AppHost;

/// <summary>Submits the word-count job, waits for it, and prints the top words and where the output went.</summary>
internal static class WordCountDemo
{
    private const int TopWords = 10;
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(1);

    /// <summary>Runs the demo; returns its result when the job finished, else <c>null</c> (the reason is printed).</summary>
    /// <param name="siloName">Names a silo from the address a task status reports, for the summary.</param>
    public static async Task<WordCountResult?> RunAsync(
        IClusterClient client,
        string input,
        string outputDirectory,
        int parallelism,
        Func<string, string> siloName,
        ConsoleOutput console,
        CancellationToken cancellationToken)
    {
        PrepareOutputDirectory(outputDirectory);
        var platform = new PlatformClient(client);

        string jobId;
        try
        {
            // Exactly-once checkpoints every second on the silos' default checkpoint storage (file system unless --storage azure).
            var job = WordCountJob.Build(input, parallelism, outputDirectory);
            job.EnableCheckpointing(TimeSpan.FromSeconds(1));
            jobId = await platform.SubmitAsync(job, cancellationToken);
        }
        catch (JobValidationException ex)
        {
            console.Error(ex.Message);
            return null;
        }

        console.Info($"submitted job {jobId}: word count over {input}, parallelism {parallelism}");
        var status = await WaitWithProgressAsync(platform, jobId, console, cancellationToken);
        if (status.State != JobState.Finished)
        {
            console.Error($"job {jobId} ended {status.State}: {status.Failure?.Describe() ?? "no failure was reported"}");
            return null;
        }

        var running = await platform.GetCollectedAsync<WordCount>(jobId, WordCountJob.CollectSinkUid);
        var counts = WordCountJob.FinalCounts(running);
        var elapsed = (status.EndedAt ?? DateTimeOffset.UtcNow) - status.SubmittedAt;
        console.Info($"job {jobId} {status.State} in {elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s: " +
                     $"{running.Count} words, {counts.Count} distinct");
        console.Line();
        PrintTopWords(counts, console);
        console.Line();
        PrintTasks(status, siloName, console);
        PrintOutputFiles(outputDirectory, console);
        return new WordCountResult(jobId, counts, running.Count);
    }

    /// <summary>Waits for the job to end, printing its subtasks' states and completed checkpoints whenever they change.</summary>
    private static async Task<JobStatusInfo> WaitWithProgressAsync(PlatformClient platform, string jobId, ConsoleOutput console, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + JobTimeout;
        var last = "";
        while (true)
        {
            try
            {
                return await platform.WaitForCompletionAsync(jobId, ProgressInterval, cancellationToken);
            }
            catch (TimeoutException) when (DateTime.UtcNow < deadline)
            {
                // Still running: say how far it got.
            }

            var status = await platform.GetStatusAsync(jobId);
            var checkpoints = await platform.GetCheckpointStatisticsAsync(jobId);
            var subtasks = string.Join(", ", status.Tasks.GroupBy(t => t.State).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key.ToString().ToLowerInvariant()}"));
            var line = $"job {jobId} {status.State}: subtasks {subtasks}; checkpoints {checkpoints.Completed} completed, {checkpoints.Failed} failed, {checkpoints.InProgress} in progress";
            if (line != last)
            {
                console.Info(line);
                last = line;
            }
        }
    }

    private static void PrepareOutputDirectory(string outputDirectory)
    {
        // Part files of an earlier run would otherwise linger beside the new ones: committed ones, and the hidden
        // in-progress ones a run that was killed left behind.
        Directory.CreateDirectory(outputDirectory);
        foreach (var stale in Directory.EnumerateFiles(outputDirectory, "part-*").Concat(Directory.EnumerateFiles(outputDirectory, ".part-*.inprogress")))
        {
            File.Delete(stale);
        }
    }

    private static void PrintTopWords(Dictionary<string, long> counts, ConsoleOutput console)
    {
        var top = counts.OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).Take(TopWords).ToList();
        var width = Math.Max("word".Length, top.Count == 0 ? 0 : top.Max(p => p.Key.Length));
        console.Line($"Top {top.Count} words");
        console.Line($"  {"rank",4}  {"word".PadRight(width)}  {"count",7}");
        console.Line($"  {new string('-', 4)}  {new string('-', width)}  {new string('-', 7)}");
        for (var i = 0; i < top.Count; i++)
        {
            console.Line($"  {i + 1,4}  {top[i].Key.PadRight(width)}  {top[i].Value,7}");
        }
    }

    private static void PrintTasks(JobStatusInfo status, Func<string, string> siloName, ConsoleOutput console)
    {
        var bySilo = status.Tasks.GroupBy(t => t.Silo is null ? "(unknown)" : siloName(t.Silo)).OrderBy(g => g.Key, StringComparer.Ordinal);
        console.Line($"Subtasks per silo: {string.Join(", ", bySilo.Select(g => $"{g.Key} ({g.Count()})"))}");
    }

    private static void PrintOutputFiles(string outputDirectory, ConsoleOutput console)
    {
        // Only committed part files: the file sink renames each into view once the checkpoint that covers it completed.
        var parts = FileSink.CommittedFiles(outputDirectory);
        console.Line($"Output: {outputDirectory}");
        foreach (var part in parts)
        {
            console.Line($"  {Path.GetFileName(part)}  {File.ReadLines(part).Count()} lines");
        }

        console.Line("  Each line is 'word<TAB>running count', one per occurrence; a word's highest count is its total.");
    }
}

/// <summary>What a finished word-count job counted: each word's total, and how many words it read.</summary>
internal sealed record WordCountResult(string JobId, IReadOnlyDictionary<string, long> Counts, long Words);
