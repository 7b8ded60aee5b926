using System.Globalization;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Platform.Connectors;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Connectors;

/// <summary>
/// The file sink's writer and committer driven through the two-phase-commit protocol by hand, on real files: a
/// "crash" drops a writer and committer without disposing them, and the next attempt starts from the committables a
/// checkpoint would have restored.
/// </summary>
public sealed class FileSinkTests
{
    private const string Uid = "write-lines";

    private static readonly IServiceProvider Services = new ServiceCollection().BuildServiceProvider();

    private static SinkWriterContext Context(int attempt, int subtask = 0, long? restoredCheckpoint = null, IServiceProvider? services = null, string uid = Uid) => new()
    {
        JobId = "job",
        OperatorUid = uid,
        OperatorName = "write",
        SubtaskIndex = subtask,
        Parallelism = 2,
        Attempt = attempt,
        RestoredCheckpointId = restoredCheckpoint,
        Services = services ?? Services,
    };

    private static IEnumerable<string> Lines(int from, int to) => Enumerable.Range(from, to - from).Select(i => i.ToString(CultureInfo.InvariantCulture));

    private static string[] HiddenFiles(string directory) => Directory.GetFiles(directory, ".*").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    /// <summary>One attempt of one sink subtask, started as the runtime starts it (protocol steps 1 and 2).</summary>
    private sealed class Attempt
    {
        public required IPrecommittingSinkWriter<string, FileCommittable> Writer { get; init; }

        public required ISinkCommitter<FileCommittable> Committer { get; init; }

        public static async Task<Attempt> StartAsync(FileSink<string> sink, SinkWriterContext context, params (long Checkpoint, IReadOnlyList<FileCommittable> Committables)[] restored)
        {
            var attempt = new Attempt { Writer = sink.CreatePrecommittingWriter(context), Committer = sink.CreateCommitter(context) };
            foreach (var (checkpoint, committables) in restored.OrderBy(r => r.Checkpoint))
            {
                await attempt.Committer.CommitAsync(checkpoint, committables, CancellationToken.None);
            }

            await attempt.Committer.AbortLingeringTransactionsAsync(restored.SelectMany(r => r.Committables).ToList(), CancellationToken.None);
            return attempt;
        }

        public async Task WriteAsync(IEnumerable<string> records)
        {
            foreach (var record in records)
            {
                Writer.Write(record);
            }

            await Writer.FlushAsync(CancellationToken.None);
        }

        public ValueTask<IReadOnlyList<FileCommittable>> PrepareCommitAsync(long checkpoint) => Writer.PrepareCommitAsync(checkpoint, CancellationToken.None);

        public Task CommitAsync(long checkpoint, IReadOnlyList<FileCommittable> committables) => Committer.CommitAsync(checkpoint, committables, CancellationToken.None);

        public async Task CloseAsync()
        {
            await Writer.DisposeAsync();
            await Committer.DisposeAsync();
        }
    }

    [Fact]
    public async Task Records_become_visible_only_when_their_checkpoint_commits()
    {
        var directory = TestData.NewDirectory("file-sink");
        var attempt = await Attempt.StartAsync(new FileSink<string>(directory), Context(attempt: 3));

        await attempt.WriteAsync(["a", "Zürich", "c"]);
        Assert.Empty(FileSink.ReadCommittedLines(directory));
        Assert.Equal([$".part-{Uid}-0-3-0.inprogress"], HiddenFiles(directory));

        var committables = await attempt.PrepareCommitAsync(1);
        var pending = Assert.Single(committables);
        Assert.Equal(Path.Combine(directory, $".part-{Uid}-0-3-0.inprogress"), pending.InProgressPath);
        Assert.Equal(Path.Combine(directory, "part-0-0"), pending.FinalPath);
        Assert.Equal(Encoding.UTF8.GetByteCount("a\nZürich\nc\n"), pending.Length);
        Assert.Empty(FileSink.ReadCommittedLines(directory));

        await attempt.CommitAsync(1, committables);

        Assert.Equal(["a", "Zürich", "c"], FileSink.ReadCommittedLines(directory));
        Assert.Equal([Path.Combine(directory, "part-0-0")], FileSink.CommittedFiles(directory));
        Assert.Empty(HiddenFiles(directory));
        Assert.Empty(await attempt.PrepareCommitAsync(2));
        await attempt.CloseAsync();
    }

    [Fact]
    public async Task A_crash_between_pre_commit_and_commit_loses_and_duplicates_nothing()
    {
        var directory = TestData.NewDirectory("file-sink");
        var sink = new FileSink<string>(directory);
        var first = await Attempt.StartAsync(sink, Context(attempt: 0));
        await first.WriteAsync(Lines(0, 100));
        var checkpoint1 = await first.PrepareCommitAsync(1);
        await first.CommitAsync(1, checkpoint1);
        await first.WriteAsync(Lines(100, 200));
        var checkpoint2 = await first.PrepareCommitAsync(2);
        // Checkpoint 2 completes, but the process dies before its commit, with records after it in an open file.
        await first.WriteAsync(Lines(200, 250));

        var second = await Attempt.StartAsync(sink, Context(attempt: 1, restoredCheckpoint: 2), (2, checkpoint2));
        Assert.Equal(Lines(0, 200), FileSink.ReadCommittedLines(directory));
        Assert.Empty(HiddenFiles(directory));
        // The source replays from checkpoint 2's offset.
        await second.WriteAsync(Lines(200, 300));
        var checkpoint3 = await second.PrepareCommitAsync(3);
        await second.CommitAsync(3, checkpoint3);

        Assert.Equal(Lines(0, 300), FileSink.ReadCommittedLines(directory));
        Assert.Equal(["part-0-0", "part-0-1", "part-0-2"], FileSink.CommittedFiles(directory).Select(Path.GetFileName));
        Assert.Empty(HiddenFiles(directory));
        await second.CloseAsync();
    }

    [Fact]
    public async Task Committing_twice_and_again_after_a_restore_is_a_success_that_changes_nothing()
    {
        var directory = TestData.NewDirectory("file-sink");
        var sink = new FileSink<string>(directory);
        var first = await Attempt.StartAsync(sink, Context(attempt: 0));
        await first.WriteAsync(Lines(0, 10));
        var committables = await first.PrepareCommitAsync(1);

        await first.CommitAsync(1, committables);
        await first.CommitAsync(1, committables);
        // The acknowledgement of the commit was lost: the next attempt restores checkpoint 1 and commits it again.
        var second = await Attempt.StartAsync(sink, Context(attempt: 1, restoredCheckpoint: 1), (1, committables));
        await second.CommitAsync(1, committables);

        Assert.Equal(Lines(0, 10), FileSink.ReadCommittedLines(directory));
        Assert.Single(FileSink.CommittedFiles(directory));
        await second.CloseAsync();
    }

    [Fact]
    public async Task A_restored_attempt_commits_the_pending_files_an_earlier_attempt_left()
    {
        var directory = TestData.NewDirectory("file-sink");
        var sink = new FileSink<string>(directory) { MaxPartSizeBytes = 64 };
        var first = await Attempt.StartAsync(sink, Context(attempt: 0));
        await first.WriteAsync(Lines(0, 100));
        var checkpoint1 = await first.PrepareCommitAsync(1);
        await first.WriteAsync(Lines(100, 130));
        var checkpoint2 = await first.PrepareCommitAsync(2);
        Assert.True(checkpoint1.Count > 1, "the size limit rolled no file");
        // Checkpoints 1 and 2 complete, and the process dies before either notification arrives.

        var second = await Attempt.StartAsync(sink, Context(attempt: 1, restoredCheckpoint: 2), (1, checkpoint1), (2, checkpoint2));

        Assert.Equal(Lines(0, 130), FileSink.ReadCommittedLines(directory));
        Assert.All(checkpoint1.Concat(checkpoint2), c => Assert.Contains($"-0-0-", Path.GetFileName(c.InProgressPath), StringComparison.Ordinal));
        Assert.Empty(HiddenFiles(directory));
        await second.CloseAsync();
    }

    [Fact]
    public async Task Lingering_files_of_earlier_attempts_are_deleted_and_other_subtasks_sinks_and_later_attempts_are_left_alone()
    {
        var directory = TestData.NewDirectory("file-sink");
        var sink = new FileSink<string>(directory);
        var first = await Attempt.StartAsync(sink, Context(attempt: 0));
        await first.WriteAsync(Lines(0, 10));
        var checkpoint1 = await first.PrepareCommitAsync(1);
        await first.WriteAsync(Lines(10, 20));
        // Writers only: their own start would abort what this test wants to see left alone.
        foreach (var context in new[] { Context(attempt: 0, subtask: 1), Context(attempt: 0, uid: Uid + "-0"), Context(attempt: 5) })
        {
            var writer = sink.CreatePrecommittingWriter(context);
            writer.Write("another writer's record");
            await writer.FlushAsync(CancellationToken.None);
        }

        Assert.Equal(5, HiddenFiles(directory).Length);

        // Checkpoint 1 never completed: the job starts afresh (nothing restored).
        var second = await Attempt.StartAsync(sink, Context(attempt: 1));

        Assert.Empty(FileSink.ReadCommittedLines(directory));
        Assert.Equal(
            [$".part-{Uid}-0-0-0-0.inprogress", $".part-{Uid}-0-5-2.inprogress", $".part-{Uid}-1-0-0.inprogress"],
            HiddenFiles(directory));
        Assert.DoesNotContain(Path.GetFileName(Assert.Single(checkpoint1).InProgressPath), HiddenFiles(directory));
        await second.CloseAsync();
    }

    [Fact]
    public async Task After_scaling_down_a_subtask_commits_the_pending_files_of_a_former_subtask()
    {
        var directory = TestData.NewDirectory("file-sink");
        var sink = new FileSink<string>(directory);
        var pending = new List<FileCommittable>[3];
        for (var subtask = 0; subtask < 3; subtask++)
        {
            var attempt = await Attempt.StartAsync(sink, Context(attempt: 0, subtask: subtask));
            await attempt.WriteAsync(Lines(subtask * 100, subtask * 100 + 100));
            pending[subtask] = [.. await attempt.PrepareCommitAsync(1)];
        }

        // Checkpoint 1 completed, no commit arrived; the job restores it with two sink subtasks: 0 takes 0's and 2's.
        var first = await Attempt.StartAsync(sink, Context(attempt: 1, subtask: 0, restoredCheckpoint: 1), (1, [.. pending[0], .. pending[2]]));
        var second = await Attempt.StartAsync(sink, Context(attempt: 1, subtask: 1, restoredCheckpoint: 1), (1, pending[1]));
        await first.WriteAsync(["after the restore"]);
        await first.CommitAsync(2, await first.PrepareCommitAsync(2));

        Assert.Equal(Lines(0, 100).Append("after the restore").Concat(Lines(100, 300)), FileSink.ReadCommittedLines(directory));
        Assert.Equal(["part-0-0", "part-0-1", "part-1-0", "part-2-0"], FileSink.CommittedFiles(directory).Select(Path.GetFileName));
        Assert.Empty(HiddenFiles(directory));
        await first.CloseAsync();
        await second.CloseAsync();
    }

    [Fact]
    public async Task Part_files_roll_over_by_size_inside_a_checkpoint_interval_and_keep_the_order()
    {
        var directory = TestData.NewDirectory("file-sink");
        var sink = new FileSink<string>(directory) { MaxPartSizeBytes = 1_000 };
        var attempt = await Attempt.StartAsync(sink, Context(attempt: 0));

        await attempt.WriteAsync(Lines(0, 2_000));
        var committables = await attempt.PrepareCommitAsync(1);
        await attempt.CommitAsync(1, committables);

        var total = Lines(0, 2_000).Sum(l => l.Length + 1);
        Assert.InRange(committables.Count, total / 1_005, total / 1_000 + 1);
        Assert.All(committables, c => Assert.InRange(c.Length, 1, 1_000 + 5));
        Assert.All(FileSink.CommittedFiles(directory), f => Assert.InRange(new FileInfo(f).Length, 1, 1_000 + 5));
        Assert.Equal(Enumerable.Range(0, committables.Count).Select(i => $"part-0-{i}"), FileSink.CommittedFiles(directory).Select(Path.GetFileName));
        Assert.Equal(Lines(0, 2_000), FileSink.ReadCommittedLines(directory));
        await attempt.CloseAsync();
    }

    [Fact]
    public async Task Part_files_roll_over_by_age()
    {
        var directory = TestData.NewDirectory("file-sink");
        var clock = new ManualClock();
        var services = new ServiceCollection().AddSingleton<TimeProvider>(clock).BuildServiceProvider();
        var sink = new FileSink<string>(directory) { RolloverInterval = TimeSpan.FromSeconds(10) };
        var attempt = await Attempt.StartAsync(sink, Context(attempt: 0, services: services));

        await attempt.WriteAsync(["a", "b"]);
        clock.Advance(TimeSpan.FromSeconds(9));
        await attempt.WriteAsync(["c"]);
        clock.Advance(TimeSpan.FromSeconds(1));
        // The age is checked at the end of each input batch.
        await attempt.WriteAsync(["d"]);
        await attempt.WriteAsync(["e"]);
        clock.Advance(TimeSpan.FromSeconds(10));
        await attempt.Writer.FlushAsync(CancellationToken.None);
        await attempt.WriteAsync(["f"]);
        var committables = await attempt.PrepareCommitAsync(1);
        await attempt.CommitAsync(1, committables);

        Assert.Equal(["a\nb\nc\nd\n", "e\n", "f\n"], FileSink.CommittedFiles(directory).Select(File.ReadAllText));
        await attempt.CloseAsync();
    }

    [Fact]
    public async Task A_restore_to_an_older_checkpoint_never_overwrites_later_committed_files()
    {
        var directory = TestData.NewDirectory("file-sink");
        var sink = new FileSink<string>(directory);
        var first = await Attempt.StartAsync(sink, Context(attempt: 0));
        await first.WriteAsync(Lines(0, 10));
        var checkpoint1 = await first.PrepareCommitAsync(1);
        await first.CommitAsync(1, checkpoint1);
        await first.WriteAsync(Lines(10, 20));
        await first.CommitAsync(2, await first.PrepareCommitAsync(2));
        var committedAt2 = File.ReadAllBytes(Path.Combine(directory, "part-0-1"));

        // Restored from checkpoint 1 (a savepoint, or checkpoint 2 was unreadable): its file is committed already.
        var second = await Attempt.StartAsync(sink, Context(attempt: 1, restoredCheckpoint: 1), (1, checkpoint1));
        await second.WriteAsync(Lines(10, 15));
        var replayed = await second.PrepareCommitAsync(2);
        await second.CommitAsync(2, replayed);

        Assert.Equal(Path.Combine(directory, "part-0-2"), Assert.Single(replayed).FinalPath);
        Assert.Equal(committedAt2, File.ReadAllBytes(Path.Combine(directory, "part-0-1")));
        Assert.Equal(Lines(0, 20).Concat(Lines(10, 15)), FileSink.ReadCommittedLines(directory));
        await second.CloseAsync();
    }

    [Fact]
    public async Task A_committed_file_of_another_length_is_never_overwritten()
    {
        var directory = TestData.NewDirectory("file-sink");
        var attempt = await Attempt.StartAsync(new FileSink<string>(directory), Context(attempt: 0));
        await attempt.WriteAsync(Lines(0, 10));
        var committables = await attempt.PrepareCommitAsync(1);
        var target = Assert.Single(committables).FinalPath;
        File.WriteAllText(target, "someone else's output\n");

        var error = await Assert.ThrowsAsync<IOException>(() => attempt.CommitAsync(1, committables));

        Assert.Contains(target, error.Message, StringComparison.Ordinal);
        Assert.Contains("never overwritten", error.Message, StringComparison.Ordinal);
        Assert.Equal("someone else's output\n", File.ReadAllText(target));
        Assert.True(File.Exists(committables[0].InProgressPath));
        await attempt.CloseAsync();
    }

    [Fact]
    public async Task A_pending_file_that_is_gone_without_its_committed_name_is_a_loud_failure()
    {
        var directory = TestData.NewDirectory("file-sink");
        var attempt = await Attempt.StartAsync(new FileSink<string>(directory), Context(attempt: 0));
        await attempt.WriteAsync(Lines(0, 10));
        var committables = await attempt.PrepareCommitAsync(1);
        File.Delete(committables[0].InProgressPath);

        var error = await Assert.ThrowsAsync<IOException>(() => attempt.CommitAsync(1, committables));

        Assert.Contains(committables[0].InProgressPath, error.Message, StringComparison.Ordinal);
        Assert.Contains(committables[0].FinalPath, error.Message, StringComparison.Ordinal);
        Assert.Contains("lost", error.Message, StringComparison.Ordinal);
        await attempt.CloseAsync();
    }

    [Fact]
    public async Task A_commit_that_died_between_link_and_unlink_completes()
    {
        var directory = TestData.NewDirectory("file-sink");
        var attempt = await Attempt.StartAsync(new FileSink<string>(directory), Context(attempt: 0));
        await attempt.WriteAsync(Lines(0, 10));
        var committables = await attempt.PrepareCommitAsync(1);
        File.Copy(committables[0].InProgressPath, committables[0].FinalPath);

        await attempt.CommitAsync(1, committables);

        Assert.Equal(Lines(0, 10), FileSink.ReadCommittedLines(directory));
        Assert.Empty(HiddenFiles(directory));
        await attempt.CloseAsync();
    }

    [Fact]
    public async Task End_of_input_pre_commits_the_last_file()
    {
        var directory = TestData.NewDirectory("file-sink");
        var sink = new FileSink<string>(directory) { Encoder = new CsvEncoder() };
        var attempt = await Attempt.StartAsync(sink, Context(attempt: 0));
        await attempt.WriteAsync(["a", "b"]);
        await attempt.CommitAsync(1, await attempt.PrepareCommitAsync(1));
        await attempt.WriteAsync(["c"]);

        await attempt.Writer.FinishAsync(CancellationToken.None);
        await attempt.CommitAsync(2, await attempt.PrepareCommitAsync(2));
        await attempt.CloseAsync();

        Assert.Equal(["a;1", "b;1", "c;1"], FileSink.ReadCommittedLines(directory));
    }

    [Fact]
    public void The_sink_and_its_committables_survive_the_orleans_serializer()
    {
        var serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();
        var sink = new FileSink<string>("/data/out") { Encoder = new CsvEncoder(), MaxPartSizeBytes = 77, RolloverInterval = TimeSpan.FromMinutes(3) };
        var committable = new FileCommittable { InProgressPath = "/data/out/.part-a-0-1-2.inprogress", FinalPath = "/data/out/part-0-2", Length = 42 };

        var sinkCopy = serializer.Deserialize<FileSink<string>>(serializer.SerializeToArray(sink))!;
        var committableCopy = serializer.Deserialize<IReadOnlyList<FileCommittable>>(serializer.SerializeToArray<IReadOnlyList<FileCommittable>>(new List<FileCommittable> { committable }))!;

        Assert.Equal(("/data/out", 77L, TimeSpan.FromMinutes(3)), (sinkCopy.Directory, sinkCopy.MaxPartSizeBytes, sinkCopy.RolloverInterval));
        Assert.IsType<CsvEncoder>(sinkCopy.Encoder);
        Assert.Equal(committable, Assert.Single(committableCopy));
    }

    [Fact]
    public void Validation_names_the_path_and_what_to_do()
    {
        var file = Path.Combine(TestData.NewDirectory("file-sink"), "a-file");
        File.WriteAllText(file, "");

        Assert.Contains("set FileSink.Directory", Assert.Single(new FileSink<string>().Validate()), StringComparison.Ordinal);
        Assert.Contains($"'{file}' is a file", Assert.Single(new FileSink<string>(file).Validate()), StringComparison.Ordinal);
        Assert.Contains("MaxPartSizeBytes is 0", Assert.Single(new FileSink<string>(TestData.NewDirectory("file-sink")) { MaxPartSizeBytes = 0 }.Validate()), StringComparison.Ordinal);
        var missing = Path.Combine(TestData.NewDirectory("file-sink"), "new", "out");
        Assert.Empty(new FileSink<string>(missing).Validate());
        Assert.True(Directory.Exists(missing));
    }

    [Fact]
    public async Task Text_file_sink_restarts_append_instead_of_truncating_earlier_output()
    {
        var directory = TestData.NewDirectory("text-file-sink");
        var sink = new TextFileSink<string>(directory);
        await using (var first = sink.CreateWriter(Context(attempt: 0)))
        {
            foreach (var line in Lines(0, 100))
            {
                first.Write(line);
            }

            await first.FinishAsync(CancellationToken.None);
        }

        await using (var second = sink.CreateWriter(Context(attempt: 1)))
        {
            second.Write("after the restart");
            await second.FinishAsync(CancellationToken.None);
        }

        Assert.Equal(Lines(0, 100).Append("after the restart"), File.ReadAllLines(TextFileSink<string>.PartFile(directory, 0)));
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}

/// <summary>Writes a record as <c>{record};1</c> and a newline.</summary>
[GenerateSerializer]
public sealed class CsvEncoder : IRecordEncoder<string>
{
    public void Encode(string record, Stream output) => output.Write(Encoding.UTF8.GetBytes(record + ";1\n"));
}
