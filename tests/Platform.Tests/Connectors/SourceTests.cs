using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Platform.Connectors;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Connectors;

public sealed class SourceTests
{
    private static readonly IServiceProvider Services = new ServiceCollection().BuildServiceProvider();

    private static SourceReaderContext Context(int subtask, int parallelism, long? offset = null) => new()
    {
        JobId = "job",
        OperatorName = "source",
        SubtaskIndex = subtask,
        Parallelism = parallelism,
        StartOffset = offset,
        Services = Services,
    };

    private static List<T> ReadAll<T>(ISourceReader<T> reader, int? max = null)
    {
        var records = new List<T>();
        while ((max is null || records.Count < max) && reader.TryRead(out var record) == ReadStatus.Record)
        {
            records.Add(record);
        }

        return records;
    }

    private static string Write(string content)
    {
        var path = Path.Combine(TestData.NewDirectory("source"), "input.txt");
        File.WriteAllText(path, content, new UTF8Encoding(false));
        return path;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(64)]
    public void Text_file_splits_read_every_line_exactly_once(int parallelism)
    {
        var lines = Enumerable.Range(0, 500).Select(i => i % 11 == 0 ? "" : $"line {i} – Zürich naïve {new string('x', i % 37)}").ToList();
        var content = string.Join("", lines.Select((l, i) => l + (i % 5 == 0 ? "\r\n" : "\n")));
        var path = Write(content.TrimEnd('\n'));
        var source = new TextFileSource(path);

        var read = Enumerable.Range(0, parallelism).SelectMany(i =>
        {
            using var reader = source.CreateReader(Context(i, parallelism));
            return ReadAll(reader);
        }).ToList();

        Assert.Equal(lines, read);
    }

    [Fact]
    public void Text_file_reader_resumes_at_its_offset()
    {
        var path = Write(string.Join("\n", Enumerable.Range(0, 100).Select(i => $"line {i}")) + "\n");
        var source = new TextFileSource(path);

        List<string> first;
        long offset;
        using (var reader = source.CreateReader(Context(0, 1)))
        {
            first = ReadAll(reader, max: 37);
            offset = reader.Offset;
        }

        using var resumed = source.CreateReader(Context(0, 1, offset));
        var rest = ReadAll(resumed);

        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"line {i}"), first.Concat(rest));
        Assert.Equal(new FileInfo(path).Length, resumed.Offset);
        Assert.Equal(ReadStatus.EndOfInput, resumed.TryRead(out _));
    }

    [Fact]
    public void Text_file_source_names_a_missing_path()
    {
        var path = Path.Combine(TestData.NewDirectory("missing"), "nope.txt");
        var source = new TextFileSource(path);

        Assert.Contains(source.Validate(), p => p.Contains(path) && p.Contains("does not exist"));
        var error = Assert.Throws<IOException>(() => source.CreateReader(Context(0, 1)));
        Assert.Contains(path, error.Message);
        Assert.Contains("'source'", error.Message);
    }

    [Fact]
    public void Generator_splits_sequences_and_resumes_at_its_offset()
    {
        var source = new SequenceSource { Count = 1_000 };

        var all = Enumerable.Range(0, 3).SelectMany(i => ReadAll(source.CreateReader(Context(i, 3)))).Order().ToList();
        Assert.Equal(Enumerable.Range(0, 1_000).Select(i => (long)i), all);

        var reader = source.CreateReader(Context(1, 3));
        var head = ReadAll(reader, max: 10);
        var rest = ReadAll(source.CreateReader(Context(1, 3, reader.Offset)));
        Assert.Equal(Enumerable.Range(0, 1_000).Where(i => i % 3 == 1).Select(i => (long)i), head.Concat(rest));
    }

    [Fact]
    public void Collection_source_resumes_at_its_offset()
    {
        var source = new CollectionSource<string>(["a", "b", "c", "d", "e"]);

        var reader = source.CreateReader(Context(0, 2));
        var head = ReadAll(reader, max: 1);
        var rest = ReadAll(source.CreateReader(Context(0, 2, reader.Offset)));

        Assert.Equal(["a", "c", "e"], head.Concat(rest));
    }

    [Fact]
    public void A_held_source_waits_at_its_offset_until_the_release_file_exists_then_reads_to_the_end()
    {
        var releaseFile = Path.Combine(TestData.NewDirectory("held-source"), "release");
        var source = new Platform.Samples.HeldSource<long> { Inner = new SequenceSource { Count = 100 }, HoldAt = 40, ReleaseFile = releaseFile };

        // Subtask 1 of 2 reads 1, 3, ..., 39, then is held (again and again) at 41.
        var reader = source.CreateReader(Context(1, 2));
        var head = ReadAll(reader);
        Assert.Equal(Enumerable.Range(0, 40).Where(i => i % 2 == 1).Select(i => (long)i), head);
        Assert.Equal(ReadStatus.NothingAvailable, reader.TryRead(out _));
        Assert.Equal(41, reader.Offset);

        File.WriteAllText(releaseFile, "");
        var rest = new List<long>();
        ReadStatus status;
        while ((status = reader.TryRead(out var record)) == ReadStatus.Record)
        {
            rest.Add(record);
        }

        Assert.Equal(ReadStatus.EndOfInput, status);
        Assert.Equal(Enumerable.Range(40, 60).Where(i => i % 2 == 1).Select(i => (long)i), rest);
    }
}
