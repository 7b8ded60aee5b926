using System.Diagnostics;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;
using Platform.Benchmarks.StateBackends;
using Platform.Client;
using Platform.Connectors;
using Platform.Runtime;
using Platform.Samples.ExactlyOnce;
using Platform.Testing;
using StackExchange.Redis;

namespace Platform.Benchmarks.ExactlyOnce;

/// <summary>Settings of the exactly-once chaos benchmark.</summary>
internal sealed record ExactlyOnceSettings
{
    public string? JsonPath { get; init; }
    public long Records { get; init; } = 200_000;
    public int Kills { get; init; } = 10;
    public int Streams { get; init; } = 5;
    public int Keys { get; init; } = 1_000;
    public int Parallelism { get; init; } = 3;
    public double Rate { get; init; } = 2_000;
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(1);
    public int ThroughputRuns { get; init; } = 2;
    public bool SkipThroughput { get; init; }
    public int Seed { get; init; } = 12;
    // Longer than a checkpoint's timeout (10 minutes by default): a recovery the runtime completes within its own bounds
    // is measured (kill log: recoveredSeconds), not cut short.
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(15);
    public string? TempDirectory { get; init; }
    public bool KeepTemp { get; init; }
    public string CommandLine { get; init; } = "";
}

/// <summary>
/// Exactly-once from source to sink under crashes (issue 12, point 6): redis-server, PostgreSQL and three silo
/// processes clustered through that Redis; a known keyed stream fed into Redis Streams while a keyed count writes one
/// output per input to a FileSink and a PostgresSink; random silos (the job manager's among them) SIGKILLed and
/// replaced; then both sinks' committed output compared with the ground truth. Before that, without kills, the same
/// job over preloaded input with the exactly-once sinks against a DiscardingSink gives the throughput ratio.
/// </summary>
internal sealed class ExactlyOnceBenchmark(ExactlyOnceSettings settings)
{
    private const double TargetThroughputRatio = 0.8;
    private const int FilePollMs = 100;
    private const string ChaosTable = "chaos_out";
    private static readonly TimeSpan ClientCallRetry = TimeSpan.FromMinutes(2);

    private readonly string _root = Path.Combine(settings.TempDirectory ?? Path.GetTempPath(), $"platform-bench-exactly-once-{Guid.NewGuid():N}");
    private readonly string _clusterId = $"exactly-once-{Guid.NewGuid():N}";
    private readonly List<SiloProcess> _silos = [];
    private int _silosStarted;

    private string Shared => Path.Combine(_root, "cluster");

    private string CheckpointDirectory => Path.Combine(Shared, "checkpoints");

    public async Task<int> RunAsync()
    {
        if (!RedisServer.IsInstalled || !PostgresServer.IsInstalled)
        {
            Console.Error.WriteLine(
                $"exactly-once needs redis-server ({(RedisServer.IsInstalled ? "found" : "not found on PATH")}) and PostgreSQL's initdb and postgres " +
                $"({(PostgresServer.IsInstalled ? "found" : "not found in /usr/lib/postgresql/*/bin or on PATH")}); scripts/install-test-dependencies installs both.");
            return 2;
        }

        var input = new KeyedInput(settings.Records, settings.Streams, settings.Keys);
        Console.WriteLine($"exactly-once: {settings.Records:N0} records over {input.DistinctKeysUsed:N0} keys (the hottest has {input.HottestKeyRecords:N0}) in {settings.Streams} Redis streams, " +
                          $"parallelism {settings.Parallelism}, exactly-once checkpoints every {settings.CheckpointInterval.TotalSeconds:0.###} s; {settings.Kills} SIGKILLs; " +
                          $"3 silo processes; work directory {_root}");
        Directory.CreateDirectory(Shared);
        var ok = false;
        RedisServer? redis = null;
        PostgresServer? postgres = null;
        IHost? client = null;
        try
        {
            redis = await RedisServer.StartAsync(Path.Combine(_root, "redis"));

            // Commit timestamps give each row's commit time exactly (the end-to-end latency of the PostgreSQL sink);
            // prepared transactions for the two-phase commit, a few per sink subtask.
            postgres = await PostgresServer.StartAsync(maxPreparedTransactions: 64, settings: ["track_commit_timestamp=on"], directory: Path.Combine(_root, "postgres"));
            Console.WriteLine($"redis-server on {redis.ConnectionString}, PostgreSQL on 127.0.0.1:{postgres.Port}");
            for (var i = 0; i < 3; i++)
            {
                StartSilo(redis.ConnectionString);
            }

            await WaitForSilosAsync();
            client = await ConnectAsync(redis.ConnectionString);
            var platform = new PlatformClient(client.Services.GetRequiredService<IClusterClient>());
            using var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
            var database = connection.GetDatabase();

            var throughput = settings.SkipThroughput ? null : await MeasureThroughputAsync(platform, database, redis, postgres, input);
            var chaos = await RunChaosAsync(platform, database, redis, postgres, input);

            var duplicates = chaos.File.Duplicates + chaos.Postgres.Duplicates;
            var missing = chaos.File.Missing + chaos.Postgres.Missing;
            var unexpected = chaos.File.Unexpected + chaos.Postgres.Unexpected;
            var latencyP99 = Math.Max(chaos.FileLatency.P99, chaos.PostgresLatency.P99);
            ok = chaos.FinalState == JobState.Finished && duplicates == 0 && missing == 0 && unexpected == 0;
            Console.WriteLine($"result: {chaos.Kills.Count} kills ({chaos.Kills.Count(k => k.HostedJobManager)} of the job manager's silo), {chaos.Restarts} restarts, job {chaos.FinalState}; " +
                              $"duplicates {duplicates}, missing {missing}, unexpected {unexpected}");
            Console.WriteLine($"  file sink: {chaos.File}; latency p50 {chaos.FileLatency.P50:0} ms, p99 {chaos.FileLatency.P99:0} ms");
            Console.WriteLine($"  postgres sink: {chaos.Postgres}; latency p50 {chaos.PostgresLatency.P50:0} ms, p99 {chaos.PostgresLatency.P99:0} ms");
            if (throughput is not null)
            {
                Console.WriteLine($"  throughput: exactly-once sinks {throughput.ExactlyOnceRecordsPerSecond:N0} records/s, discarding sink {throughput.DiscardRecordsPerSecond:N0} records/s, " +
                                  $"ratio {throughput.Ratio:0.000} (target {TargetThroughputRatio}: {(throughput.Ratio >= TargetThroughputRatio ? "met" : "not met")})");
            }

            if (settings.JsonPath is { } path)
            {
                var full = Path.GetFullPath(path);
                Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                var json = ToJson(input, chaos, throughput, duplicates, missing, unexpected, latencyP99);
                await File.WriteAllTextAsync(full, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
                Console.WriteLine($"wrote {full}");
            }

            return ok ? 0 : 3;
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException or OrleansException or RedisException or NpgsqlException or IOException)
        {
            Console.Error.WriteLine($"exactly-once failed: {ex}");
            return 1;
        }
        finally
        {
            foreach (var silo in _silos)
            {
                await silo.DisposeAsync();
            }

            if (client is not null)
            {
                try
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await client.StopAsync(timeout.Token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or OrleansException)
                {
                    // The silos are gone already.
                }

                client.Dispose();
            }

            if (postgres is not null)
            {
                await postgres.DisposeAsync();
            }

            if (redis is not null)
            {
                await redis.DisposeAsync();
            }

            if (ok && !settings.KeepTemp)
            {
                TryDelete(_root);
            }
            else
            {
                Console.WriteLine($"kept {_root} (silo logs in {Path.Combine(Shared, "logs")})");
            }
        }
    }

    private async Task<ThroughputResult> MeasureThroughputAsync(PlatformClient platform, IDatabase database, RedisServer redis, PostgresServer postgres, KeyedInput input)
    {
        var streams = Enumerable.Range(0, settings.Streams).Select(s => $"throughput:{s}").ToArray();
        await PreloadAsync(database, streams, input);
        var busyBefore = BenchEnvironment.MachineBusySeconds();
        var wall = Stopwatch.StartNew();
        var runs = new List<ThroughputRun>();
        for (var run = 0; run < settings.ThroughputRuns; run++)
        {
            // Interleaved, the order alternating, so that a slow phase of the machine hits both modes alike.
            var order = run % 2 == 0 ? new[] { KeyedCountSinks.Discard, KeyedCountSinks.FileAndPostgres } : [KeyedCountSinks.FileAndPostgres, KeyedCountSinks.Discard];
            foreach (var sinks in order)
            {
                var table = $"throughput_{run}";
                var output = Path.Combine(Shared, $"throughput-files-{run}");
                if (sinks == KeyedCountSinks.FileAndPostgres)
                {
                    await postgres.ExecuteAsync($"CREATE TABLE {table} (key text NOT NULL, seq bigint NOT NULL, count bigint NOT NULL)");
                }

                var jobId = await platform.SubmitAsync(KeyedCountJob.Build(JobSettings(redis, postgres, input, streams, sinks, output, table) with { Name = $"throughput-{Name(sinks)}" }));
                var status = await platform.WaitForCompletionAsync(jobId, settings.Timeout);
                if (status.State != JobState.Finished || status.EndedAt is not { } ended)
                {
                    throw new InvalidOperationException($"The throughput run ({Name(sinks)}) ended {status.State}: {status.Failure}");
                }

                var seconds = (ended - status.SubmittedAt).TotalSeconds;
                SinkCheck? file = null;
                SinkCheck? rows = null;
                if (sinks == KeyedCountSinks.FileAndPostgres)
                {
                    file = input.Check(FileSink.ReadCommittedLines(output).Select(KeyedRunningCount.Parse));
                    rows = input.Check((await ReadTableAsync(postgres, table)).Select(r => r.Record));
                    await postgres.ExecuteAsync($"DROP TABLE {table}");
                    TryDelete(output);
                }

                runs.Add(new ThroughputRun(sinks, seconds, settings.Records / seconds, status.Restarts, file, rows));
                Console.WriteLine($"throughput run {run + 1}/{settings.ThroughputRuns}, {Name(sinks)}: {seconds:0.00} s from submit to FINISHED, {settings.Records / seconds:N0} records/s" +
                                  (file is null ? "" : $"; file sink {file}, postgres sink {rows}"));
            }
        }

        var busy = BenchEnvironment.MachineBusySeconds() - busyBefore;
        return new ThroughputResult(runs, busy / wall.Elapsed.TotalSeconds ?? double.NaN);
    }

    private async Task<ChaosResult> RunChaosAsync(PlatformClient platform, IDatabase database, RedisServer redis, PostgresServer postgres, KeyedInput input)
    {
        var streams = Enumerable.Range(0, settings.Streams).Select(s => $"chaos:{s}").ToArray();
        var output = Path.Combine(Shared, "chaos-files");
        await postgres.ExecuteAsync($"CREATE TABLE {ChaosTable} (key text NOT NULL, seq bigint NOT NULL, count bigint NOT NULL)");
        var busyBefore = BenchEnvironment.MachineBusySeconds();
        var wall = Stopwatch.StartNew();
        var jobId = await platform.SubmitAsync(KeyedCountJob.Build(JobSettings(redis, postgres, input, streams, KeyedCountSinks.FileAndPostgres, output, ChaosTable) with { Name = "exactly-once-chaos" }));
        Console.WriteLine($"chaos: job {jobId} submitted; feeding {settings.Records:N0} records at {settings.Rate:N0}/s");

        // The last 5% of the input waits until every kill is done, so that the kills land mid-run however slow the machine.
        var holdAt = settings.Records - Math.Max(settings.Records / 20, 1);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writtenMs = new long[settings.Records];
        var firstSeenInFilesMs = new long[settings.Records];
        using var stopPolling = new CancellationTokenSource();
        var feed = FeedAsync(database, streams, input, writtenMs, holdAt, release.Task);
        var poll = PollFilesAsync(output, firstSeenInFilesMs, stopPolling.Token);
        List<KillEvent> kills;
        try
        {
            kills = await KillAsync(platform, jobId, redis, feed, wall);
        }
        finally
        {
            release.TrySetResult();
        }

        var feedSeconds = await feed;
        Console.WriteLine($"chaos: all {settings.Records:N0} records fed after {feedSeconds:0.0} s; waiting for the job to finish");
        var final = await RetryAsync(() => platform.WaitForCompletionAsync(jobId, settings.Timeout), "the job finishes");
        var statistics = await RetryAsync(() => platform.GetCheckpointStatisticsAsync(jobId), "checkpoint statistics");
        var seconds = wall.Elapsed.TotalSeconds;
        var busy = BenchEnvironment.MachineBusySeconds() - busyBefore;

        // One last poll sees everything the job committed before FINISHED.
        await stopPolling.CancelAsync();
        await poll;
        PollFilesOnce(output, firstSeenInFilesMs, new HashSet<string>(StringComparer.Ordinal));
        var file = input.Check(FileSink.ReadCommittedLines(output).Select(KeyedRunningCount.Parse));
        var table = await ReadTableAsync(postgres, ChaosTable);
        var rows = input.Check(table.Select(r => r.Record));

        var firstCommittedInTableMs = new double[settings.Records];
        foreach (var (record, committedMs) in table)
        {
            if (record.Seq >= 0 && record.Seq < settings.Records && (firstCommittedInTableMs[record.Seq] == 0 || committedMs < firstCommittedInTableMs[record.Seq]))
            {
                firstCommittedInTableMs[record.Seq] = committedMs;
            }
        }

        return new ChaosResult(
            jobId,
            final.State,
            final.Failure?.ToString(),
            final.Restarts,
            [.. final.RestartCauses.Select(c => $"{c.Timestamp:HH:mm:ss.fff} {c.TaskName ?? c.OperatorName ?? "job"}: {c.ExceptionType}: {c.Message}")],
            statistics.Completed,
            statistics.Failed,
            kills,
            seconds,
            feedSeconds,
            busy / seconds ?? double.NaN,
            file,
            rows,
            Latency.Of(writtenMs, firstSeenInFilesMs.Select(v => (double)v).ToArray()),
            Latency.Of(writtenMs, firstCommittedInTableMs));
    }

    /// <summary>SIGKILLs a silo each time a checkpoint has completed since the previous kill, and starts a replacement.</summary>
    private async Task<List<KillEvent>> KillAsync(PlatformClient platform, string jobId, RedisServer redis, Task feed, Stopwatch wall)
    {
        var random = new Random(settings.Seed);
        var jobManagerKill = random.Next(settings.Kills);
        var kills = new List<KillEvent>();
        long lastCheckpoint = 0;
        var sinceKill = Stopwatch.StartNew();
        for (var k = 0; k <= settings.Kills; k++)
        {
            // After every kill (and before the first) the job must have recovered: a checkpoint later than the last one
            // completed before the kill. After the last kill this proves the last recovery too.
            long completed = 0;
            Platform.Checkpointing.CheckpointStatistics? seen = null;
            await ServerProcess.WaitUntilAsync(
                async () =>
                {
                    if (feed.IsFaulted)
                    {
                        await feed;
                    }

                    var status = await RetryAsync(() => platform.GetStatusAsync(jobId), "the job's status");
                    if (status.State.IsTerminal())
                    {
                        throw new InvalidOperationException($"The job ended {status.State} during the chaos run: {status.Failure}");
                    }

                    var stats = seen = await RetryAsync(() => platform.GetCheckpointStatisticsAsync(jobId), "checkpoint statistics");
                    completed = stats.LatestCompleted?.Id ?? 0;
                    return completed > lastCheckpoint && _silos.All(s => !s.HasExited);
                },
                settings.Timeout,
                () => $"a checkpoint after {lastCheckpoint} completes (before kill {k + 1}); the job's latest checkpoints: " +
                      string.Join("; ", (seen?.History ?? []).Take(3).Select(c => $"{c.Id} {c.Status} triggered {c.TriggeredAt:HH:mm:ss.fff}, {c.Subtasks.Count}/{c.SubtasksTotal} acknowledged"))
                      + $" (silo logs in {Path.Combine(Shared, "logs")})");
            if (k > 0)
            {
                kills[^1] = kills[^1] with { RecoveredSeconds = sinceKill.Elapsed.TotalSeconds, FirstCheckpointAfter = completed };
                if (sinceKill.Elapsed > TimeSpan.FromMinutes(1))
                {
                    Console.WriteLine($"warning: the recovery after kill {k} took {sinceKill.Elapsed.TotalSeconds:0.0} s (first checkpoint after it: {completed})");
                }
            }

            if (k == settings.Kills)
            {
                break;
            }

            // A random moment within the next checkpoint interval: kills land before, during and after checkpoints.
            await Task.Delay(TimeSpan.FromMilliseconds(random.NextDouble() * settings.CheckpointInterval.TotalMilliseconds));
            var jobManagerSilo = (await RetryAsync(() => platform.GetStatusAsync(jobId), "the job's status")).JobManagerSilo;
            var victim = k == jobManagerKill
                ? _silos.FirstOrDefault(s => s.Is(jobManagerSilo)) ?? throw new InvalidOperationException($"The job manager's silo '{jobManagerSilo}' is none of the running silo processes.")
                : _silos[random.Next(_silos.Count)];
            var checkpointBefore = (await RetryAsync(() => platform.GetCheckpointStatisticsAsync(jobId), "checkpoint statistics")).LatestCompleted?.Id ?? 0;
            victim.Kill();
            sinceKill.Restart();
            _silos.Remove(victim);
            await victim.DisposeAsync();
            lastCheckpoint = checkpointBefore;
            var replacement = StartSilo(redis.ConnectionString);
            kills.Add(new KillEvent(k + 1, victim.Name, victim.ProcessId, victim.Is(jobManagerSilo), wall.Elapsed.TotalSeconds, checkpointBefore, replacement.Name, null, null));
            Console.WriteLine($"kill {k + 1}/{settings.Kills} at {wall.Elapsed.TotalSeconds:0.0} s: {victim.Name} (pid {victim.ProcessId}{(victim.Is(jobManagerSilo) ? ", the job manager's" : "")}) " +
                              $"after checkpoint {checkpointBefore}; {replacement.Name} started");
            await ServerProcess.WaitUntilAsync(replacement.IsReadyAsync, settings.Timeout, () => $"{replacement.Name} answers 200 on /health/ready");
        }

        return kills;
    }

    /// <summary>Writes the input in sequence order at the set rate, holding back from <paramref name="holdAt"/> until <paramref name="release"/>; returns its duration.</summary>
    private async Task<double> FeedAsync(IDatabase database, string[] streams, KeyedInput input, long[] writtenMs, long holdAt, Task release)
    {
        await Task.Yield();
        var watch = Stopwatch.StartNew();
        var chunk = (int)Math.Clamp(settings.Rate / 50, 1, 1_000);
        var paced = 0L;
        var pacing = Stopwatch.StartNew();
        for (long next = 0; next < settings.Records;)
        {
            if (next >= holdAt && !release.IsCompleted)
            {
                await release;
            }

            if (next < holdAt)
            {
                var due = TimeSpan.FromSeconds(paced / settings.Rate) - pacing.Elapsed;
                if (due > TimeSpan.Zero)
                {
                    await Task.Delay(due);
                }
            }

            var end = Math.Min(settings.Records, next + chunk);
            if (next < holdAt)
            {
                end = Math.Min(end, holdAt);
            }

            // One connection sends its commands in order, so each stream gets its entries in sequence order.
            var adds = new Task<RedisValue>[end - next];
            for (var seq = next; seq < end; seq++)
            {
                adds[seq - next] = database.StreamAddAsync(streams[input.StreamOf(seq)], [new NameValueEntry("key", input.KeyOf(seq)), new NameValueEntry("seq", seq)]);
            }

            await Task.WhenAll(adds);
            for (var seq = next; seq < end; seq++)
            {
                // The entry id's first part is the server's clock, in milliseconds, when it wrote the entry.
                var id = (string)adds[seq - next].Result!;
                writtenMs[seq] = long.Parse(id.AsSpan(0, id.IndexOf('-')), CultureInfo.InvariantCulture);
            }

            paced += end - next;
            next = end;
        }

        return watch.Elapsed.TotalSeconds;
    }

    private async Task PreloadAsync(IDatabase database, string[] streams, KeyedInput input)
    {
        const int chunk = 5_000;
        for (long next = 0; next < settings.Records; next += chunk)
        {
            var end = Math.Min(settings.Records, next + chunk);
            var adds = new List<Task>();
            for (var seq = next; seq < end; seq++)
            {
                adds.Add(database.StreamAddAsync(streams[input.StreamOf(seq)], [new NameValueEntry("key", input.KeyOf(seq)), new NameValueEntry("seq", seq)]));
            }

            await Task.WhenAll(adds);
        }
    }

    /// <summary>Notes when each output first appears in a committed file, every <see cref="FilePollMs"/> ms.</summary>
    private static async Task PollFilesAsync(string directory, long[] firstSeenMs, CancellationToken cancellation)
    {
        var read = new HashSet<string>(StringComparer.Ordinal);
        while (!cancellation.IsCancellationRequested)
        {
            PollFilesOnce(directory, firstSeenMs, read);
            try
            {
                await Task.Delay(FilePollMs, cancellation);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static void PollFilesOnce(string directory, long[] firstSeenMs, HashSet<string> read)
    {
        if (!Directory.Exists(directory))
        {
            return;
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        // Committed files never change: each is read once.
        foreach (var file in FileSink.CommittedFiles(directory))
        {
            if (!read.Add(file))
            {
                continue;
            }

            foreach (var line in File.ReadLines(file))
            {
                var record = KeyedRunningCount.Parse(line);
                if (record.Seq >= 0 && record.Seq < firstSeenMs.Length && firstSeenMs[record.Seq] == 0)
                {
                    firstSeenMs[record.Seq] = now;
                }
            }
        }
    }

    private static async Task<List<(KeyedRunningCount Record, double CommittedMs)>> ReadTableAsync(PostgresServer postgres, string table)
    {
        await using var connection = await postgres.OpenAsync();
        await using var command = new NpgsqlCommand(
            $"SELECT key, seq, count, COALESCE(extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000, 0)::float8 FROM {table}",
            connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(KeyedRunningCount, double)>();
        while (await reader.ReadAsync())
        {
            rows.Add((new KeyedRunningCount(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2)), reader.GetDouble(3)));
        }

        return rows;
    }

    private KeyedCountJobSettings JobSettings(RedisServer redis, PostgresServer postgres, KeyedInput input, string[] streams, KeyedCountSinks sinks, string output, string table) => new()
    {
        RedisConnectionString = redis.ConnectionString,
        StreamKeys = streams,
        EntriesPerStream = input.EntriesPerStream,
        Sinks = sinks,
        OutputDirectory = output,
        PostgresConnectionString = postgres.ConnectionString,
        Table = table,
        Parallelism = settings.Parallelism,
        CheckpointInterval = settings.CheckpointInterval,
        CheckpointDirectory = CheckpointDirectory,
    };

    private SiloProcess StartSilo(string redisConnectionString)
    {
        var silo = SiloProcess.Start($"silo-{_silosStarted++}", redisConnectionString, _clusterId, Shared);
        _silos.Add(silo);
        return silo;
    }

    private async Task WaitForSilosAsync()
    {
        var watch = Stopwatch.StartNew();
        await ServerProcess.WaitUntilAsync(
            async () => (await Task.WhenAll(_silos.Select(s => s.IsReadyAsync()))).All(ready => ready),
            settings.Timeout,
            () => $"the silo processes answer 200 on /health/ready (logs in {Path.Combine(Shared, "logs")})");
        Console.WriteLine($"{_silos.Count} silo processes ready after {watch.Elapsed.TotalSeconds:0.0} s");
    }

    private async Task<IHost> ConnectAsync(string redisConnectionString)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(client =>
        {
            // Gateway discovery through the silos' Redis membership table, as the command line does.
            client.UseRedisClustering(options => options.ConfigurationOptions = ConfigurationOptions.Parse(redisConnectionString));
            client.Configure<ClusterOptions>(options =>
            {
                options.ClusterId = _clusterId;
                options.ServiceId = SiloProcess.ServiceId;
            });

            // Calls through a SIGKILLed silo's gateway fail in seconds, and the client learns of replacements soon.
            client.Configure<ClientMessagingOptions>(options => options.ResponseTimeout = TimeSpan.FromSeconds(10));
            client.Configure<GatewayOptions>(options => options.GatewayListRefreshPeriod = TimeSpan.FromSeconds(2));
        });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    /// <summary>Retries a client call that fails because a silo (and its gateway) just died.</summary>
    private static async Task<T> RetryAsync<T>(Func<Task<T>> call, string what)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await call();
            }
            catch (Exception ex) when (ex is OrleansException or TimeoutException && watch.Elapsed < ClientCallRetry)
            {
                await Task.Delay(250);
            }
            catch (Exception ex) when (ex is OrleansException or TimeoutException)
            {
                throw new TimeoutException($"{what}: the call still failed after {ClientCallRetry}: {ex.Message}", ex);
            }
        }
    }

    private static string Name(KeyedCountSinks sinks) => sinks == KeyedCountSinks.Discard ? "discarding sink" : "exactly-once sinks";

    private static void TryDelete(string directory)
    {
        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left for the temp folder's cleanup.
        }
    }

    private JsonObject ToJson(KeyedInput input, ChaosResult chaos, ThroughputResult? throughput, long duplicates, long missing, long unexpected, double latencyP99)
    {
        static double? Ms(double value) => double.IsNaN(value) ? null : Math.Round(value, 1);
        static JsonObject Sink(SinkCheck check, Latency latency) => new()
        {
            ["records"] = check.Records,
            ["duplicates"] = check.Duplicates,
            ["missing"] = check.Missing,
            ["unexpected"] = check.Unexpected,
            ["latencyP50Ms"] = Ms(latency.P50),
            ["latencyP99Ms"] = Ms(latency.P99),
            ["latencyMaxMs"] = Ms(latency.Max),
            ["latencySamples"] = latency.Samples,
        };

        return new JsonObject
        {
            ["benchmark"] = "exactly-once",
            ["commandLine"] = settings.CommandLine,
            ["date"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            ["kills"] = chaos.Kills.Count,
            ["records"] = settings.Records,
            ["duplicates"] = duplicates,
            ["missing"] = missing,
            ["unexpected"] = unexpected,
            ["fileSink"] = Sink(chaos.File, chaos.FileLatency),
            ["postgresSink"] = Sink(chaos.Postgres, chaos.PostgresLatency),
            ["throughputRatio"] = throughput is null ? null : Math.Round(throughput.Ratio, 3),
            ["endToEndLatencyP99Ms"] = Ms(latencyP99),
            ["targets"] = new JsonObject
            {
                ["duplicates"] = 0,
                ["missing"] = 0,
                ["throughputRatio"] = TargetThroughputRatio,
                ["exactlyOnceMet"] = duplicates == 0 && missing == 0 && unexpected == 0,
                ["throughputRatioMet"] = throughput is null ? null : throughput.Ratio >= TargetThroughputRatio,
            },
            ["settings"] = new JsonObject
            {
                ["records"] = settings.Records,
                ["streams"] = settings.Streams,
                ["keys"] = input.Keys,
                ["keysUsed"] = input.DistinctKeysUsed,
                ["hottestKeyRecords"] = input.HottestKeyRecords,
                ["parallelism"] = settings.Parallelism,
                ["siloProcesses"] = 3,
                ["checkpointIntervalMs"] = settings.CheckpointInterval.TotalMilliseconds,
                ["feedRatePerSecond"] = settings.Rate,
                ["heldBackUntilTheLastKill"] = settings.Records - (settings.Records - Math.Max(settings.Records / 20, 1)),
                ["seed"] = settings.Seed,
            },
            ["method"] = new JsonObject
            {
                ["groundTruth"] = "record seq has key KeyOf(seq), all of a key's records in one stream in seq order; expected output per record: (key, seq, rank of seq within its key)",
                ["kills"] = "SIGKILL of a random silo process once a checkpoint completed since the previous kill (one kill aimed at the job manager's silo), a random delay within one checkpoint interval later; a replacement process started at once",
                ["fileSinkLatency"] = $"Redis entry id time (server clock, ms) to the first poll that found the record in a committed part file; polled every {FilePollMs} ms",
                ["postgresSinkLatency"] = "Redis entry id time to the row's commit timestamp (track_commit_timestamp = on, pg_xact_commit_timestamp(xmin)); exact, no polling",
                ["endToEndLatencyP99Ms"] = "the larger of the two sinks' p99",
                ["throughput"] = "records / (JobStatusInfo.EndedAt - SubmittedAt): submit to FINISHED, deployment and the final commit included, over input preloaded in Redis; median of the runs per mode",
            },
            ["throughput"] = throughput is null ? null : new JsonObject
            {
                ["exactlyOnceRecordsPerSecond"] = Math.Round(throughput.ExactlyOnceRecordsPerSecond),
                ["discardRecordsPerSecond"] = Math.Round(throughput.DiscardRecordsPerSecond),
                ["machineBusyCores"] = double.IsNaN(throughput.MachineBusyCores) ? null : Math.Round(throughput.MachineBusyCores, 2),
                ["runs"] = new JsonArray([.. throughput.Runs.Select(r => (JsonNode)new JsonObject
                {
                    ["sinks"] = r.Sinks == KeyedCountSinks.Discard ? "discard" : "file+postgres",
                    ["seconds"] = Math.Round(r.Seconds, 3),
                    ["recordsPerSecond"] = Math.Round(r.RecordsPerSecond),
                    ["restarts"] = r.Restarts,
                    ["fileSinkExact"] = r.File?.Exact,
                    ["postgresSinkExact"] = r.Postgres?.Exact,
                })]),
            },
            ["chaos"] = new JsonObject
            {
                ["jobId"] = chaos.JobId,
                ["finalState"] = chaos.FinalState.ToString(),
                ["failure"] = chaos.Failure,
                ["restarts"] = chaos.Restarts,
                ["restartCauses"] = new JsonArray([.. chaos.RestartCauses.Select(c => (JsonNode)JsonValue.Create(c))]),
                ["checkpointsCompleted"] = chaos.CheckpointsCompleted,
                ["checkpointsFailed"] = chaos.CheckpointsFailed,
                ["killsOfTheJobManagersSilo"] = chaos.Kills.Count(k => k.HostedJobManager),
                ["seconds"] = Math.Round(chaos.Seconds, 1),
                ["feedSeconds"] = Math.Round(chaos.FeedSeconds, 1),
                ["machineBusyCores"] = double.IsNaN(chaos.MachineBusyCores) ? null : Math.Round(chaos.MachineBusyCores, 2),
                ["killLog"] = new JsonArray([.. chaos.Kills.Select(k => (JsonNode)new JsonObject
                {
                    ["kill"] = k.Number,
                    ["silo"] = k.Silo,
                    ["pid"] = k.ProcessId,
                    ["hostedJobManager"] = k.HostedJobManager,
                    ["atSeconds"] = Math.Round(k.AtSeconds, 1),
                    ["lastCheckpointBefore"] = k.CheckpointBefore,
                    ["replacement"] = k.Replacement,
                    ["firstCheckpointAfter"] = k.FirstCheckpointAfter,
                    ["recoveredSeconds"] = k.RecoveredSeconds is { } s ? Math.Round(s, 1) : null,
                })]),
            },
            ["machine"] = BenchEnvironment.MachineJson(),
        };
    }

    private sealed record KillEvent(int Number, string Silo, int ProcessId, bool HostedJobManager, double AtSeconds, long CheckpointBefore, string Replacement, long? FirstCheckpointAfter, double? RecoveredSeconds);

    private sealed record ThroughputRun(KeyedCountSinks Sinks, double Seconds, double RecordsPerSecond, int Restarts, SinkCheck? File, SinkCheck? Postgres);

    private sealed record ThroughputResult(List<ThroughputRun> Runs, double MachineBusyCores)
    {
        public double ExactlyOnceRecordsPerSecond => Median(KeyedCountSinks.FileAndPostgres);

        public double DiscardRecordsPerSecond => Median(KeyedCountSinks.Discard);

        public double Ratio => ExactlyOnceRecordsPerSecond / DiscardRecordsPerSecond;

        private double Median(KeyedCountSinks sinks)
        {
            var values = Runs.Where(r => r.Sinks == sinks).Select(r => r.RecordsPerSecond).Order().ToArray();
            return values.Length % 2 == 1 ? values[values.Length / 2] : (values[(values.Length / 2) - 1] + values[values.Length / 2]) / 2;
        }
    }

    private sealed record ChaosResult(
        string JobId,
        JobState FinalState,
        string? Failure,
        int Restarts,
        List<string> RestartCauses,
        long CheckpointsCompleted,
        long CheckpointsFailed,
        List<KillEvent> Kills,
        double Seconds,
        double FeedSeconds,
        double MachineBusyCores,
        SinkCheck File,
        SinkCheck Postgres,
        Latency FileLatency,
        Latency PostgresLatency);

    /// <summary>Percentiles of the time from a record's write into Redis to its first committed appearance.</summary>
    private sealed record Latency(double P50, double P99, double Max, long Samples)
    {
        public static Latency Of(long[] writtenMs, double[] committedMs)
        {
            var samples = new List<double>(writtenMs.Length);
            for (var i = 0; i < writtenMs.Length; i++)
            {
                if (writtenMs[i] > 0 && committedMs[i] > 0)
                {
                    samples.Add(committedMs[i] - writtenMs[i]);
                }
            }

            if (samples.Count == 0)
            {
                return new Latency(double.NaN, double.NaN, double.NaN, 0);
            }

            samples.Sort();
            double At(double q) => samples[Math.Min(samples.Count - 1, (int)Math.Ceiling(q * samples.Count) - 1)];
            return new Latency(At(0.5), At(0.99), samples[^1], samples.Count);
        }
    }
}
