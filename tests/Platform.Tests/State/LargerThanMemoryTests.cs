using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Hosting;
using Platform.Checkpointing;
using Platform.Client;
using Platform.Runtime;
using Platform.Samples.LargeState;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Platform.Tests.State;

/// <summary>
/// A job whose RocksDB state is several times the memory its silo is given: a real silo process with a GC heap hard
/// limit and small RocksDB caches runs it, checkpoints it, fails once, restores from a checkpoint of the whole first
/// pass, and finishes with the exact result, while the test reads the process's peak resident memory from /proc.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class LargerThanMemoryTests(ITestOutputHelper output)
{
    private const long MiB = 1024 * 1024;

    /// <summary>About 485 MiB of state against a 128 MiB budget.</summary>
    private static readonly Scenario Short = new(
        RequiredRatio: 3,
        Timeout: TimeSpan.FromMinutes(10),
        Keys: 480_000,
        PayloadSize: 1024,
        Parallelism: 1,
        GcHeapHardLimit: 96 * MiB,
        BlockCacheSize: 8 * MiB,
        WriteBufferSize: 4 * MiB,
        MaxWriteBufferNumber: 2,
        StateCacheSize: 4 * MiB);

    /// <summary>About 2 GiB of state against a 192 MiB budget, over two subtasks.</summary>
    private static readonly Scenario Long = new(
        RequiredRatio: 10,
        Timeout: TimeSpan.FromMinutes(45),
        Keys: 2_100_000,
        PayloadSize: 1024,
        Parallelism: 2,
        GcHeapHardLimit: 128 * MiB,
        BlockCacheSize: 8 * MiB,
        WriteBufferSize: 4 * MiB,
        MaxWriteBufferNumber: 2,
        StateCacheSize: 4 * MiB);

    [Fact]
    public Task A_job_with_state_three_times_its_memory_budget_completes_checkpoints_and_restores() => RunAsync(Short);

    [Fact]
    [Trait("Category", "Long")]
    public Task A_job_with_state_over_ten_times_its_memory_budget_completes_checkpoints_and_restores() => RunAsync(Long);

    private async Task RunAsync(Scenario scenario)
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // The process's memory is read from /proc.
        }

        // Several hundred MiB to GiBs of RocksDB files and checkpoints: removed once the silo is gone, even on failure
        // (the silo's output is in the test output).
        var root = TestData.NewDirectory("larger-than-memory");
        try
        {
            await RunInAsync(scenario, root);
        }
        finally
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                output.WriteLine($"Could not delete {root}: {ex.Message}");
            }
        }
    }

    private async Task RunInAsync(Scenario scenario, string root)
    {
        var rocksDbDirectory = Path.Combine(root, "rocksdb");
        var holdFile = Path.Combine(root, "hold");
        var failOnceMarker = Path.Combine(root, "fail-once");
        File.WriteAllText(holdFile, "the sources wait after the first pass while this file exists");

        var ports = Ports.Free(3);
        var clusterId = $"ltm-{Guid.NewGuid():N}";
        const string serviceId = "platform-larger-than-memory-tests";
        await using var silo = ChildProcess.Start(BuiltPrograms.Silo, [], new Dictionary<string, string>
        {
            ["Orleans__ClusterId"] = clusterId,
            ["Orleans__ServiceId"] = serviceId,
            ["Orleans__Endpoints__SiloPort"] = ports[0].ToString(CultureInfo.InvariantCulture),
            ["Orleans__Endpoints__GatewayPort"] = ports[1].ToString(CultureInfo.InvariantCulture),
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{ports[2]}",
            ["Silo__ParentProcessId"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
            ["Platform__StateDirectory"] = Path.Combine(root, "state"),
            ["Platform__CheckpointDirectory"] = Path.Combine(root, "checkpoints"),
            ["Platform__RocksDb__LocalDirectory"] = rocksDbDirectory,
            ["Platform__RocksDb__BlockCacheSize"] = scenario.BlockCacheSize.ToString(CultureInfo.InvariantCulture),
            ["Platform__RocksDb__WriteBufferSize"] = scenario.WriteBufferSize.ToString(CultureInfo.InvariantCulture),
            ["Platform__RocksDb__MaxWriteBufferNumber"] = scenario.MaxWriteBufferNumber.ToString(CultureInfo.InvariantCulture),

            // The write-back cache lives on the managed heap: its default (32 MiB per backend) would not fit the heap limit.
            ["Platform__RocksDb__StateCacheSize"] = scenario.StateCacheSize.ToString(CultureInfo.InvariantCulture),

            // Every record carries its payload: small batches keep what channels hold in flight (batch size × window)
            // small inside the heap budget.
            ["Platform__BatchSize"] = "100",
            // Nothing else on the heap: no Orleans Dashboard (its metric history and profiler).
            ["Silo__Http__Dashboard"] = "false",
            ["DOTNET_GCHeapHardLimit"] = $"0x{scenario.GcHeapHardLimit:X}",
        });
        await using var sampler = new ProcessSampler(silo.Id, rocksDbDirectory);
        try
        {
            using var client = await ConnectAsync(clusterId, serviceId, ports[1], silo);
            var platform = new PlatformClient(client.Services.GetRequiredService<IClusterClient>());

            var settings = new LargeStateJobSettings
            {
                Keys = scenario.Keys,
                PayloadSize = scenario.PayloadSize,
                Parallelism = scenario.Parallelism,
                HoldFile = holdFile,
                FailOnceMarkerFile = failOnceMarker,
                Checkpointing = new CheckpointingSettings
                {
                    Interval = TimeSpan.FromSeconds(1),
                    Storage = CheckpointStorageKind.FileSystem,
                    Incremental = true,
                },
                RestartStrategy = RestartStrategy.FixedDelayRestart(3, TimeSpan.FromMilliseconds(500)),
            };
            var run = Stopwatch.StartNew();
            var jobId = await platform.SubmitAsync(LargeStateJob.Build(settings));

            // The sources hold after the first pass, so a checkpoint holding every key's first payload completes.
            var firstPass = scenario.Keys * scenario.PayloadSize;
            CheckpointStats? full = null;
            await Poll.UntilAsync(
                async () =>
                {
                    var status = await platform.GetStatusAsync(jobId);
                    if (status.State.IsTerminal() || status.Restarts > 0)
                    {
                        throw new InvalidOperationException($"The job is {status.State} after {status.Restarts} restarts before the failure was injected: {status.Failure ?? status.RestartCauses.FirstOrDefault()}\n{Tail(silo.Output)}");
                    }

                    var statistics = await platform.GetCheckpointStatisticsAsync(jobId);
                    full = statistics.History.FirstOrDefault(c => c.Status == CheckpointStatus.Completed && c.StateSize >= firstPass);
                    return full is not null;
                },
                scenario.Timeout,
                () => $"a checkpoint of at least {Mb(firstPass)} completes\n{Tail(silo.Output)}");
            var firstPassTime = run.Elapsed;

            // Fail once, then let the second pass run: the job must restore the whole first pass from a checkpoint.
            File.WriteAllText(failOnceMarker, "the next subtask that sees this file fails once");
            File.Delete(holdFile);
            JobStatusInfo finished;
            try
            {
                finished = await platform.WaitForCompletionAsync(jobId, scenario.Timeout);
            }
            catch (TimeoutException ex)
            {
                throw new TimeoutException($"{ex.Message}\n{Tail(silo.Output)}", ex);
            }

            var runTime = run.Elapsed;
            var statisticsAtEnd = await platform.GetCheckpointStatisticsAsync(jobId);
            var memory = await sampler.StopAsync();
            var summaries = await platform.GetCollectedAsync<BucketSummary>(jobId, LargeStateJob.SummarySinkUid);
            await client.StopAsync();

            // The first-pass checkpoint holds every key once; the second pass replaces payloads with payloads of the same
            // size, so that is the live state. Later checkpoints can be larger (SST files holding older versions too).
            var completed = statisticsAtEnd.History.Where(c => c.Status == CheckpointStatus.Completed).ToList();
            var largest = completed.MaxBy(c => c.StateSize) ?? full!;
            var stateSize = full!.StateSize;
            var budget = scenario.MemoryBudget;
            output.WriteLine($"keys {scenario.Keys:N0} × {scenario.PayloadSize} B payload, parallelism {scenario.Parallelism}");
            output.WriteLine($"memory budget {Mb(budget)} = GC heap hard limit {Mb(scenario.GcHeapHardLimit)} + {scenario.RocksDbInstances} RocksDB instances × (block cache {Mb(scenario.BlockCacheSize)} + {scenario.MaxWriteBufferNumber} × write buffer {Mb(scenario.WriteBufferSize)}); state cache {Mb(scenario.StateCacheSize)} per instance, inside the heap limit");
            output.WriteLine($"state: first-pass checkpoint {Mb(full.StateSize)} (#{full.Id}), largest completed checkpoint {Mb(largest.StateSize)} (#{largest.Id}); RocksDB working directories peak {Mb(memory.PeakDirectorySize)}");
            output.WriteLine($"silo process: peak RSS (VmHWM) {Mb(memory.PeakResident)}, largest sampled RSS {Mb(memory.LargestSampledResident)} (anonymous {Mb(memory.LargestSampledAnonymous)}); state / budget {(double)stateSize / budget:F1}×, state / peak RSS {(double)stateSize / memory.PeakResident:F1}×");
            output.WriteLine($"time: first pass checkpointed after {firstPassTime.TotalSeconds:F1} s, finished after {runTime.TotalSeconds:F1} s; {statisticsAtEnd.Completed} checkpoints completed, {statisticsAtEnd.Failed} failed, restored {statisticsAtEnd.Restored}× (latest #{statisticsAtEnd.LatestRestoredId})");
            foreach (var checkpoint in completed.OrderBy(c => c.Id).Where(c => c.Id == full.Id || c.Id == largest.Id || c.Id == completed.Max(x => x.Id)))
            {
                output.WriteLine($"  checkpoint #{checkpoint.Id}: {Mb(checkpoint.StateSize)} full, {Mb(checkpoint.CheckpointedSize)} written, end to end {checkpoint.EndToEndDuration?.TotalSeconds:F1} s");
            }

            foreach (var failed in statisticsAtEnd.History.Where(c => c.Status == CheckpointStatus.Failed))
            {
                output.WriteLine($"  checkpoint #{failed.Id} failed: {failed.FailureReason}");
            }

            Assert.True(finished.State == JobState.Finished, $"Job ended {finished.State}: {finished.Failure}\n{Tail(silo.Output)}");
            Assert.Equal(1, finished.Restarts);
            Assert.Contains("Injected failure", finished.RestartCauses.Single().Message, StringComparison.Ordinal);
            Assert.True(finished.RestoredFromCheckpoint >= full.Id, $"The job restored from checkpoint {finished.RestoredFromCheckpoint?.ToString(CultureInfo.InvariantCulture) ?? "none"}, not from #{full.Id} or later.");

            // After the restore, summaries emitted before the failure may come again (the collect sink is at-least-once): they must be identical.
            var byBucket = summaries.GroupBy(s => s.Bucket).ToList();
            Assert.All(byBucket, g => Assert.Single(g.Distinct()));
            Assert.Equal(Expected(settings), byBucket.Select(g => g.First()).OrderBy(s => s.Bucket));

            Assert.True(stateSize >= scenario.RequiredRatio * budget, $"State {Mb(stateSize)} is not {scenario.RequiredRatio} × the memory budget {Mb(budget)}.");
            Assert.True(memory.PeakResident < stateSize, $"The silo's peak RSS {Mb(memory.PeakResident)} is not below the state size {Mb(stateSize)}.");
        }
        finally
        {
            output.WriteLine(Tail(silo.Output));
        }
    }

    /// <summary>The bucket summaries computed here, from the job's definition: each key's payloads, checksum chain and digest.</summary>
    private static List<BucketSummary> Expected(LargeStateJobSettings settings)
    {
        var keys = new long[settings.Buckets];
        var visits = new long[settings.Buckets];
        var digests = new ulong[settings.Buckets];
        for (long key = 0; key < settings.Keys; key++)
        {
            var checksum = LargeStateData.InitialChecksum(key);
            byte[] payload = [];
            for (var visit = 0; visit < settings.Visits; visit++)
            {
                payload = LargeStateData.Payload(key, visit, settings.PayloadSize);
                checksum = LargeStateData.ChainChecksum(checksum, payload);
            }

            var bucket = (int)(key % settings.Buckets);
            keys[bucket]++;
            visits[bucket] += settings.Visits;
            digests[bucket] = unchecked(digests[bucket] + LargeStateData.Digest(key, new KeyEntry(settings.Visits, checksum, payload)));
        }

        return [.. Enumerable.Range(0, settings.Buckets).Select(b => new BucketSummary(b, keys[b], visits[b], digests[b]))];
    }

    private static string Mb(long bytes) => $"{bytes / (double)MiB:N1} MiB";

    private static string Tail(string text) => string.Join('\n', text.Split('\n').TakeLast(80));

    private static async Task<IHost> ConnectAsync(string clusterId, string serviceId, int gatewayPort, ChildProcess silo)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(client => client
            .UseStaticClustering(new IPEndPoint(IPAddress.Loopback, gatewayPort))
            .Configure<ClusterOptions>(o =>
            {
                o.ClusterId = clusterId;
                o.ServiceId = serviceId;
            }));
        var host = builder.Build();
        await Poll.UntilAsync(
            async () =>
            {
                if (silo.HasExited)
                {
                    throw new InvalidOperationException($"The silo exited with code {silo.ExitCode}:\n{silo.Output}");
                }

                try
                {
                    await host.StartAsync();
                    return true;
                }
                catch (Exception ex) when (ex is OrleansException or System.Net.Sockets.SocketException or TimeoutException)
                {
                    return false;
                }
            },
            TimeSpan.FromMinutes(2),
            () => $"the client connects to the silo's gateway\n{silo.Output}");
        return host;
    }

    /// <summary>A run's size and the memory its silo is given.</summary>
    private sealed record Scenario(double RequiredRatio, TimeSpan Timeout, long Keys, int PayloadSize, int Parallelism, long GcHeapHardLimit, long BlockCacheSize, long WriteBufferSize, int MaxWriteBufferNumber, long StateCacheSize)
    {
        /// <summary>One RocksDB instance per subtask of each of the job's two keyed operators (the large state and the bucket sums).</summary>
        public int RocksDbInstances => 2 * Parallelism;

        /// <summary>
        /// What the silo is allowed to use: the managed heap's hard limit plus, per RocksDB instance, its block cache and
        /// the memtables of the column family that holds the state (RocksDB's default column family is never written).
        /// The backends' write-back state caches (<see cref="StateCacheSize"/> each) are managed objects, inside the heap limit.
        /// </summary>
        public long MemoryBudget => GcHeapHardLimit + (RocksDbInstances * (BlockCacheSize + (MaxWriteBufferNumber * WriteBufferSize)));
    }

    /// <summary>What <see cref="ProcessSampler"/> saw.</summary>
    /// <param name="PeakResident">The kernel's high-water mark of resident memory (VmHWM), or the largest sample if higher.</param>
    /// <param name="LargestSampledResident">The largest VmRSS sampled.</param>
    /// <param name="LargestSampledAnonymous">The largest RssAnon sampled: heap and native allocations, without mapped files (code).</param>
    /// <param name="PeakDirectorySize">The largest size of the RocksDB directory sampled.</param>
    private sealed record MemoryFigures(long PeakResident, long LargestSampledResident, long LargestSampledAnonymous, long PeakDirectorySize);

    /// <summary>
    /// Samples a process's resident memory (VmRSS) and a directory's size while a test runs; the kernel's own
    /// high-water mark (VmHWM) gives the peak between samples.
    /// </summary>
    private sealed class ProcessSampler : IAsyncDisposable
    {
        private readonly int _processId;
        private readonly string _directory;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _sampling;
        private long _largestResident;
        private long _largestAnonymous;
        private long _peakDirectorySize;

        public ProcessSampler(int processId, string directory)
        {
            _processId = processId;
            _directory = directory;
            _sampling = Task.Run(SampleAsync);
        }

        /// <summary>Stops sampling and reads the process's high-water mark; the process must still run.</summary>
        public async Task<MemoryFigures> StopAsync()
        {
            await _stop.CancelAsync();
            await _sampling;
            Sample();
            var highWaterMark = ReadStatus("VmHWM") ?? throw new InvalidOperationException($"Process {_processId} has no VmHWM: has it exited?");

            // The kernel syncs per-thread RSS counters lazily, so a sample can exceed the high-water mark slightly.
            return new MemoryFigures(Math.Max(highWaterMark, _largestResident), _largestResident, _largestAnonymous, _peakDirectorySize);
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _sampling;
            _stop.Dispose();
        }

        private async Task SampleAsync()
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            try
            {
                while (await timer.WaitForNextTickAsync(_stop.Token))
                {
                    Sample();
                }
            }
            catch (OperationCanceledException)
            {
                // Stopped.
            }
        }

        private void Sample()
        {
            if (ReadStatus("VmRSS") is { } resident)
            {
                _largestResident = Math.Max(_largestResident, resident);
            }

            if (ReadStatus("RssAnon") is { } anonymous)
            {
                _largestAnonymous = Math.Max(_largestAnonymous, anonymous);
            }

            _peakDirectorySize = Math.Max(_peakDirectorySize, DirectorySize(_directory));
        }

        /// <summary>A field of /proc/{pid}/status in bytes, or null when the process is gone.</summary>
        private long? ReadStatus(string field)
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines($"/proc/{_processId}/status");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return null;
            }

            var line = lines.FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal));
            if (line is null)
            {
                return null;
            }

            // "VmHWM:	  123456 kB"
            var value = line[(field.Length + 1)..].Trim();
            return long.Parse(value[..value.IndexOf(' ', StringComparison.Ordinal)], CultureInfo.InvariantCulture) * 1024;
        }

        /// <summary>
        /// The size of the RocksDB instances' working directories. Checkpoint directories beside them
        /// (<c>*.chk-*</c>) are skipped: they hard-link the same SST files and would count them twice.
        /// </summary>
        private static long DirectorySize(string directory)
        {
            long size = 0;
            try
            {
                foreach (var instance in new DirectoryInfo(directory).EnumerateDirectories())
                {
                    if (instance.Name.Contains(".chk-", StringComparison.Ordinal))
                    {
                        continue;
                    }

                    foreach (var file in instance.EnumerateFiles("*", SearchOption.AllDirectories))
                    {
                        try
                        {
                            size += file.Length;
                        }
                        catch (IOException)
                        {
                            // Deleted while we looked (RocksDB replaces files as it compacts).
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Not created yet, or removed with the subtask.
            }

            return size;
        }
    }
}
