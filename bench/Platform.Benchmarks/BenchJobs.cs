using System.Diagnostics;
using Platform.Client;
using Platform.Runtime;

namespace Platform.Benchmarks;

/// <summary>A benchmark could not produce a trustworthy figure (a job failed, timed out, or computed the wrong state).</summary>
internal sealed class BenchmarkFailedException(string message) : Exception(message);

/// <summary>Waiting on jobs and on RocksDB's files, shared by the benchmarks that drive long-running jobs.</summary>
internal static class BenchJobs
{
    /// <summary>
    /// Polls <paramref name="done"/> every 20 ms; fails fast if the job ends (or, unless allowed, restarts) meanwhile.
    /// Callers that need a precise end time take it from a timestamp their functions record, not from this poll.
    /// </summary>
    public static async Task WaitUntilAsync(
        PlatformClient platform, string jobId, Func<bool> done, string what, TimeSpan timeout, bool allowRestart = false, Func<long>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        var lastCheck = TimeSpan.Zero;
        var lastProgress = TimeSpan.Zero;
        while (!done())
        {
            if (clock.Elapsed > timeout)
            {
                throw new BenchmarkFailedException($"Timed out after {timeout} waiting for {what}.");
            }

            if (clock.Elapsed - lastCheck > TimeSpan.FromSeconds(1))
            {
                lastCheck = clock.Elapsed;
                var status = await platform.GetStatusAsync(jobId);
                if (status.State.IsTerminal() || (!allowRestart && status.Restarts > 0))
                {
                    var cause = status.Failure ?? status.RestartCauses.FirstOrDefault();
                    throw new BenchmarkFailedException($"While waiting for {what}, the job is {status.State} after {status.Restarts} restart(s): {cause?.Describe()}");
                }
            }

            if (progress is not null && clock.Elapsed - lastProgress > TimeSpan.FromSeconds(10))
            {
                lastProgress = clock.Elapsed;
                Console.WriteLine($"  … {what}: {progress():N0} after {clock.Elapsed.TotalSeconds:F0} s");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Cancels a job after a benchmark failed, so that the silo can stop; reports but swallows errors.</summary>
    public static async Task TryCancelAsync(PlatformClient platform, string jobId)
    {
        try
        {
            await platform.CancelAsync(jobId);
            await platform.WaitForCompletionAsync(jobId, TimeSpan.FromMinutes(2));
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"Cancelling job {jobId} failed: {ex.Message}");
        }
    }

    /// <summary>
    /// Waits until the SST files under <paramref name="rocksDbDirectory"/> (checkpoint staging directories aside) have
    /// not changed for three seconds, at most five minutes: RocksDB's compactions are done. Returns the time waited.
    /// </summary>
    public static async Task<TimeSpan> SettleCompactionsAsync(string rocksDbDirectory)
    {
        var watch = Stopwatch.StartNew();
        var previous = "";
        var stableSince = TimeSpan.Zero;
        while (watch.Elapsed < TimeSpan.FromMinutes(5))
        {
            var current = string.Join("|", Directory.EnumerateFiles(rocksDbDirectory, "*.sst", SearchOption.AllDirectories)
                .Where(f => !f.Contains(".chk-", StringComparison.Ordinal)).Order(StringComparer.Ordinal)
                .Select(f => $"{f}:{SafeLength(f)}"));
            if (current != previous)
            {
                previous = current;
                stableSince = watch.Elapsed;
            }
            else if (watch.Elapsed - stableSince >= TimeSpan.FromSeconds(3))
            {
                break;
            }

            await Task.Delay(500);
        }

        return watch.Elapsed;
    }

    /// <summary>A byte count for people: B, KiB, MiB or GiB.</summary>
    public static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F2} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F1} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:F1} KiB",
        _ => $"{bytes} B",
    };

    private static long SafeLength(string path)
    {
        try
        {
            return new FileInfo(path).Length;
        }
        catch (IOException)
        {
            return -1; // deleted by a compaction meanwhile
        }
    }
}
