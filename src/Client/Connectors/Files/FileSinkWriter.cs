using System.Buffers;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Platform.Storage.FileSystem;

namespace Platform.Connectors;

/// <summary>
/// Writes one subtask's records into hidden in-progress part files. A file is closed (flushed to disk) when it grows
/// past the size limit, when it is older than the rollover interval, and at every checkpoint's barrier; a closed file
/// is pending, and <see cref="PrepareCommitAsync"/> hands the pending files to the checkpoint as committables.
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
    }

    public void Write(T record)
    {
        if (_file is not null && IsTooOld())
        {
            Roll();
        }

        var file = _file ?? Open();
        if (_encoder is not null)
        {
            _encoder.Encode(record, file);
        }
        else
        {
            WriteLine(file, record?.ToString());
        }

        if (file.Position >= _maxPartSizeBytes)
        {
            Roll();
        }
    }

    // Records stay in the open file's buffer: nothing is visible before a commit, and the barrier flushes to disk anyway.
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
            await _file.FlushAsync(cancellationToken);
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

    private FileStream Open()
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
                _file = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.Read, BufferSize = BufferSize });
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
            return _file;
        }
    }

    private void Roll()
    {
        var file = _file!;
        file.Flush(flushToDisk: true);
        var length = file.Length;
        file.Dispose();
        _file = null;
        _pending.Add(new FileCommittable { InProgressPath = _inProgressPath!, FinalPath = _names.Final(_sequence), Length = length });
    }

    private static void WriteLine(FileStream file, string? text)
    {
        text ??= "";
        var buffer = ArrayPool<byte>.Shared.Rent(Utf8.GetMaxByteCount(text.Length) + 1);
        try
        {
            var count = Utf8.GetBytes(text, buffer);
            buffer[count] = (byte)'\n';
            file.Write(buffer, 0, count + 1);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
