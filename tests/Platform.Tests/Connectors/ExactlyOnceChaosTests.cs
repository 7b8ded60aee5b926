using System.Globalization;
using System.Text.Json;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Platform.Tests.Connectors;

/// <summary>
/// The exactly-once chaos benchmark (bench/Platform.Benchmarks/ExactlyOnce, issue 12 point 6) run as the program it is:
/// redis-server, PostgreSQL, three silo processes, a keyed job from Redis Streams into a FileSink and a PostgresSink,
/// silos SIGKILLed mid-run. Its JSON must show every kill done and every input exactly once in both sinks' committed output.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class ExactlyOnceChaosTests(ITestOutputHelper output)
{
    [Fact]
    public Task Two_SIGKILLs_of_silo_processes_leave_no_duplicate_and_no_missing_output_in_either_sink() =>
        RunAsync(records: 20_000, kills: 2, TimeSpan.FromMinutes(20));

    [Fact]
    [Trait("Category", "Long")]
    public Task A_hundred_SIGKILLs_of_silo_processes_leave_no_duplicate_and_no_missing_output_in_either_sink() =>
        RunAsync(records: 400_000, kills: 100, TimeSpan.FromMinutes(120));

    private async Task RunAsync(long records, int kills, TimeSpan timeout)
    {
        var json = Path.Combine(TestData.NewDirectory("exactly-once-chaos"), "result.json");
        string[] args =
        [
            "exactly-once", "--records", records.ToString(CultureInfo.InvariantCulture), "--kills", kills.ToString(CultureInfo.InvariantCulture),
            "--skip-throughput", "--json", json,
        ];
        await using var benchmark = ChildProcess.Start(BuiltPrograms.Benchmarks, args, new Dictionary<string, string>());
        var exited = await benchmark.WaitForExitAsync(timeout);
        output.WriteLine(benchmark.Output);
        Assert.True(exited, $"The benchmark was still running after {timeout}.");
        Assert.True(File.Exists(json), $"The benchmark wrote no JSON (exit code {benchmark.ExitCode}):\n{benchmark.Output}");

        using var result = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var root = result.RootElement;
        Assert.Equal(kills, root.GetProperty("kills").GetInt32());
        Assert.True(root.GetProperty("chaos").GetProperty("killsOfTheJobManagersSilo").GetInt32() >= 1, "No kill hit the job manager's silo.");
        Assert.Equal("Finished", root.GetProperty("chaos").GetProperty("finalState").GetString());
        Assert.Equal(records, root.GetProperty("records").GetInt64());
        foreach (var sink in new[] { "fileSink", "postgresSink" })
        {
            var counts = root.GetProperty(sink);
            Assert.True(counts.GetProperty("duplicates").GetInt64() == 0, $"{sink}: {counts}");
            Assert.True(counts.GetProperty("missing").GetInt64() == 0, $"{sink}: {counts}");
            Assert.True(counts.GetProperty("unexpected").GetInt64() == 0, $"{sink}: {counts}");
            Assert.Equal(records, counts.GetProperty("records").GetInt64());
        }

        Assert.Equal(0, root.GetProperty("duplicates").GetInt64());
        Assert.Equal(0, root.GetProperty("missing").GetInt64());
        Assert.Equal(0, benchmark.ExitCode);
    }
}
