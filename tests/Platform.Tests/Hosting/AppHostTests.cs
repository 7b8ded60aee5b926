using System.Globalization;
using System.Text.RegularExpressions;
using Platform.Connectors;
using Platform.Samples;
using Xunit.Abstractions;

namespace Platform.Tests.Hosting;

/// <summary>
/// The Aspire AppHost (Platform.AppHost.dll) as the README runs it, as a process of its own: it starts the silos through
/// DCP, runs the demo, and leaves no silo, service or DCP process behind however it ends.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed partial class AppHostTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);
    private static readonly TimeSpan CleanupTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_demo_runs_on_two_silos_prints_the_dashboard_and_the_top_words_exits_0_and_leaves_no_process_running()
    {
        var outputDirectory = Infrastructure.TestData.NewDirectory("apphost-output");
        await using var appHost = ChildProcess.Start(BuiltPrograms.AppHost, ["--silos", "2", "--output", outputDirectory], new Dictionary<string, string>());
        var exited = await appHost.WaitForExitAsync(Timeout);
        var text = appHost.Output;
        output.WriteLine(text);

        Assert.True(exited, $"The AppHost was still running after {Timeout}.");
        Assert.Equal(0, appHost.ExitCode);
        Assert.Matches(@"Login to the dashboard at http://localhost:\d+/login\?t=\w+", text);
        Assert.Matches(@"\[apphost\] dashboard: http://localhost:\d+", text);

        var counts = ExpectedCounts();
        var expected = counts
            .OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal)
            .Take(10)
            .Select((p, i) => $"{i + 1} {p.Key} {p.Value}")
            .ToList();
        var printed = TableRow().Matches(text).Select(m => $"{m.Groups["rank"].Value} {m.Groups["word"].Value} {m.Groups["count"].Value}").ToList();
        Assert.Equal(expected, printed);
        Assert.Matches(@"Subtasks per silo: silo-0 \(\d+\), silo-1 \(\d+\)", text);

        // The file sink committed part files of both subtasks, holding each running count of each word exactly once.
        var committed = FileSink.CommittedFiles(outputDirectory).Select(Path.GetFileName).ToList();
        Assert.Contains(committed, f => f!.StartsWith("part-0-", StringComparison.Ordinal));
        Assert.Contains(committed, f => f!.StartsWith("part-1-", StringComparison.Ordinal));
        Assert.Equal(ExpectedLines(counts), FileSink.ReadCommittedLines(outputDirectory).Order(StringComparer.Ordinal));
        Assert.Contains($"  {committed[0]}  ", text, StringComparison.Ordinal);

        Assert.Equal(2, HealthySilos().Matches(text).Count);
        await UntilNothingIsLeftAsync(appHost, ClusterId(text), ports: []);
    }

    [Fact]
    public async Task With_Redis_clustering_Azure_Blob_checkpoints_and_RocksDB_the_demo_runs_and_SIGTERM_stops_every_process()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // SIGTERM is a POSIX signal; the checks read /proc.
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
            Assert.Contains("(Redis clustering; Azure Blob checkpoints; RocksDB state)", text, StringComparison.Ordinal);
            Assert.Matches(@"job word-count-\w+ Finished", text);
            Assert.Equal(10, TableRow().Matches(text).Count);
            var clusterId = ClusterId(text);
            var redisPort = RedisPort().Match(text).Groups["port"].Value;
            var blobPort = BlobPort().Match(text).Groups["port"].Value;
            Assert.NotEmpty(SiloProcesses(clusterId));
            Assert.NotEmpty(ProcessesListeningOn(redisPort));
            Assert.NotEmpty(ProcessesListeningOn(blobPort));

            // The streaming job checkpoints into Azurite's blob container, not into the file-system checkpoint directory.
            await Poll.UntilAsync(() => CompletedCheckpoints().IsMatch(appHost.Output), Timeout, () => "the AppHost reports a completed checkpoint of its streaming job");
            var container = new Azure.Storage.Blobs.BlobContainerClient(
                $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={Infrastructure.AzuriteProcess.AccountKey};BlobEndpoint=http://127.0.0.1:{blobPort}/devstoreaccount1;",
                "checkpoints");
            var blobs = new List<string>();
            await foreach (var blob in container.GetBlobsAsync())
            {
                blobs.Add(blob.Name);
            }

            Assert.Contains(blobs, name => name.EndsWith("/_metadata", StringComparison.Ordinal) && name.Contains("/chk-", StringComparison.Ordinal));
            var checkpointDirectory = Path.Combine(RunDirectory().Match(text).Groups["dir"].Value.Trim(), "checkpoints");
            Assert.False(Directory.Exists(checkpointDirectory) && Directory.EnumerateFileSystemEntries(checkpointDirectory).Any(), $"{checkpointDirectory} should stay empty");

            appHost.Terminate();

            Assert.True(await appHost.WaitForExitAsync(Timeout), $"The AppHost was still running {Timeout} after SIGTERM.");
            Assert.Equal(0, appHost.ExitCode);
            await UntilNothingIsLeftAsync(appHost, clusterId, [redisPort, blobPort]);
        }
        finally
        {
            output.WriteLine(appHost.Output);
        }
    }

    [Fact]
    public async Task Ctrl_C_before_the_demo_finished_stops_every_silo_and_exits_130()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // SIGINT is a POSIX signal; the checks read /proc.
        }

        var outputDirectory = Infrastructure.TestData.NewDirectory("apphost-output");
        await using var appHost = ChildProcess.Start(BuiltPrograms.AppHost, ["--silos", "2", "--output", outputDirectory], new Dictionary<string, string>());
        try
        {
            // silo-1 only starts once silo-0 (the primary) is healthy, so the demo cannot have run yet when this is seen.
            await Poll.UntilAsync(
                () => appHost.HasExited ? throw new InvalidOperationException($"The AppHost exited with code {appHost.ExitCode}.") : appHost.Output.Contains("] silo-0 pid=", StringComparison.Ordinal),
                Timeout,
                () => "the AppHost reports silo-0 healthy");
            var clusterId = ClusterId(appHost.Output);
            Assert.NotEmpty(SiloProcesses(clusterId));

            appHost.Interrupt();

            Assert.True(await appHost.WaitForExitAsync(Timeout), $"The AppHost was still running {Timeout} after SIGINT.");
            Assert.Equal(130, appHost.ExitCode);
            Assert.DoesNotContain("submitted job", appHost.Output, StringComparison.Ordinal);
            await UntilNothingIsLeftAsync(appHost, clusterId, ports: []);
        }
        finally
        {
            output.WriteLine(appHost.Output);
        }
    }

    [Fact]
    public async Task With_Azure_Storage_clustering_the_demo_finishes_exactly_membership_is_in_Azurite_s_table_and_a_killed_AppHost_leaves_nothing_behind()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // Reads /proc.
        }

        // --clustering azure with --storage azure: membership, control state and checkpoints share one Azurite.
        var outputDirectory = Infrastructure.TestData.NewDirectory("apphost-output");
        await using var appHost = ChildProcess.Start(
            BuiltPrograms.AppHost,
            ["--silos", "2", "--output", outputDirectory, "--clustering", "azure", "--storage", "azure", "--keep-running"],
            new Dictionary<string, string>());
        try
        {
            await UntilItKeepsRunningAsync(appHost);
            var text = appHost.Output;
            Assert.Contains("(Azure Table clustering, Azure Blob control state; Azure Blob checkpoints; heap state)", text, StringComparison.Ordinal);
            Assert.Contains(", membership in Azure Table storage", text, StringComparison.Ordinal);
            Assert.Equal(ExpectedLines(ExpectedCounts()), FileSink.ReadCommittedLines(outputDirectory).Order(StringComparer.Ordinal));
            var clusterId = ClusterId(text);
            var azurite = AzuritePorts().Match(text);
            Assert.True(azurite.Success, "The AppHost printed no Azurite ports.");
            var blobPort = azurite.Groups["blob"].Value;
            var tablePort = azurite.Groups["table"].Value;
            var account = $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={Infrastructure.AzuriteProcess.AccountKey};" +
                          $"BlobEndpoint=http://127.0.0.1:{blobPort}/devstoreaccount1;TableEndpoint=http://127.0.0.1:{tablePort}/devstoreaccount1;";

            // Both silos are Active rows of this cluster in Orleans' membership table (beside its version row).
            var statuses = new List<string>();
            await foreach (var row in new Azure.Data.Tables.TableServiceClient(account).GetTableClient("OrleansSiloInstances").QueryAsync<Azure.Data.Tables.TableEntity>())
            {
                if (row.PartitionKey.Contains(clusterId, StringComparison.Ordinal) && row.GetString("Status") is { } status)
                {
                    statuses.Add(status);
                }
            }

            Assert.Equal(["Active", "Active"], statuses);

            // The job managers' and coordinators' state is in the grain-state container, not in the state directory.
            var grainState = new List<string>();
            await foreach (var blob in new Azure.Storage.Blobs.BlobServiceClient(account).GetBlobContainerClient("grainstate").GetBlobsAsync())
            {
                grainState.Add(blob.Name);
            }

            Assert.Contains(grainState, name => name.Contains("coordinator", StringComparison.OrdinalIgnoreCase));
            var stateDirectory = Path.Combine(RunDirectory().Match(text).Groups["dir"].Value.Trim(), "state");
            Assert.False(Directory.Exists(stateDirectory) && Directory.EnumerateFileSystemEntries(stateDirectory).Any(), $"{stateDirectory} should stay empty");

            Assert.NotEmpty(SiloProcesses(clusterId));
            Assert.NotEmpty(ProcessesListeningOn(blobPort));
            Assert.NotEmpty(DcpProcessesOf(appHost.Id));

            // SIGKILL: the AppHost runs no cleanup at all; DCP watches it and stops every resource it started.
            appHost.Kill();

            await UntilNothingIsLeftAsync(appHost, clusterId, [blobPort, tablePort]);
        }
        finally
        {
            output.WriteLine(appHost.Output);
        }
    }

    [Theory]
    [InlineData("--silos", "0", "Option '--silos' (AppHost:Silos) is '0'; it must be a whole number from 1 to 16.")]
    [InlineData("--clustering", "zookeeper", "Option '--clustering' (AppHost:Clustering) is 'zookeeper'; it must be development, redis or azure.")]
    [InlineData("--colour", "red", "Unknown option '--colour'.")]
    public async Task A_bad_option_is_named_with_what_to_do_and_exits_2(string option, string value, string message)
    {
        await using var appHost = ChildProcess.Start(BuiltPrograms.AppHost, [option, value], new Dictionary<string, string>());
        Assert.True(await appHost.WaitForExitAsync(Timeout), $"The AppHost was still running after {Timeout}.");
        output.WriteLine(appHost.Output);

        Assert.Equal(2, appHost.ExitCode);
        Assert.Contains($"error: {message}", appHost.Output, StringComparison.Ordinal);
        Assert.Contains("Usage: dotnet run --project src/AppHost", appHost.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Distributed application starting", appHost.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_README_shows_the_AppHost_s_Program_cs_as_it_is()
    {
        var program = File.ReadAllText(Path.Combine(BuiltPrograms.Root, "src", "AppHost", "Program.cs")).ReplaceLineEndings("\n").TrimEnd('\n');
        var readme = File.ReadAllText(Path.Combine(BuiltPrograms.Root, "README.md")).ReplaceLineEndings("\n");

        Assert.Contains($"```csharp\n{program}\n```", readme, StringComparison.Ordinal);
    }

    /// <summary>Each word's count in the sample input, counted here independently of the platform.</summary>
    internal static Dictionary<string, long> ExpectedCounts() =>
        File.ReadLines(Path.Combine(BuiltPrograms.Root, "samples", "wordcount", "input.txt"))
            .SelectMany(Tokenizer.Split)
            .GroupBy(w => w)
            .ToDictionary(g => g.Key, g => (long)g.Count());

    /// <summary>The file sink's lines for <paramref name="counts"/>: each running count of each word once, sorted.</summary>
    internal static IEnumerable<string> ExpectedLines(Dictionary<string, long> counts) =>
        counts.SelectMany(p => Enumerable.Range(1, (int)p.Value).Select(n => $"{p.Key}\t{n.ToString(CultureInfo.InvariantCulture)}"))
            .Order(StringComparer.Ordinal);

    /// <summary>Waits until no silo of the cluster, no service on the ports and no DCP process of the AppHost is left.</summary>
    private static Task UntilNothingIsLeftAsync(ChildProcess appHost, string clusterId, string[] ports) => Poll.UntilAsync(
        () => SiloProcesses(clusterId).Count == 0 && ports.All(p => ProcessesListeningOn(p).Count == 0) && DcpProcessesOf(appHost.Id).Count == 0,
        CleanupTimeout,
        () => $"silo processes of {clusterId} ({string.Join(", ", SiloProcesses(clusterId))}), services on {string.Join(", ", ports)} " +
              $"({string.Join(", ", ports.SelectMany(ProcessesListeningOn))}) and DCP processes of {appHost.Id} ({string.Join(", ", DcpProcessesOf(appHost.Id))}) are gone");

    /// <summary>Waits until an AppHost started with --keep-running says the application keeps running (fails if it exits first).</summary>
    private static Task UntilItKeepsRunningAsync(ChildProcess appHost) => Poll.UntilAsync(
        () => appHost.HasExited ? throw new InvalidOperationException($"The AppHost exited with code {appHost.ExitCode}.") : appHost.Output.Contains("keeps running", StringComparison.Ordinal),
        Timeout,
        () => $"the AppHost says the application keeps running; the last lines it printed:{Environment.NewLine}{Tail(appHost.Output, 20)}");

    private static string Tail(string text, int lines) =>
        string.Join(Environment.NewLine, text.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).TakeLast(lines));

    private static string ClusterId(string text) =>
        StartingCluster().Match(text) is { Success: true } m ? m.Groups["id"].Value : throw new InvalidOperationException("The AppHost printed no cluster id.");

    /// <summary>Live processes (not zombies) whose environment names the cluster: the silos and the <c>dotnet run</c> that DCP starts each with.</summary>
    internal static List<int> SiloProcesses(string clusterId) =>
        LiveProcesses(pid => File.ReadAllText($"/proc/{pid}/environ").Split('\0').Contains($"Orleans__ClusterId={clusterId}"));

    /// <summary>Live processes whose command line names the port as an argument or ends in 127.0.0.1:port (redis-server's title).</summary>
    private static List<int> ProcessesListeningOn(string port) =>
        LiveProcesses(pid =>
        {
            var arguments = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            return arguments.Contains(port) || arguments.Any(a => a.EndsWith($"127.0.0.1:{port}", StringComparison.Ordinal));
        });

    /// <summary>DCP's processes that watch the AppHost (<c>dcp start-apiserver --monitor PID</c>).</summary>
    private static List<int> DcpProcessesOf(int appHostPid) =>
        LiveProcesses(pid =>
        {
            var arguments = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            return Path.GetFileName(arguments[0]) == "dcp" && arguments.Zip(arguments.Skip(1)).Any(p => p.First == "--monitor" && p.Second == appHostPid.ToString(CultureInfo.InvariantCulture));
        });

    private static List<int> LiveProcesses(Func<int, bool> matches)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                if (matches(pid) && !File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ", StringComparison.Ordinal))
                {
                    found.Add(pid);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Gone while we looked, or not ours to read.
            }
        }

        return found;
    }

    [GeneratedRegex(@"starting \d+ silos? of cluster '(?<id>[^']+)'")]
    private static partial Regex StartingCluster();

    [GeneratedRegex(@"^\[apphost\] silo-\d+ pid=\d+ .* is healthy$", RegexOptions.Multiline)]
    private static partial Regex HealthySilos();

    [GeneratedRegex(@"^\[apphost\] redis pid=\d+ tcp=127\.0\.0\.1:(?<port>\d+)", RegexOptions.Multiline)]
    private static partial Regex RedisPort();

    [GeneratedRegex(@"^\[apphost\] azurite pid=\d+ blob=127\.0\.0\.1:(?<port>\d+)", RegexOptions.Multiline)]
    private static partial Regex BlobPort();

    [GeneratedRegex(@"^\[apphost\] azurite pid=\d+ blob=127\.0\.0\.1:(?<blob>\d+) queue=127\.0\.0\.1:\d+ table=127\.0\.0\.1:(?<table>\d+)", RegexOptions.Multiline)]
    private static partial Regex AzuritePorts();

    [GeneratedRegex(@"streaming job \S+ Running: checkpoints [1-9]\d* completed")]
    private static partial Regex CompletedCheckpoints();

    [GeneratedRegex(@"^\s+run directory (?<dir>.+)$", RegexOptions.Multiline)]
    private static partial Regex RunDirectory();

    [GeneratedRegex(@"^\s+(?<rank>\d+)\s+(?<word>\S+)\s+(?<count>\d+)\s*$", RegexOptions.Multiline)]
    private static partial Regex TableRow();
}
