using Platform.Connectors;

namespace Platform.Samples;

/// <summary>
/// Wraps a source and holds each of its subtasks at offset <see cref="HoldAt"/> until the file <see cref="ReleaseFile"/>
/// exists (as the silo sees it). A bounded job is then known to be still running, wherever it was placed and however
/// slow the machine is, until whoever acts on it (a test killing a silo, a recovery demo) creates the file.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
[GenerateSerializer, Alias("samples.HeldSource`1")]
public sealed class HeldSource<T> : ISourceFunction<T>
{
    /// <summary>The source whose records pass through.</summary>
    [Id(0)] public ISourceFunction<T> Inner { get; set; } = null!;

    /// <summary>The offset at which a subtask waits for <see cref="ReleaseFile"/> (for generated sources, a sequence number).</summary>
    [Id(1)] public long HoldAt { get; set; }

    /// <summary>The file whose existence releases the held subtasks.</summary>
    [Id(2)] public string ReleaseFile { get; set; } = "";

    /// <inheritdoc />
    public bool IsBounded => Inner.IsBounded;

    /// <inheritdoc />
    public ISourceReader<T> CreateReader(SourceReaderContext context) => new Reader(Inner.CreateReader(context), HoldAt, ReleaseFile);

    private sealed class Reader(ISourceReader<T> inner, long holdAt, string releaseFile) : ISourceReader<T>
    {
        private bool _released;

        public long Offset => inner.Offset;

        public ReadStatus TryRead(out T record)
        {
            if (!_released && inner.Offset >= holdAt)
            {
                if (!File.Exists(releaseFile))
                {
                    record = default!;
                    return ReadStatus.NothingAvailable;
                }

                _released = true;
            }

            return inner.TryRead(out record);
        }

        public void Dispose() => inner.Dispose();
    }
}
