using System.Text;

namespace Platform.Connectors;

/// <summary>
/// A deterministic generator: the record at sequence number <c>s</c> is <see cref="Generate"/>(s), and a subtask's
/// offset is the sequence number of its next record. Subtask <c>i</c> of <c>p</c> produces the sequence numbers
/// <c>i, i + p, i + 2p, ...</c> below <see cref="Count"/>.
/// </summary>
[GenerateSerializer, Alias("platform.GeneratorSource`1")]
public abstract class GeneratorSource<T> : ISourceFunction<T>
{
    /// <summary>How many records to generate across all subtasks; <c>null</c> for an unbounded source.</summary>
    [Id(0)] public long? Count { get; set; }

    /// <summary>Records per second per subtask; 0 for as fast as possible.</summary>
    [Id(1)] public double RecordsPerSecondPerSubtask { get; set; }

    /// <inheritdoc />
    public bool IsBounded => Count is not null;

    /// <summary>Produces the record with sequence number <paramref name="sequence"/>; must be deterministic.</summary>
    public abstract T Generate(long sequence);

    /// <inheritdoc />
    public ISourceReader<T> CreateReader(SourceReaderContext context) => new Reader(this, context);

    private sealed class Reader : ISourceReader<T>
    {
        private readonly GeneratorSource<T> _source;
        private readonly int _stride;
        private readonly long _end;
        private readonly double _rate;
        private readonly long _startSequence;
        private readonly long _startTimestamp;
        private long _next;

        public Reader(GeneratorSource<T> source, SourceReaderContext context)
        {
            _source = source;
            _stride = context.Parallelism;
            _end = source.Count ?? long.MaxValue;
            _rate = source.RecordsPerSecondPerSubtask;
            _next = context.StartOffset ?? context.SubtaskIndex;
            if (_next % _stride != context.SubtaskIndex)
            {
                throw new InvalidOperationException(
                    $"Offset {_next} does not belong to subtask {context.SubtaskIndex} of {_stride} of source '{context.OperatorName}'.");
            }

            _startSequence = _next;
            _startTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();
        }

        public long Offset => _next;

        public ReadStatus TryRead(out T record)
        {
            if (_next >= _end)
            {
                record = default!;
                return ReadStatus.EndOfInput;
            }

            if (_rate > 0)
            {
                var produced = (_next - _startSequence) / _stride;
                var allowed = System.Diagnostics.Stopwatch.GetElapsedTime(_startTimestamp).TotalSeconds * _rate;
                if (produced >= allowed)
                {
                    record = default!;
                    return ReadStatus.NothingAvailable;
                }
            }

            record = _source.Generate(_next);
            _next += _stride;
            return ReadStatus.Record;
        }

        public void Dispose()
        {
        }
    }
}

/// <summary>Generates the numbers 0, 1, 2, ... (up to <see cref="GeneratorSource{T}.Count"/>).</summary>
[GenerateSerializer, Alias("platform.SequenceSource")]
public sealed class SequenceSource : GeneratorSource<long>
{
    /// <inheritdoc />
    public override long Generate(long sequence) => sequence;
}

/// <summary>
/// Emits the elements of an in-memory collection (for tests and examples). Subtask <c>i</c> of <c>p</c> emits the
/// elements at indexes <c>i, i + p, ...</c>; the offset is the index of the next element.
/// </summary>
[GenerateSerializer, Alias("platform.CollectionSource`1")]
public sealed class CollectionSource<T> : ISourceFunction<T>
{
    /// <summary>Creates an empty source; set <see cref="Elements"/>.</summary>
    public CollectionSource()
    {
    }

    /// <summary>Creates a source of <paramref name="elements"/>.</summary>
    public CollectionSource(IEnumerable<T> elements) => Elements = [.. elements];

    /// <summary>The elements, in order.</summary>
    [Id(0)] public List<T> Elements { get; set; } = [];

    /// <inheritdoc />
    public bool IsBounded => true;

    /// <inheritdoc />
    public ISourceReader<T> CreateReader(SourceReaderContext context) => new Reader(Elements, context);

    private sealed class Reader(List<T> elements, SourceReaderContext context) : ISourceReader<T>
    {
        private long _next = context.StartOffset ?? context.SubtaskIndex;

        public long Offset => _next;

        public ReadStatus TryRead(out T record)
        {
            if (_next >= elements.Count)
            {
                record = default!;
                return ReadStatus.EndOfInput;
            }

            record = elements[(int)_next];
            _next += context.Parallelism;
            return ReadStatus.Record;
        }

        public void Dispose()
        {
        }
    }
}

/// <summary>
/// Reads the lines of a UTF-8 text file on the silos' file system. The file is split by byte ranges across
/// subtasks: a line belongs to the subtask whose range holds its first byte. The offset is the byte position of
/// the next line.
/// </summary>
[GenerateSerializer, Alias("platform.TextFileSource")]
public sealed class TextFileSource : ISourceFunction<string>, IValidatingFunction, IFileSystemFunction
{
    /// <inheritdoc />
    IEnumerable<string> IFileSystemFunction.FileSystemPaths => [Path];

    /// <summary>Creates a source; set <see cref="Path"/>.</summary>
    public TextFileSource()
    {
    }

    /// <summary>Creates a source reading <paramref name="path"/>.</summary>
    public TextFileSource(string path) => Path = path;

    /// <summary>The file to read, as the silo sees it.</summary>
    [Id(0)] public string Path { get; set; } = "";

    /// <inheritdoc />
    public bool IsBounded => true;

    /// <inheritdoc />
    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Path))
        {
            yield return "The text file source has no path: set TextFileSource.Path to the file to read.";
            yield break;
        }

        string? problem = null;
        try
        {
            var full = System.IO.Path.GetFullPath(Path);
            if (Directory.Exists(full))
            {
                problem = $"The input path '{full}' is a directory; the text file source reads one file.";
            }
            else if (!File.Exists(full))
            {
                problem = $"The input file '{full}' does not exist on silo {Environment.MachineName}; check the path (relative paths are resolved against the silo's working directory '{Environment.CurrentDirectory}').";
            }
            else
            {
                using var _ = File.OpenRead(full);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            problem = $"The input file '{Path}' cannot be read: {ex.Message}";
        }

        if (problem is not null)
        {
            yield return problem;
        }
    }

    /// <inheritdoc />
    public ISourceReader<string> CreateReader(SourceReaderContext context) => new Reader(Path, context);

    private sealed class Reader : ISourceReader<string>
    {
        private const int BufferSize = 64 * 1024;
        private readonly FileStream _stream;
        private readonly long _end;
        private readonly byte[] _buffer = new byte[BufferSize];
        private readonly MemoryStream _line = new();
        private int _bufferLength;
        private int _bufferPosition;
        private long _position;

        public Reader(string path, SourceReaderContext context)
        {
            try
            {
                _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"Source '{context.OperatorName}' cannot open input file '{System.IO.Path.GetFullPath(path)}': {ex.Message}", ex);
            }

            var length = _stream.Length;
            var start = length * context.SubtaskIndex / context.Parallelism;
            _end = length * (context.SubtaskIndex + 1) / context.Parallelism;
            if (context.StartOffset is { } offset)
            {
                Seek(offset);
            }
            else if (start > 0)
            {
                // The line that straddles our start belongs to the previous split: skip to the next line start.
                Seek(start - 1);
                SkipLine();
            }
            else
            {
                Seek(0);
            }
        }

        public long Offset => _position;

        public ReadStatus TryRead(out string record)
        {
            // A line belongs to this split when it starts before the split's end.
            if (_position >= _end || !HasMore())
            {
                record = null!;
                return ReadStatus.EndOfInput;
            }

            _line.SetLength(0);
            while (HasMore())
            {
                var span = _buffer.AsSpan(_bufferPosition, _bufferLength - _bufferPosition);
                var newline = span.IndexOf((byte)'\n');
                if (newline >= 0)
                {
                    _line.Write(span[..newline]);
                    Advance(newline + 1);
                    break;
                }

                _line.Write(span);
                Advance(span.Length);
            }

            var bytes = _line.GetBuffer().AsSpan(0, (int)_line.Length);
            if (bytes.Length > 0 && bytes[^1] == (byte)'\r')
            {
                bytes = bytes[..^1];
            }

            record = Encoding.UTF8.GetString(bytes);
            return ReadStatus.Record;
        }

        private void SkipLine()
        {
            while (HasMore())
            {
                var span = _buffer.AsSpan(_bufferPosition, _bufferLength - _bufferPosition);
                var newline = span.IndexOf((byte)'\n');
                if (newline >= 0)
                {
                    Advance(newline + 1);
                    return;
                }

                Advance(span.Length);
            }
        }

        private void Seek(long position)
        {
            _stream.Position = position;
            _bufferLength = 0;
            _bufferPosition = 0;
            _position = position;
        }

        private void Advance(int count)
        {
            _bufferPosition += count;
            _position += count;
        }

        private bool HasMore()
        {
            if (_bufferPosition < _bufferLength)
            {
                return true;
            }

            _bufferLength = _stream.Read(_buffer, 0, _buffer.Length);
            _bufferPosition = 0;
            return _bufferLength > 0;
        }

        public void Dispose()
        {
            _stream.Dispose();
            _line.Dispose();
        }
    }
}
