using Platform.Connectors;

namespace Platform.Samples.LargeState;

/// <summary>
/// Visits every key <see cref="Visits"/> times, one pass over all keys after another: sequence number <c>s</c> is visit
/// <c>s / Keys</c> of key <c>s mod Keys</c>, with <see cref="PayloadSize"/> bytes of <see cref="LargeStateData.Payload"/>.
/// Subtask <c>i</c> of <c>p</c> reads the sequence numbers <c>i, i + p, ...</c>; its offset is the next one.
/// </summary>
[GenerateSerializer, Alias("samples.LargeState.KeyVisitSource")]
public sealed class KeyVisitSource : ISourceFunction<KeyVisit>
{
    /// <summary>How many distinct keys.</summary>
    [Id(0)] public long Keys { get; set; } = 1000;

    /// <summary>How many times each key is visited.</summary>
    [Id(1)] public int Visits { get; set; } = 2;

    /// <summary>The size of each payload in bytes.</summary>
    [Id(2)] public int PayloadSize { get; set; } = 1024;

    /// <summary>
    /// A file on the silo's file system; while it exists, a subtask that has read its share of the first pass waits
    /// before the second. A test holds the job there to checkpoint the whole first pass before it injects a failure.
    /// </summary>
    [Id(3)] public string? HoldFile { get; set; }

    /// <inheritdoc />
    public bool IsBounded => true;

    /// <inheritdoc />
    public ISourceReader<KeyVisit> CreateReader(SourceReaderContext context) => new Reader(this, context);

    private sealed class Reader : ISourceReader<KeyVisit>
    {
        private readonly KeyVisitSource _source;
        private readonly int _stride;
        private readonly long _end;
        private long _next;
        private bool _released;

        public Reader(KeyVisitSource source, SourceReaderContext context)
        {
            _source = source;
            _stride = context.Parallelism;
            _end = checked(source.Keys * source.Visits);
            _next = context.StartOffset ?? context.SubtaskIndex;
            _released = source.HoldFile is null;
            if (_next % _stride != context.SubtaskIndex)
            {
                throw new InvalidOperationException(
                    $"Offset {_next} does not belong to subtask {context.SubtaskIndex} of {_stride} of source '{context.OperatorName}'.");
            }
        }

        public long Offset => _next;

        public ReadStatus TryRead(out KeyVisit record)
        {
            record = default!;
            if (_next >= _end)
            {
                return ReadStatus.EndOfInput;
            }

            if (!_released && _next >= _source.Keys)
            {
                if (File.Exists(_source.HoldFile))
                {
                    return ReadStatus.NothingAvailable;
                }

                _released = true;
            }

            var key = _next % _source.Keys;
            var visit = (int)(_next / _source.Keys);
            record = new KeyVisit(key, visit, LargeStateData.Payload(key, visit, _source.PayloadSize));
            _next += _stride;
            return ReadStatus.Record;
        }

        public void Dispose()
        {
        }
    }
}
