using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Platform.Storage.FileSystem;

namespace Platform.Connectors;

/// <summary>
/// Writes one subtask's records into hidden in-progress part files. A file is closed (flushed to disk) when it grows
/// past the size limit, when it is older than the rollover interval at the end of an input batch, and at every
/// checkpoint's barrier; a closed file is pending, and <see cref="PrepareCommitAsync"/> hands the pending files to the
/// checkpoint as committables.
/// </summary>
internal sealed class FileSinkWriter<T> : IPrecommittingSinkWriter<T, FileCommittable>
{
    private const int BufferSize = 64 * 1024;
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private readonly PartFileNames _names;
    private readonly SinkWriterContext _context;
    private readonly IRecordEncoder<T>? _encoder;
    private readonly long _maxPartSizeBytes;
    private readonly TimeSpan _rolloverInterval;
    private readonly TimeProvider _time;
    private readonly List<FileCommittable> _pending = [];
    private readonly PartBuffer _buffer;
    private FileStream? _file;
    private string? _inProgressPath;
    private long _sequence;
    private long _openedAt;
    private long? _nextSequence;
    private bool _directoryChanged;

    public FileSinkWriter(PartFileNames names, SinkWriterContext context, IRecordEncoder<T>? encoder, long maxPartSizeBytes, TimeSpan rolloverInterval)
    {
        _names = names;
        _context = context;
        _encoder = encoder;
        _maxPartSizeBytes = maxPartSizeBytes;
        _rolloverInterval = rolloverInterval;
        _time = context.Services.GetService<TimeProvider>() ?? TimeProvider.System;
        _buffer = new PartBuffer(this);
    }

    public void Write(T record)
    {
        if (_file is null)
        {
            Open();
        }

        if (_encoder is not null)
        {
            _encoder.Encode(record, _buffer);
        }
        else
        {
            _buffer.WriteLine(record?.ToString());
        }

        if (_buffer.Length >= _maxPartSizeBytes)
        {
            Roll();
        }
    }

    // Records stay in the open file's buffer: nothing is visible before a commit, and the barrier flushes to disk anyway.
    // The age is checked here, once per input batch, as Flink checks it on a timer: reading the clock per record cost
    // more than encoding the record on these machines.
    public ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        if (_file is not null && IsTooOld())
        {
            Roll();
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask FinishAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public async ValueTask<IReadOnlyList<FileCommittable>> PrepareCommitAsync(long checkpointId, CancellationToken cancellationToken)
    {
        if (_file is not null)
        {
            await _buffer.DrainAsync(cancellationToken);
            Roll();
        }

        // The pending files' names must survive a crash as surely as their bytes: the checkpoint will point at them.
        if (_directoryChanged)
        {
            DurableFiles.FlushDirectory(_names.Directory);
            _directoryChanged = false;
        }

        if (_pending.Count == 0)
        {
            return [];
        }

        var committables = _pending.ToArray();
        _pending.Clear();
        return committables;
    }

    // Never commits: the open file and the pending ones stay hidden until the next attempt aborts or commits them.
    public async ValueTask DisposeAsync()
    {
        if (_file is not null)
        {
            await _file.DisposeAsync();
            _file = null;
        }
    }

    private bool IsTooOld() => _time.GetElapsedTime(_openedAt) >= _rolloverInterval;

    private void Open()
    {
        if (_nextSequence is null)
        {
            DurableFiles.CreateDirectory(_names.Directory);
            _nextSequence = _names.NextSequence();
        }

        while (true)
        {
            var sequence = _nextSequence.Value;
            _nextSequence = sequence + 1;
            var path = _names.InProgress(_context.Attempt, sequence);
            try
            {
                // CreateNew: a file of this name (left by a run that reused this attempt number) is never overwritten.
                // Unbuffered: PartBuffer hands it whole 64 KiB blocks.
                _file = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.Read, BufferSize = 0 });
            }
            catch (IOException) when (File.Exists(path))
            {
                continue;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"Sink '{_context.OperatorName}' cannot create part file '{path}': {ex.Message}", ex);
            }

            _inProgressPath = path;
            _sequence = sequence;
            _openedAt = _time.GetTimestamp();
            _directoryChanged = true;
            _buffer.Reset();
            return;
        }
    }

    private void Roll()
    {
        var file = _file!;
        _buffer.Drain();
        file.Flush(flushToDisk: true);
        var length = _buffer.Length;
        file.Dispose();
        _file = null;
        _pending.Add(new FileCommittable { InProgressPath = _inProgressPath!, FinalPath = _names.Final(_sequence), Length = length });
    }

    /// <summary>
    /// The open part file's write buffer, and the stream an <see cref="IRecordEncoder{T}"/> writes to: records are
    /// encoded straight into one block, which goes to the file when full (a buffered FileStream's per-call cost,
    /// paid per record, was most of the sink's time).
    /// </summary>
    private sealed class PartBuffer(FileSinkWriter<T> writer) : Stream
    {
        private readonly byte[] _block = new byte[BufferSize];
        private int _count;
        private long _drained;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        /// <summary>The bytes written to the open part file, buffered or not.</summary>
        public override long Length => _drained + _count;

        public override long Position
        {
            get => Length;
            set => throw new NotSupportedException();
        }

        public void Reset()
        {
            _count = 0;
            _drained = 0;
        }

        public void WriteLine(string? text)
        {
            text ??= "";
            var most = Utf8.GetMaxByteCount(text.Length) + 1;
            if (most > _block.Length - _count)
            {
                Drain();
            }

            if (most <= _block.Length)
            {
                _count += Utf8.GetBytes(text, _block.AsSpan(_count));
                _block[_count++] = (byte)'\n';
                return;
            }

            Write(Utf8.GetBytes(text + "\n"));
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            while (!buffer.IsEmpty)
            {
                if (_count == _block.Length)
                {
                    Drain();
                }

                var take = Math.Min(buffer.Length, _block.Length - _count);
                buffer[..take].CopyTo(_block.AsSpan(_count));
                _count += take;
                buffer = buffer[take..];
            }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void WriteByte(byte value) => Write([value]);

        /// <summary>Writes the buffered bytes to the file.</summary>
        public void Drain()
        {
            if (_count > 0)
            {
                writer._file!.Write(_block, 0, _count);
                _drained += _count;
                _count = 0;
            }
        }

        public async ValueTask DrainAsync(CancellationToken cancellationToken)
        {
            if (_count > 0)
            {
                await writer._file!.WriteAsync(_block.AsMemory(0, _count), cancellationToken);
                _drained += _count;
                _count = 0;
            }
        }

        // Only the writer flushes (at a roll or a barrier); an encoder's Flush must not reach the disk per record.
        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
