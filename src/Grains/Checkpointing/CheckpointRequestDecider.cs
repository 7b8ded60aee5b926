namespace Platform.Checkpointing;

/// <summary>
/// Decides whether a checkpoint or savepoint may be triggered now (Flink's CheckpointRequestDecider): not while
/// checkpointing is off for the attempt, not once a stop with savepoint is pending, not past the concurrent limit, and
/// periodic ones only after the interval and the minimum pause.
/// </summary>
internal sealed class CheckpointRequestDecider
{
    private DateTimeOffset _lastTrigger = DateTimeOffset.MinValue;
    private DateTimeOffset _lastEnd = DateTimeOffset.MinValue;

    /// <summary>A checkpoint was triggered.</summary>
    public void OnTriggered(DateTimeOffset at) => _lastTrigger = at;

    /// <summary>A checkpoint ended (completed or failed): the minimum pause counts from here.</summary>
    public void OnEnded(DateTimeOffset at) => _lastEnd = at;

    /// <summary>A new attempt starts: its first periodic checkpoint waits one interval.</summary>
    public void OnStarted(DateTimeOffset at)
    {
        _lastTrigger = at;
        _lastEnd = DateTimeOffset.MinValue;
    }

    /// <summary>Whether a periodic checkpoint is due.</summary>
    public bool PeriodicDue(CheckpointingSettings settings, bool triggering, IReadOnlyCollection<PendingCheckpoint> pending, DateTimeOffset now) =>
        triggering
        && !pending.Any(p => p.Type.IsStop)
        && settings.Interval is { } interval
        && now - _lastTrigger >= interval
        && now - _lastEnd >= settings.MinPauseBetweenCheckpoints
        && pending.Count < Math.Max(1, settings.MaxConcurrentCheckpoints);

    /// <summary>Why a manual checkpoint (or, with <paramref name="savepoint"/>, a savepoint) cannot be triggered now; null when it can.</summary>
    public static string? RefuseManual(string jobId, CheckpointingSettings settings, bool triggering, IReadOnlyCollection<PendingCheckpoint> pending, bool savepoint)
    {
        if (!triggering)
        {
            return savepoint
                ? $"Job '{jobId}' is not running with checkpointing settings; a savepoint can be taken of a running job whose StreamJobBuilder.Checkpointing is set (Interval may stay null)."
                : $"Job '{jobId}' is not running with checkpoints enabled; no checkpoint can be taken now.";
        }

        if (pending.FirstOrDefault(p => p.Type.IsStop) is { } stop)
        {
            return $"Job '{jobId}' is stopping with savepoint {stop.Id}; no further {(savepoint ? "savepoint" : "checkpoint")} can be taken.";
        }

        if (!savepoint && pending.Count >= Math.Max(1, settings.MaxConcurrentCheckpoints))
        {
            return $"Checkpoint {string.Join(", ", pending.Select(p => p.Id))} of job '{jobId}' is still in progress and the job allows {settings.MaxConcurrentCheckpoints} at a time; try again when it ends.";
        }

        return null;
    }

    /// <summary>Why a savepoint request is malformed or asks for what this job cannot give; null when it can be taken.</summary>
    public static string? RefuseRequest(string jobId, SavepointRequest request, State.StateBackendKind? backend)
    {
        // The heap backend has one snapshot format, the portable one: a "native" savepoint of it would be a portable one
        // under another name, so it is refused rather than silently substituted.
        if (request.Format == SavepointFormat.Native && backend == State.StateBackendKind.Heap)
        {
            return $"Job {jobId} runs on the heap state backend, which has no native savepoint format (only RocksDB has one); " +
                "take a portable savepoint (the default: leave out --format or SavepointRequest.Format), which any backend restores at any parallelism.";
        }

        if (request.Drain && !request.Stop)
        {
            return "Drain applies to a stop with savepoint only (SavepointRequest.Stop, or platform stop --drain); a savepoint of a running job cannot drain its sources.";
        }

        if (request.DrainTimeout is not null && !request.Drain)
        {
            return "DrainTimeout applies to a draining stop only (SavepointRequest.Drain); leave it unset otherwise.";
        }

        if (request.DrainTimeout is { } drainTimeout && drainTimeout <= TimeSpan.Zero)
        {
            return $"DrainTimeout is {drainTimeout}; it must be positive.";
        }

        return null;
    }
}
