using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Platform.Connectors;
using Platform.Samples;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Platform.Tests.Cli;

/// <summary>The real command line (platform.dll) as a child process, against a real silo process.</summary>
[Collection(HostingCollection.Name)]
public sealed class CliTests(ITestOutputHelper output)
{
    private static readonly TimeSpan SiloTimeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task The_command_line_starts_watches_checkpoints_and_cancels_jobs_on_a_real_silo()
    {
        var ports = Ports.Free(3);
        var (siloPort, gatewayPort, httpPort) = (ports[0], ports[1], ports[2]);
        var clusterId = $"cli-{Guid.NewGuid():N}";
        var savepointRoot = TestData.NewDirectory("cli-savepoints");
        await using var azurite = await AzuriteProcess.StartAsync();
        var container = AzuriteFixture.NewContainerName();
        await using var silo = ChildProcess.Start(BuiltPrograms.Silo, [], new Dictionary<string, string>
        {
            ["Orleans__ClusterId"] = clusterId,
            ["Orleans__ServiceId"] = "platform-cli-tests",
            ["Orleans__Endpoints__SiloPort"] = siloPort.ToString(CultureInfo.InvariantCulture),
            ["Orleans__Endpoints__GatewayPort"] = gatewayPort.ToString(CultureInfo.InvariantCulture),
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{httpPort}",
            ["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
            ["Platform__SavepointDirectory"] = savepointRoot,
            ["Platform__AzureBlob__ConnectionString"] = azurite.ConnectionString,
            ["Platform__AzureBlob__ContainerName"] = container,
        });

        // The gateway and ids come from the environment here; the other test passes --gateway.
        var environment = new Dictionary<string, string>
        {
            ["PLATFORM_GATEWAY"] = $"127.0.0.1:{gatewayPort}",
            ["PLATFORM_CLUSTER_ID"] = clusterId,
            ["PLATFORM_SERVICE_ID"] = "platform-cli-tests",
        };
        var runs = new List<CliResult>();
        async Task<CliResult> Cli(params string[] args)
        {
            var result = await CliProcess.RunAsync(environment, args);
            runs.Add(result);
            return result;
        }

        try
        {
            await Poll.UntilAsync(
                async () => !silo.HasExited ? await SiloHostTests.IsLiveAsync(httpPort) : throw new InvalidOperationException($"The silo exited with code {silo.ExitCode}:\n{silo.Output}"),
                SiloTimeout,
                () => $"the silo answers on http://127.0.0.1:{httpPort}/health/live");

            // catalog: the demo jobs and their arguments.
            var catalog = Ok(await Cli("catalog", "--json"));
            using (var entries = JsonDocument.Parse(catalog.StandardOutput))
            {
                var wordCount = entries.RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == "word-count");
                Assert.Contains(wordCount.GetProperty("arguments").EnumerateArray(), a => a.GetProperty("name").GetString() == "input" && a.GetProperty("type").GetString() == "Path");
            }

            // run word-count over a file, waiting for it: the silo wrote the counts.
            var input = TestData.WriteText(lines: 500, seed: 61);
            var outputDirectory = TestData.NewDirectory("cli-output");
            var finished = Ok(await Cli("run", "word-count", "--arg", $"input={input}", "--arg", $"output={outputDirectory}", "--arg", "collect=false", "--parallelism", "2", "--wait", "--json"));
            using (var run = JsonDocument.Parse(finished.StandardOutput))
            {
                Assert.StartsWith("word-count-", run.RootElement.GetProperty("jobId").GetString(), StringComparison.Ordinal);
                Assert.Equal("Finished", run.RootElement.GetProperty("status").GetProperty("state").GetString());
            }

            var expected = File.ReadLines(input).SelectMany(Tokenizer.Split).GroupBy(w => w).ToDictionary(g => g.Key, g => (long)g.Count());
            var written = FileSink.ReadCommittedLines(outputDirectory).Select(l => l.Split('\t'))
                .GroupBy(f => f[0]).ToDictionary(g => g.Key, g => g.Max(f => long.Parse(f[1], CultureInfo.InvariantCulture)));
            Assert.Equal(expected.OrderBy(p => p.Key), written.OrderBy(p => p.Key));

            // run an endless job: it is running when run returns.
            var started = Ok(await Cli("run", "generated-word-count", "--arg", "rate=200", "--json"));
            string jobId;
            using (var run = JsonDocument.Parse(started.StandardOutput))
            {
                jobId = run.RootElement.GetProperty("jobId").GetString()!;
                Assert.Equal("Running", run.RootElement.GetProperty("status").GetProperty("state").GetString());
            }

            var status = Ok(await Cli("status", jobId));
            Assert.Contains("Running", status.StandardOutput);
            Assert.Contains("count -> discard", status.StandardOutput);

            // checkpoint: one now, waited for; checkpoints --json shows it.
            var checkpoint = Ok(await Cli("checkpoint", jobId));
            var checkpointId = long.Parse(
                System.Text.RegularExpressions.Regex.Match(checkpoint.StandardOutput, $@"Checkpoint (\d+) of job {jobId} completed").Groups[1].Value,
                CultureInfo.InvariantCulture);
            var history = Ok(await Cli("checkpoints", jobId, "--json"));
            using (var checkpoints = JsonDocument.Parse(history.StandardOutput))
            {
                var root = checkpoints.RootElement;
                Assert.Equal(jobId, root.GetProperty("jobId").GetString());
                Assert.True(root.GetProperty("completed").GetInt64() >= 1, history.ToString());
                var manual = root.GetProperty("checkpoints").EnumerateArray().Single(c => c.GetProperty("id").GetInt64() == checkpointId);
                Assert.Equal("Completed", manual.GetProperty("status").GetString());
                Assert.True(manual.GetProperty("manual").GetBoolean());
                Assert.True(manual.GetProperty("stateSize").GetInt64() > 0);
                // The same duration the checkpoint command printed when it completed.
                var durationMs = manual.GetProperty("durationMs").GetDouble();
                Assert.True(durationMs > 0, history.ToString());
                var printed = durationMs < 1_000
                    ? string.Create(CultureInfo.InvariantCulture, $"{durationMs:0} ms")
                    : string.Create(CultureInfo.InvariantCulture, $"{durationMs / 1_000:0.0} s");
                Assert.Contains($"completed in {printed}:", checkpoint.StandardOutput);
                Assert.Equal(4, manual.GetProperty("totalSubtasks").GetInt32());
                Assert.Equal(4, manual.GetProperty("acknowledgedSubtasks").GetInt32());
                Assert.Equal(JsonValueKind.Null, manual.GetProperty("failureReason").ValueKind);
            }

            var list = Ok(await Cli("list"));
            Assert.Contains(jobId, list.StandardOutput);

            // Twenty command lines started at once on this (2-core, busy) machine: each needs seconds of CPU before its
            // first call, and none may report the healthy cluster as unreachable.
            var crowd = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => CliProcess.RunAsync(environment, "list", "--json")));
            foreach (var result in crowd)
            {
                Assert.True(result.ExitCode == 0, result.ToString());
                Assert.Contains(jobId, result.StandardOutput);
            }

            // savepoint: the job keeps running; stop: a savepoint, then the job finishes; run --from-savepoint resumes it.
            var taken = SavepointPath(Ok(await Cli("savepoint", jobId, "--json")));
            Assert.True(File.Exists(Path.Combine(taken, "_metadata")), taken);
            Assert.StartsWith(savepointRoot, taken, StringComparison.Ordinal);

            // A blob target URL: the savepoint goes into the silos' container, and its URL is printed.
            var blobs = new Azure.Storage.Blobs.BlobContainerClient(azurite.ConnectionString, container);
            var blobTarget = $"{blobs.Uri.ToString().TrimEnd('/')}/savepoints/cli";
            var inBlob = Regex.Match(Ok(await Cli("savepoint", jobId, "--target", blobTarget)).StandardOutput, @"http\S+/savepoint-[0-9A-Za-z]+-[0-9a-f]{8}\b").Value;
            Assert.StartsWith(blobTarget + "/savepoint-", inBlob, StringComparison.Ordinal);
            Assert.True(await blobs.GetBlobClient($"{inBlob[(blobs.Uri.ToString().TrimEnd('/').Length + 1)..]}/_metadata").ExistsAsync(), inBlob);
            Ok(await Cli("savepoint", "dispose", inBlob));
            AssertFailure(await Cli("savepoint", "dispose", inBlob), 3, "is not a savepoint");

            var stopped = SavepointPath(Ok(await Cli("stop", jobId, "--json")));
            Assert.Contains("Finished", Ok(await Cli("status", jobId)).StandardOutput);
            var resumed = Ok(await Cli("run", "generated-word-count", "--arg", "rate=200", "--from-savepoint", stopped, "--json"));
            using (var run = JsonDocument.Parse(resumed.StandardOutput))
            {
                jobId = run.RootElement.GetProperty("jobId").GetString()!;
                Assert.Equal("Running", run.RootElement.GetProperty("status").GetProperty("state").GetString());

                // run --from-savepoint returns once every subtask restored its state and runs.
                var tasks = run.RootElement.GetProperty("status").GetProperty("tasks").EnumerateArray().ToList();
                Assert.NotEmpty(tasks);
                Assert.All(tasks, t => Assert.Equal("Running", t.GetProperty("state").GetString()));
            }

            // stop --drain: a bounded job reads its input to the end, then stops with a savepoint and finishes.
            var bounded = Ok(await Cli("run", "generated-word-count", "--arg", "records=4000", "--arg", "rate=500", "--json"));
            string boundedId;
            using (var run = JsonDocument.Parse(bounded.StandardOutput))
            {
                boundedId = run.RootElement.GetProperty("jobId").GetString()!;
            }

            var drained = SavepointPath(Ok(await Cli("stop", boundedId, "--drain", "--json")));
            Assert.True(File.Exists(Path.Combine(drained, "_metadata")), drained);
            Assert.Contains("Finished", Ok(await Cli("status", boundedId)).StandardOutput);

            // savepoint dispose: gone; a second time it is not found (3); a savepoint outside the root is bad usage (2).
            Ok(await Cli("savepoint", "dispose", taken));
            Assert.False(Directory.Exists(taken));
            AssertFailure(await Cli("savepoint", "dispose", taken), 3, "is not a savepoint");
            AssertFailure(await Cli("savepoint", jobId, "--target", TestData.NewDirectory("elsewhere"), "--json"), 2, "outside the silos' savepoint root");

            // cancel: the job ends CANCELED.
            var cancel = Ok(await Cli("cancel", jobId, "--json"));
            using (var canceled = JsonDocument.Parse(cancel.StandardOutput))
            {
                Assert.Equal("Canceled", canceled.RootElement.GetProperty("state").GetString());
            }

            // Not found (3) and refused arguments (2): one line for people on stderr, nothing on stdout.
            var unknownJob = await Cli("status", "no-such-job-0000", "--json");
            AssertFailure(unknownJob, 3, "'no-such-job-0000'");
            var unknownName = await Cli("run", "wordcount");
            AssertFailure(unknownName, 3, "did you mean 'word-count'?");
            var badArguments = await Cli("run", "word-count", "--arg", "inptu=x", "--arg", "collect=perhaps");
            Assert.Equal(2, badArguments.ExitCode);
            Assert.Contains("'inptu'", badArguments.StandardError);
            Assert.Contains("'collect' is 'perhaps'", badArguments.StandardError);
        }
        finally
        {
            foreach (var run in runs)
            {
                output.WriteLine(run.ToString());
            }

            output.WriteLine(silo.Output);
        }
    }

    private static string SavepointPath(CliResult result)
    {
        using var json = JsonDocument.Parse(result.StandardOutput);
        return json.RootElement.GetProperty("path").GetString()!;
    }

    [Fact]
    public async Task An_unreachable_gateway_and_bad_usage_exit_with_their_codes_and_a_one_line_error()
    {
        var port = Ports.Free(1)[0];
        var gateway = $"127.0.0.1:{port}";
        // A short connect timeout: the CLI retries refused connections until it, and the default (60 s) is for real clusters.
        var unreachable = new Dictionary<string, string> { ["PLATFORM_GATEWAY"] = "127.0.0.1:1", ["PLATFORM_CONNECT_TIMEOUT"] = "3" };

        // --gateway wins over PLATFORM_GATEWAY; nobody listens on it.
        var list = await CliProcess.RunAsync(unreachable, "list", "--gateway", gateway);
        AssertFailure(list, 4, gateway);
        Assert.Contains("attempts over", list.StandardError);
        Assert.Contains("Is a silo running there?", list.StandardError);
        var json = await CliProcess.RunAsync(unreachable, "status", "some-job", "--gateway", gateway, "--json");
        AssertFailure(json, 4, gateway);

        // Bad usage is found before connecting.
        Assert.Equal(2, (await CliProcess.RunAsync(unreachable, "run")).ExitCode);
        Assert.Equal(2, (await CliProcess.RunAsync(unreachable, "run", "word-count", "--arg", "novalue")).ExitCode);
        Assert.Equal(2, (await CliProcess.RunAsync(unreachable, "list", "--gateway", "localhost")).ExitCode);
        Assert.Equal(2, (await CliProcess.RunAsync(unreachable, "frobnicate")).ExitCode);
        AssertFailure(await CliProcess.RunAsync(unreachable, "list", "--connect-timeout", "abc"), 2, "--connect-timeout 'abc'");
        AssertFailure(await CliProcess.RunAsync(new Dictionary<string, string>(unreachable) { ["PLATFORM_CONNECT_TIMEOUT"] = "0" }, "list"), 2, "PLATFORM_CONNECT_TIMEOUT '0'");
    }

    [Fact]
    public async Task An_option_value_that_does_not_parse_names_the_option_and_what_it_takes_not_a_dotnet_type()
    {
        // Found while parsing, before connecting: no cluster.
        var unreachable = new Dictionary<string, string> { ["PLATFORM_GATEWAY"] = "127.0.0.1:1", ["PLATFORM_CONNECT_TIMEOUT"] = "3" };
        foreach (var (args, expected) in new[]
        {
            (new[] { "run", "word-count", "--parallelism", "abc" }, "error: --parallelism is 'abc'; it must be a whole number of at least 1"),
            (new[] { "run", "word-count", "-p", "0" }, "error: --parallelism is '0'; it must be a whole number of at least 1"),
            (new[] { "savepoint", "some-job", "--format", "canonical" }, "error: --format is 'canonical'; it must be one of portable, native."),
        })
        {
            var result = await CliProcess.RunAsync(unreachable, args);
            output.WriteLine(result.ToString());
            Assert.True(result.ExitCode == 2, result.ToString());
            Assert.Equal("", result.StandardOutput);
            Assert.StartsWith(expected, result.StandardError, StringComparison.Ordinal);
            Assert.DoesNotContain("System.", result.StandardError, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_native_savepoint_of_a_heap_job_is_refused_as_bad_usage_and_no_savepoint_is_taken()
    {
        var ports = Ports.Free(3);
        var (siloPort, gatewayPort, httpPort) = (ports[0], ports[1], ports[2]);
        var clusterId = $"cli-{Guid.NewGuid():N}";
        var savepointRoot = TestData.NewDirectory("cli-savepoints");
        // The silo's default state backend is the heap.
        await using var silo = ChildProcess.Start(BuiltPrograms.Silo, [], new Dictionary<string, string>
        {
            ["Orleans__ClusterId"] = clusterId,
            ["Orleans__ServiceId"] = "platform-cli-tests",
            ["Orleans__Endpoints__SiloPort"] = siloPort.ToString(CultureInfo.InvariantCulture),
            ["Orleans__Endpoints__GatewayPort"] = gatewayPort.ToString(CultureInfo.InvariantCulture),
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{httpPort}",
            ["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
            ["Platform__StateDirectory"] = Path.Combine(TestData.NewDirectory("cli-silo"), "state"),
            ["Platform__CheckpointDirectory"] = Path.Combine(TestData.NewDirectory("cli-silo"), "checkpoints"),
            ["Platform__SavepointDirectory"] = savepointRoot,
        });
        var environment = new Dictionary<string, string>
        {
            ["PLATFORM_GATEWAY"] = $"127.0.0.1:{gatewayPort}",
            ["PLATFORM_CLUSTER_ID"] = clusterId,
            ["PLATFORM_SERVICE_ID"] = "platform-cli-tests",
        };
        var runs = new List<CliResult>();
        async Task<CliResult> Cli(params string[] args)
        {
            var result = await CliProcess.RunAsync(environment, args);
            runs.Add(result);
            return result;
        }

        try
        {
            await Poll.UntilAsync(
                async () => !silo.HasExited ? await SiloHostTests.IsLiveAsync(httpPort) : throw new InvalidOperationException($"The silo exited with code {silo.ExitCode}:\n{silo.Output}"),
                SiloTimeout,
                () => $"the silo answers on http://127.0.0.1:{httpPort}/health/live");
            string jobId;
            using (var run = JsonDocument.Parse(Ok(await Cli("run", "generated-word-count", "--arg", "rate=200", "--json")).StandardOutput))
            {
                jobId = run.RootElement.GetProperty("jobId").GetString()!;
            }

            // Refused, not silently taken in the portable format (stop --format native asks the coordinator the same way).
            AssertFailure(await Cli("savepoint", jobId, "--format", "native", "--json"), 2, "heap state backend, which has no native savepoint format");
            Assert.Empty(Directory.EnumerateFileSystemEntries(savepointRoot));

            // The job runs on and could be savepointed all along: the portable format is taken.
            Assert.True(File.Exists(Path.Combine(SavepointPath(Ok(await Cli("savepoint", jobId, "--json"))), "_metadata")));
        }
        finally
        {
            foreach (var run in runs)
            {
                output.WriteLine(run.ToString());
            }

            output.WriteLine(silo.Output);
        }
    }

    private static CliResult Ok(CliResult result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    private static void AssertFailure(CliResult result, int exitCode, string named)
    {
        Assert.True(result.ExitCode == exitCode, $"expected exit code {exitCode}: {result}");
        Assert.Equal("", result.StandardOutput);
        var line = Assert.Single(result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line, StringComparison.Ordinal);
        Assert.Contains(named, line);
    }
}
