using System.Text;
using System.Text.Json;
using Platform.Connectors;

namespace Platform.Nexmark;

/// <summary>Generates the Nexmark stream (<see cref="NexmarkGenerator"/>); subtask i of p generates events i, i + p, ...</summary>
[GenerateSerializer, Alias("platform.nexmark.NexmarkGeneratorSource")]
public sealed class NexmarkGeneratorSource : GeneratorSource<NexmarkEvent>
{
    /// <summary>The generator's settings.</summary>
    [Id(0)] public NexmarkConfig Config { get; set; } = new();

    /// <inheritdoc />
    public override NexmarkEvent Generate(long sequence) => NexmarkGenerator.Generate(sequence, Config);
}

/// <summary>
/// Reads Nexmark events from a JSON-lines file (one <see cref="NexmarkEvent"/> per line, as
/// <see cref="NexmarkFiles.WriteJsonLines"/> writes them), split by byte ranges across subtasks like
/// <see cref="TextFileSource"/>. A line that is not an event fails the job with the file, the byte position and the line.
/// </summary>
[GenerateSerializer, Alias("platform.nexmark.NexmarkFileSource")]
public sealed class NexmarkFileSource : ISourceFunction<NexmarkEvent>, IValidatingFunction, IFileSystemFunction
{
    /// <inheritdoc />
    IEnumerable<string> IFileSystemFunction.FileSystemPaths => [Path];

    /// <summary>The file to read, as the silo sees it.</summary>
    [Id(0)] public string Path { get; set; } = "";

    /// <inheritdoc />
    public bool IsBounded => true;

    /// <inheritdoc />
    public IEnumerable<string> Validate() => new TextFileSource(Path).Validate();

    /// <inheritdoc />
    public ISourceReader<NexmarkEvent> CreateReader(SourceReaderContext context) => new Reader(new TextFileSource(Path).CreateReader(context), Path);

    private sealed class Reader(ISourceReader<string> lines, string path) : ISourceReader<NexmarkEvent>
    {
        public long Offset => lines.Offset;

        public ReadStatus TryRead(out NexmarkEvent record)
        {
            record = null!;
            while (true)
            {
                var at = lines.Offset;
                var status = lines.TryRead(out var line);
                if (status != ReadStatus.Record)
                {
                    return status;
                }

                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }

                record = Parse(line, at);
                return ReadStatus.Record;
            }
        }

        private NexmarkEvent Parse(string line, long at)
        {
            NexmarkEvent? parsed;
            try
            {
                parsed = JsonSerializer.Deserialize(line, NexmarkJson.Default.NexmarkEvent);
            }
            catch (JsonException ex)
            {
                throw new InvalidDataException($"The Nexmark file '{path}' has a line at byte {at} that is not an event ({ex.Message}): {Excerpt(line)}", ex);
            }

            var set = (parsed?.Person is null ? 0 : 1) + (parsed?.Auction is null ? 0 : 1) + (parsed?.Bid is null ? 0 : 1);
            return set == 1
                ? parsed!
                : throw new InvalidDataException($"The Nexmark file '{path}' has a line at byte {at} with {set} of person, auction and bid; an event has exactly one: {Excerpt(line)}");
        }

        private static string Excerpt(string line) => line.Length <= 200 ? line : line[..200] + "...";

        public void Dispose() => lines.Dispose();
    }
}

/// <summary>Writes and reads Nexmark JSON-lines files.</summary>
public static class NexmarkFiles
{
    /// <summary>Writes events 0 .. <paramref name="count"/> - 1 of <paramref name="config"/>'s stream to <paramref name="path"/>, one JSON object per line.</summary>
    public static void WriteJsonLines(string path, long count, NexmarkConfig config)
    {
        using var output = new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), bufferSize: 1 << 20);
        for (long n = 0; n < count; n++)
        {
            output.Write(JsonSerializer.Serialize(NexmarkGenerator.Generate(n, config), NexmarkJson.Default.NexmarkEvent));
            output.Write('\n');
        }
    }

    /// <summary>Reads every event of a JSON-lines file.</summary>
    public static IEnumerable<NexmarkEvent> ReadJsonLines(string path) =>
        File.ReadLines(path).Where(l => !string.IsNullOrWhiteSpace(l)).Select(l => JsonSerializer.Deserialize(l, NexmarkJson.Default.NexmarkEvent)!);
}

/// <summary>Writes each record as one line of JSON (camelCase), for query results in part files.</summary>
[GenerateSerializer, Alias("platform.nexmark.JsonLineEncoder`1")]
public sealed class JsonLineEncoder<T> : IRecordEncoder<T>
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    /// <inheritdoc />
    public void Encode(T record, Stream output)
    {
        JsonSerializer.Serialize(output, record, Options);
        output.WriteByte((byte)'\n');
    }
}
