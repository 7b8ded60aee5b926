using Platform.Connectors;
using Platform.Functions;

namespace Platform.Tasks.Operators;

/// <summary>
/// What every sink operator does with its writer: records go to <see cref="Writer"/>, a flush reaches it only when
/// something was written since the last one, the end of input finishes it, and closing disposes it. Exceptions are
/// reported as the operator's (<see cref="StreamOperator.Fail"/>). Subclasses create the writer in <c>OpenAsync</c>.
/// </summary>
internal abstract class SinkWriterOperator<TIn, TWriter> : StreamOperator, ICollector<TIn>
    where TWriter : class, ISinkWriter<TIn>
{
    private bool _dirty;

    public override bool NeedsFlush => true;

    /// <summary>The writer, from <c>OpenAsync</c> until <see cref="DisposeWriterAsync"/>.</summary>
    protected TWriter? Writer { get; set; }

    public void Collect(TIn record)
    {
        try
        {
            Writer!.Write(record);
            _dirty = true;
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
    }

    public override async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        if (!_dirty)
        {
            return;
        }

        _dirty = false;
        try
        {
            await Writer!.FlushAsync(cancellationToken);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
    }

    public override async ValueTask FinishAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Writer!.FinishAsync(cancellationToken);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
    }

    /// <summary>Disposes the writer, once.</summary>
    protected async ValueTask DisposeWriterAsync()
    {
        if (Writer is { } writer)
        {
            Writer = null;
            await writer.DisposeAsync();
        }
    }
}
