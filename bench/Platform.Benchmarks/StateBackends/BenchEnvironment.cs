using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Platform.Client;
using Platform.Graph;
using Platform.Runtime;

namespace Platform.Benchmarks.StateBackends;

/// <summary>Process and machine measurements (the same as keyed-count's, which keeps its own private copies).</summary>
internal static class BenchEnvironment
{
    /// <summary>CPU time of this process (silo, client and benchmark: they share it).</summary>
    public static TimeSpan CpuTime()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime;
    }

    /// <summary>The most memory this process has held so far (Linux: VmHWM).</summary>
    public static long PeakWorkingSet()
    {
        using var process = Process.GetCurrentProcess();
        return process.PeakWorkingSet64;
    }

    /// <summary>CPU time the whole machine spent busy (Linux /proc/stat; null elsewhere), to spot other processes' load.</summary>
    public static double? MachineBusySeconds()
    {
        try
        {
            if (!File.Exists("/proc/stat"))
            {
                return null;
            }

            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);

            // cpu user nice system idle iowait irq softirq steal ...; in USER_HZ ticks (100 per second on Linux).
            long busy = 0;
            foreach (var i in (int[])[1, 2, 3, 6, 7, 8])
            {
                busy += long.Parse(fields[i], CultureInfo.InvariantCulture);
            }

            return busy / 100.0;
        }
        catch (Exception ex) when (ex is IOException or FormatException or IndexOutOfRangeException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Bytes of the files under <paramref name="directory"/> (0 when it does not exist).</summary>
    public static long DirectoryBytes(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return 0;
        }

        long total = 0;
        foreach (var file in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories))
        {
            try
            {
                total += new FileInfo(file).Length;
            }
            catch (IOException)
            {
                // Deleted while we walked (a RocksDB compaction or a checkpoint clean-up).
            }
        }

        return total;
    }

    /// <summary>
    /// Submits <paramref name="job"/> and waits until it ends, measuring the wall time, this process's CPU time and the
    /// CPU time other processes used meanwhile (null when the machine's counters cannot be read). The heap is settled
    /// first, so that one run's garbage is not collected on the next run's clock.
    /// </summary>
    public static async Task<(string JobId, JobStatusInfo Status, double WallSeconds, double CpuSeconds, double? OtherCpuSeconds)> RunJobAsync(
        PlatformClient platform, StreamJobBuilder job, TimeSpan timeout)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        var machine = MachineBusySeconds();
        var cpu = CpuTime();
        var wall = Stopwatch.StartNew();
        var jobId = await platform.SubmitAsync(job);
        var status = await platform.WaitForCompletionAsync(jobId, timeout);
        wall.Stop();
        var cpuSeconds = (CpuTime() - cpu).TotalSeconds;
        var others = machine is { } m && MachineBusySeconds() is { } m2 ? Math.Max(0, m2 - m - cpuSeconds) : (double?)null;
        return (jobId, status, wall.Elapsed.TotalSeconds, cpuSeconds, others);
    }

    public static JsonObject MachineJson() => new()
    {
        ["processorCount"] = Environment.ProcessorCount,
        ["cpuModel"] = CpuModel(),
        ["memoryBytes"] = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
        ["os"] = RuntimeInformation.OSDescription,
        ["architecture"] = RuntimeInformation.ProcessArchitecture.ToString(),
        ["dotnet"] = RuntimeInformation.FrameworkDescription,
        ["serverGc"] = GCSettings.IsServerGC,
        ["orleans"] = Version(typeof(IClusterClient).Assembly),
        ["rocksDbSharp"] = Version(typeof(RocksDbSharp.RocksDb).Assembly),
    };

    public static string CpuModel()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
            {
                var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
                if (line is not null)
                {
                    return line[(line.IndexOf(':') + 1)..].Trim();
                }
            }
        }
        catch (IOException)
        {
        }

        return "unknown";
    }

    private static string? Version(Assembly assembly) =>
        assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+', ' ')[0].TrimEnd('.')
        ?? assembly.GetName().Version?.ToString();
}

/// <summary>
/// Notes when subtasks log that they restored keyed state (StreamTask's "restored keyed state of checkpoint" line,
/// written once the state files are read and loaded into the backend), as a second witness of the restore's end.
/// </summary>
internal sealed class RestoreLogCapture : ILoggerProvider
{
    /// <summary>The category the subtasks log under (their grain's).</summary>
    public const string Category = "Platform.Tasks.StreamTaskGrain";

    /// <summary>Stopwatch timestamp and text of every restore line, in order.</summary>
    public ConcurrentQueue<(long Timestamp, string Message)> Restored { get; } = new();

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new Logger(this);

    /// <inheritdoc />
    public void Dispose()
    {
    }

    private sealed class Logger(RestoreLogCapture owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var timestamp = Stopwatch.GetTimestamp();
            var message = formatter(state, exception);
            if (message.Contains("restored keyed state", StringComparison.Ordinal))
            {
                owner.Restored.Enqueue((timestamp, message));
            }
        }
    }
}
