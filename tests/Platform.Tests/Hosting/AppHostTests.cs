using System.Text.RegularExpressions;
using Platform.Connectors;
using Platform.Samples;
using Xunit.Abstractions;

namespace Platform.Tests.Hosting;

/// <summary>The AppHost (Platform.AppHost.dll) as the README runs it: a local cluster of silo processes and the demo.</summary>
[Collection(HostingCollection.Name)]
public sealed partial class AppHostTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task The_demo_runs_on_two_silos_prints_the_top_words_and_leaves_no_silo_running()
    {
        var outputDirectory = Infrastructure.TestData.NewDirectory("apphost-output");
        await using var appHost = ChildProcess.Start(BuiltPrograms.AppHost, ["--silos", "2", "--output", outputDirectory], new Dictionary<string, string>());
        var exited = await appHost.WaitForExitAsync(Timeout);
        var text = appHost.Output;
        output.WriteLine(text);

        Assert.True(exited, $"The AppHost was still running after {Timeout}.");
        Assert.Equal(0, appHost.ExitCode);

        var counts = File.ReadLines(Path.Combine(BuiltPrograms.Root, "samples", "wordcount", "input.txt"))
            .SelectMany(Tokenizer.Split)
            .GroupBy(w => w)
            .Select(g => (Word: g.Key, Count: (long)g.Count()))
            .ToList();
        var expected = counts
            .OrderByDescending(p => p.Count).ThenBy(p => p.Word, StringComparer.Ordinal)
            .Take(10)
            .Select((p, i) => $"{i + 1} {p.Word} {p.Count}")
            .ToList();
        var printed = TableRow().Matches(text).Select(m => $"{m.Groups["rank"].Value} {m.Groups["word"].Value} {m.Groups["count"].Value}").ToList();
        Assert.Equal(expected, printed);

        // The file sink committed part files of both subtasks, holding each running count of each word exactly once.
        var committed = FileSink.CommittedFiles(outputDirectory).Select(Path.GetFileName).ToList();
        Assert.Contains(committed, f => f!.StartsWith("part-0-", StringComparison.Ordinal));
        Assert.Contains(committed, f => f!.StartsWith("part-1-", StringComparison.Ordinal));
        var expectedLines = counts.SelectMany(p => Enumerable.Range(1, (int)p.Count).Select(n => $"{p.Word}\t{n.ToString(System.Globalization.CultureInfo.InvariantCulture)}"));
        Assert.Equal(expectedLines.Order(StringComparer.Ordinal), FileSink.ReadCommittedLines(outputDirectory).Order(StringComparer.Ordinal));
        Assert.Contains($"  {committed[0]}  ", text, StringComparison.Ordinal);

        var silos = StartedSilos(text);
        Assert.Equal(2, silos.Count);
        await Poll.UntilAsync(() => silos.All(IsGone), TimeSpan.FromSeconds(30), () => $"silo processes {string.Join(", ", silos)} are gone");
    }

    [Fact]
    public async Task Terminating_the_AppHost_stops_every_silo_it_started()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // SIGTERM is a POSIX signal.
        }

        var outputDirectory = Infrastructure.TestData.NewDirectory("apphost-output");
        await using var appHost = ChildProcess.Start(BuiltPrograms.AppHost, ["--silos", "2", "--output", outputDirectory, "--keep-running"], new Dictionary<string, string>());
        try
        {
            await UntilItKeepsRunningAsync(appHost);
            var silos = StartedSilos(appHost.Output);
            Assert.Equal(2, silos.Count);
            Assert.All(silos, pid => Assert.False(IsGone(pid), $"silo process {pid} should be running"));

            appHost.Terminate();

            Assert.True(await appHost.WaitForExitAsync(Timeout), $"The AppHost was still running {Timeout} after SIGTERM.");
            Assert.Equal(0, appHost.ExitCode);
            await Poll.UntilAsync(() => silos.All(IsGone), TimeSpan.FromSeconds(30), () => $"silo processes {string.Join(", ", silos)} are gone");
        }
        finally
        {
            output.WriteLine(appHost.Output);
        }
    }

    [Fact]
    public async Task With_Redis_clustering_Azure_Blob_checkpoints_and_RocksDB_the_demo_runs_and_Ctrl_C_stops_every_process()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // SIGINT is a POSIX signal.
        }

        var outputDirectory = Infrastructure.TestData.NewDirectory("apphost-output");
        await using var appHost = ChildProcess.Start(
            BuiltPrograms.AppHost,
            ["--silos", "2", "--output", outputDirectory, "--clustering", "redis", "--storage", "azure", "--backend", "rocksdb", "--keep-running"],
            new Dictionary<string, string>());
        try
        {
            await UntilItKeepsRunningAsync(appHost);
            var text = appHost.Output;
            Assert.Contains("Redis clustering at 127.0.0.1:", text);
            Assert.Contains("Azure Blob checkpoints; RocksDB state", text);
            Assert.Matches(@"job word-count-\w+ Finished", text);
            Assert.Equal(10, TableRow().Matches(text).Count);

            // Every process it started: the silos, redis-server and Azurite's node process.
            var silos = StartedSilos(text);
            var services = StartedServices().Matches(text).ToDictionary(m => m.Groups["name"].Value, m => int.Parse(m.Groups["pid"].Value, System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(2, silos.Count);
            Assert.Equal(["azurite", "redis"], services.Keys.Order(StringComparer.Ordinal));
            Assert.All(silos.Concat(services.Values), pid => Assert.True(IsRunning(pid), $"process {pid} should be running"));

            // The streaming job checkpoints into Azurite's blob container, not into the file-system checkpoint directory.
            await Poll.UntilAsync(
                () => CompletedCheckpoints().IsMatch(appHost.Output),
                Timeout,
                () => "the AppHost reports a completed checkpoint of its streaming job");
            var blobEndpoint = BlobEndpoint().Match(text).Groups["endpoint"].Value;
            var container = new Azure.Storage.Blobs.BlobContainerClient(
                $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={Infrastructure.AzuriteProcess.AccountKey};BlobEndpoint={blobEndpoint};",
                "checkpoints");
            var blobs = new List<string>();
            await foreach (var blob in container.GetBlobsAsync())
            {
                blobs.Add(blob.Name);
            }

            Assert.Contains(blobs, name => name.EndsWith("/_metadata", StringComparison.Ordinal) && name.Contains("/chk-", StringComparison.Ordinal));
            var runDirectory = RunDirectory().Match(text).Groups["dir"].Value.Trim();
            var checkpointDirectory = Path.Combine(runDirectory, "checkpoints");
            Assert.False(Directory.Exists(checkpointDirectory) && Directory.EnumerateFileSystemEntries(checkpointDirectory).Any(), $"{checkpointDirectory} should stay empty");

            appHost.Interrupt();

            Assert.True(await appHost.WaitForExitAsync(Timeout), $"The AppHost was still running {Timeout} after SIGINT.");
            Assert.Equal(0, appHost.ExitCode);
            await Poll.UntilAsync(
                () => silos.All(IsGone) && services.Values.All(pid => !IsRunning(pid)),
                TimeSpan.FromSeconds(30),
                () => $"silo processes {string.Join(", ", silos)} and services {string.Join(", ", services)} are gone");
        }
        finally
        {
            output.WriteLine(appHost.Output);
        }
    }

    [Fact]
    public async Task A_killed_AppHost_leaves_no_silo_redis_server_or_Azurite_behind()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // Reads /proc.
        }

        var outputDirectory = Infrastructure.TestData.NewDirectory("apphost-output");
        await using var appHost = ChildProcess.Start(
            BuiltPrograms.AppHost,
            ["--silos", "2", "--output", outputDirectory, "--clustering", "redis", "--storage", "azure", "--keep-running"],
            new Dictionary<string, string>());
        try
        {
            await UntilItKeepsRunningAsync(appHost);
            var text = appHost.Output;
            var silos = StartedSilos(text);
            var redisPort = RedisAddress().Match(text).Groups["port"].Value;
            var azuritePort = BlobEndpointPort().Match(text).Groups["port"].Value;
            Assert.Equal(2, silos.Count);
            Assert.NotEmpty(ProcessesWith("--port", redisPort));
            Assert.NotEmpty(ProcessesWith("--blobPort", azuritePort));

            // SIGKILL: the AppHost runs no cleanup at all; silos watch their parent, the services their watching shell.
            appHost.Kill();

            await Poll.UntilAsync(
                () => silos.All(IsGone) && ProcessesWith("--port", redisPort).Count == 0 && ProcessesWith("--blobPort", azuritePort).Count == 0,
                TimeSpan.FromSeconds(30),
                () => $"silos {string.Join(", ", silos)}, redis-server on {redisPort} ({string.Join(", ", ProcessesWith("--port", redisPort))}) and Azurite on {azuritePort} ({string.Join(", ", ProcessesWith("--blobPort", azuritePort))}) are gone");
        }
        finally
        {
            output.WriteLine(appHost.Output);
        }
    }

    /// <summary>
    /// The ids of live processes whose command line holds <paramref name="option"/> followed by <paramref name="value"/>,
    /// or an argument ending in 127.0.0.1:<paramref name="value"/>.
    /// </summary>
    private static List<int> ProcessesWith(string option, string value)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            try
            {
                var arguments = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                // redis-server rewrites its title to "redis-server 127.0.0.1:PORT"; the others keep their arguments.
                if ((arguments.Zip(arguments.Skip(1)).Any(p => p.First == option && p.Second == value)
                        || arguments.Any(a => a.EndsWith($"127.0.0.1:{value}", StringComparison.Ordinal)))
                    && IsRunning(pid))
                {
                    found.Add(pid);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Gone while we looked.
            }
        }

        return found;
    }

    [GeneratedRegex(@"^\[apphost\] redis pid=\d+ address=127\.0\.0\.1:(?<port>\d+)", RegexOptions.Multiline)]
    private static partial Regex RedisAddress();

    [GeneratedRegex(@"azurite pid=\d+ blob=http://127\.0\.0\.1:(?<port>\d+)/")]
    private static partial Regex BlobEndpointPort();

    /// <summary>Waits until an AppHost started with --keep-running says its cluster keeps running (fails if it exits first).</summary>
    private static Task UntilItKeepsRunningAsync(ChildProcess appHost) => Poll.UntilAsync(
        () => appHost.HasExited ? throw new InvalidOperationException($"The AppHost exited with code {appHost.ExitCode}.") : appHost.Output.Contains("keeps running", StringComparison.Ordinal),
        Timeout,
        () => "the AppHost says the cluster keeps running");

    /// <summary>Whether a process with this id runs (and is not a zombie).</summary>
    private static bool IsRunning(int pid)
    {
        try
        {
            return !File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    [GeneratedRegex(@"^\[apphost\] (?<name>redis|azurite) pid=(?<pid>\d+)", RegexOptions.Multiline)]
    private static partial Regex StartedServices();

    [GeneratedRegex(@"streaming job \S+ Running: checkpoints [1-9]\d* completed")]
    private static partial Regex CompletedCheckpoints();

    [GeneratedRegex(@"azurite pid=\d+ blob=(?<endpoint>\S+)")]
    private static partial Regex BlobEndpoint();

    [GeneratedRegex(@"^\s+run directory (?<dir>.+)$", RegexOptions.Multiline)]
    private static partial Regex RunDirectory();

    /// <summary>The process ids the AppHost reported for the silos it started ("silo-0 pid=1234 ...").</summary>
    private static List<int> StartedSilos(string text) =>
        [.. StartedSilo().Matches(text).Select(m => int.Parse(m.Groups["pid"].Value, System.Globalization.CultureInfo.InvariantCulture)).Distinct()];

    /// <summary>Whether the process is gone (or only a zombie waiting to be reaped, or the id now belongs to another program).</summary>
    private static bool IsGone(int pid)
    {
        if (!OperatingSystem.IsLinux())
        {
            try
            {
                using var process = System.Diagnostics.Process.GetProcessById(pid);
                return process.HasExited;
            }
            catch (ArgumentException)
            {
                return true;
            }
        }

        try
        {
            var status = File.ReadAllText($"/proc/{pid}/status");
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            return status.Contains("State:\tZ", StringComparison.Ordinal) || !cmdline.Contains("Platform.Silo", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    [GeneratedRegex(@"^\[apphost\] silo-\d+ pid=(?<pid>\d+)", RegexOptions.Multiline)]
    private static partial Regex StartedSilo();

    [GeneratedRegex(@"^\s+(?<rank>\d+)\s+(?<word>\S+)\s+(?<count>\d+)\s*$", RegexOptions.Multiline)]
    private static partial Regex TableRow();
}
