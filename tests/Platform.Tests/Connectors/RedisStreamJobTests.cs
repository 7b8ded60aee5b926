using Platform.Checkpointing;
using Platform.Connectors.Redis;
using Platform.Graph;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Hosting;
using Platform.Tests.Infrastructure;
using StackExchange.Redis;

namespace Platform.Tests.Connectors;

/// <summary>A job from Redis Streams to a Redis stream on a real cluster and a real redis-server, failed mid-run.</summary>
[Collection(ClusterCollection.Name)]
public sealed class RedisStreamJobTests(ClusterFixture fixture, RedisServerFixture redis) : IClassFixture<RedisServerFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task Redis_streams_through_a_keyed_count_into_a_redis_stream_are_exactly_once_across_a_failure()
    {
        const int streams = 3;
        const int perStream = 4_000;
        const int words = 25;
        var run = Guid.NewGuid().ToString("N")[..8];
        var keys = Enumerable.Range(0, streams).Select(s => $"{run}:words:{s}").ToList();
        var target = $"{run}:counts";
        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.Server.ConnectionString);
        var database = connection.GetDatabase();
        string WordOf(int stream, int index) => WordGenerator.WordAt(((long)stream * perStream) + index, words);
        async Task WriteAsync(int from, int to)
        {
            var adds = new List<Task>();
            for (var s = 0; s < streams; s++)
            {
                for (var i = from; i < to; i++)
                {
                    adds.Add(database.StreamAddAsync(keys[s], "value", WordOf(s, i)));
                }
            }

            await Task.WhenAll(adds);
        }

        // The first half now; the source waits for the rest (it ends after perStream entries of each stream).
        await WriteAsync(0, perStream / 2);
        var job = new StreamJobBuilder("redis-exactly-once")
        {
            DefaultParallelism = 2,
            Checkpointing = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(100), Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("checkpoints") },
            RestartStrategy = RestartStrategy.FixedDelayRestart(5, TimeSpan.FromMilliseconds(100)),
        };
        job.AddSource(new RedisStreamSource<string> { ConnectionString = redis.Server.ConnectionString, StreamKeys = keys, Boundedness = RedisStreamBoundedness.EntryCount, EntriesPerStream = perStream, BatchSize = 200 }, "redis words").Uid("redis-words")
            .Map(new FailOnDemand<string>(), "fail-on-demand").Uid("fail-on-demand")
            .KeyBy(new WordKey())
            .Process(new CountWords(), "count").Uid("count")
            .SinkTo(new RedisStreamSink<WordCount> { ConnectionString = redis.Server.ConnectionString, StreamKey = target }, "redis counts").Uid("redis-counts");
        var jobId = await fixture.Platform.SubmitAsync(job);
        await Poll.UntilAsync(async () => (await fixture.Platform.GetCheckpointStatisticsAsync(jobId)).Completed >= 2, Timeout, () => "two checkpoints complete");
        Assert.True(await database.StreamLengthAsync(target) > 0, "committed output is visible while the job runs");

        // The next record fails the job; it restarts from its latest checkpoint and reads the second half too.
        FailureSwitch.Arm(jobId);
        await WriteAsync(perStream / 2, perStream);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(1, status.Restarts);
        var expected = Enumerable.Range(0, streams).SelectMany(s => Enumerable.Range(0, perStream).Select(i => WordOf(s, i)))
            .GroupBy(w => w)
            .SelectMany(g => Enumerable.Range(1, g.Count()).Select(c => new WordCount(g.Key, c).ToString()))
            .Order(StringComparer.Ordinal);
        var output = (await database.StreamRangeAsync(target)).Select(e => (string)e["value"]!).Order(StringComparer.Ordinal);
        Assert.Equal(expected, output);
    }

    [Fact]
    public async Task A_stop_with_savepoint_resumed_at_another_parallelism_continues_every_stream_exactly_once()
    {
        const int streams = 5;
        const int perStream = 2_000;
        const int words = 20;
        var run = Guid.NewGuid().ToString("N")[..8];
        var keys = Enumerable.Range(0, streams).Select(s => $"{run}:words:{s}").ToList();
        var target = $"{run}:counts";
        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.Server.ConnectionString);
        var database = connection.GetDatabase();
        string WordOf(int stream, int index) => WordGenerator.WordAt(((long)stream * perStream) + index, words);
        Task WriteAsync(int from, int to) => Task.WhenAll(
            Enumerable.Range(0, streams).SelectMany(s => Enumerable.Range(from, to - from).Select(i => database.StreamAddAsync(keys[s], "value", WordOf(s, i)))));
        StreamJobBuilder Job(int parallelism, RestoreSettings? from)
        {
            var job = new StreamJobBuilder("redis-rescaled")
            {
                DefaultParallelism = parallelism,
                RestoreFrom = from,
                Checkpointing = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(100), Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("checkpoints") },
                RestartStrategy = RestartStrategy.NoRestart,
            };
            job.AddSource(new RedisStreamSource<string> { ConnectionString = redis.Server.ConnectionString, StreamKeys = keys, Boundedness = RedisStreamBoundedness.EntryCount, EntriesPerStream = perStream, BatchSize = 100 }, "redis words").Uid("redis-words")
                .KeyBy(new WordKey())
                .Process(new CountWords(), "count").Uid("count")
                .SinkTo(new RedisStreamSink<WordCount> { ConnectionString = redis.Server.ConnectionString, StreamKey = target }, "redis counts").Uid("redis-counts");
            return job;
        }

        await WriteAsync(0, perStream / 2);
        var first = await fixture.Platform.SubmitAsync(Job(2, null));
        await Poll.UntilAsync(async () => (await fixture.Platform.GetCheckpointStatisticsAsync(first)).Completed >= 1, Timeout, () => "a checkpoint completes");
        var savepoint = await fixture.Platform.StopWithSavepointAsync(first, timeout: Timeout);
        var before = await database.StreamLengthAsync(target);
        Assert.True(before > 0, "the stop with savepoint committed the first job's output");

        // Streams 0..4 were read by subtasks 0,1,0,1,0; now by 0,1,2,0,1, each from where the savepoint left it.
        await WriteAsync(perStream / 2, perStream);
        var second = await fixture.Platform.SubmitAsync(Job(3, new RestoreSettings { Path = savepoint.Path }));
        var status = await fixture.Platform.WaitForCompletionAsync(second, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        var expected = Enumerable.Range(0, streams).SelectMany(s => Enumerable.Range(0, perStream).Select(i => WordOf(s, i)))
            .GroupBy(w => w)
            .SelectMany(g => Enumerable.Range(1, g.Count()).Select(c => new WordCount(g.Key, c).ToString()))
            .Order(StringComparer.Ordinal);
        var output = (await database.StreamRangeAsync(target)).Select(e => (string)e["value"]!).Order(StringComparer.Ordinal);
        Assert.Equal(expected, output);
    }

    [Fact]
    public async Task Entries_that_do_not_deserialize_are_skipped_into_the_dead_letter_output_naming_stream_and_entry_id()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var keys = new List<string> { $"{run}:numbers:0", $"{run}:numbers:1" };
        var target = $"{run}:good";
        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.Server.ConnectionString);
        var database = connection.GetDatabase();
        var bad = new List<(string Key, string Id)>();
        var good = new List<string>();
        for (var i = 0; i < 400; i++)
        {
            var key = keys[i % 2];
            var value = i % 37 == 5 ? $"garbage-{i}" : i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var id = (string)(await database.StreamAddAsync(key, "value", value))!;
            if (value.StartsWith("garbage-", StringComparison.Ordinal))
            {
                bad.Add((key, id));
            }
            else
            {
                good.Add(value);
            }
        }

        var deadLetters = TestData.NewDirectory("dead-letters");
        var job = new StreamJobBuilder("redis-poison")
        {
            DefaultParallelism = 2,
            PoisonRecords = Platform.Connectors.PoisonRecordPolicy.SkipTo(deadLetters),
            Checkpointing = new CheckpointingSettings { Interval = TimeSpan.FromMilliseconds(100), Storage = CheckpointStorageKind.FileSystem, Directory = TestData.NewDirectory("checkpoints") },
            RestartStrategy = RestartStrategy.NoRestart,
        };
        job.AddSource(new RedisStreamSource<int> { ConnectionString = redis.Server.ConnectionString, StreamKeys = keys, Deserializer = new IntValueDeserializer(), Boundedness = RedisStreamBoundedness.LatestAtStart }, "redis numbers").Uid("redis-numbers")
            .SinkTo(new RedisStreamSink<int> { ConnectionString = redis.Server.ConnectionString, StreamKey = target }, "redis good").Uid("redis-good");
        var jobId = await fixture.Platform.SubmitAsync(job);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.Equal(good.Order(StringComparer.Ordinal), (await database.StreamRangeAsync(target)).Select(e => (string)e["value"]!).Order(StringComparer.Ordinal));
        var letters = Directory.GetFiles(Path.Combine(deadLetters, jobId), "*.jsonl").SelectMany(File.ReadAllLines)
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Select(l => (Key: l.GetProperty("Split").GetString()!, Id: l.GetProperty("Offset").GetString()!, Record: l.GetProperty("Record").GetString()!))
            .ToList();
        Assert.Equal(bad.Order(), letters.Select(l => (l.Key, l.Id)).Order());
        Assert.All(letters, l => Assert.StartsWith("value=garbage-", l.Record, StringComparison.Ordinal));
    }
}
