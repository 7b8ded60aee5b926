namespace Platform.Tasks.Network;

/// <summary>
/// The sending end of a channel: numbers batches and keeps at most a window of them beyond what the receiver has
/// consumed (credit-based flow control), so memory per channel is bounded and a slow receiver slows its senders.
/// All members run on the task grain's scheduler.
/// </summary>
internal sealed class OutputChannel(IStreamTaskGrain target, int receiverChannel, int window, int attempt)
{
    private long _limit = window;
    private TaskCompletionSource? _creditWaiter;

    public IStreamTaskGrain Target { get; } = target;

    public int ReceiverChannel { get; } = receiverChannel;

    public long NextSequence { get; private set; }

    public int InFlight { get; private set; }

    public bool HasCredit => NextSequence < _limit;

    /// <summary>Stopwatch ticks spent waiting for credit (backpressure), in total.</summary>
    public long BackpressuredTicks { get; private set; }

    /// <summary>Waits for credit, then sends the batch; the call's outcome is observed by <paramref name="owner"/>.</summary>
    public async ValueTask SendAsync(ITaskRuntime owner, byte[]? payload, int count, ControlElement? control)
    {
        if (!HasCredit)
        {
            // Backpressure: the time blocked here is what the subtask's backpressured-time metric adds up.
            var blocked = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                while (!HasCredit)
                {
                    owner.ThrowIfStopped();
                    _creditWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    await _creditWaiter.Task;
                }
            }
            finally
            {
                BackpressuredTicks += System.Diagnostics.Stopwatch.GetTimestamp() - blocked;
            }
        }

        owner.ThrowIfStopped();
        var batch = new ChannelBatch
        {
            Attempt = attempt,
            Channel = ReceiverChannel,
            Sequence = NextSequence++,
            Payload = payload,
            RecordCount = count,
            Control = control,
        };
        InFlight++;
        owner.Track(this, Target.PushBatch(batch));
    }

    /// <summary>The receiver consumed <paramref name="consumed"/> batches: the window moves.</summary>
    public void OnCredit(long consumed)
    {
        var limit = consumed + window;
        if (limit > _limit)
        {
            _limit = limit;
            WakeWaiter();
        }
    }

    public void OnCallCompleted() => InFlight--;

    /// <summary>Wakes a sender waiting for credit (also used to let it observe cancellation or failure).</summary>
    public void WakeWaiter()
    {
        var waiter = _creditWaiter;
        _creditWaiter = null;
        waiter?.TrySetResult();
    }
}

/// <summary>What an <see cref="OutputChannel"/> needs from the task that owns it.</summary>
internal interface ITaskRuntime
{
    /// <summary>Throws when the task was cancelled or has failed.</summary>
    void ThrowIfStopped();

    /// <summary>Observes a push call: credit from its answer, failure from its exception.</summary>
    void Track(OutputChannel channel, Task<PushAck> call);
}
