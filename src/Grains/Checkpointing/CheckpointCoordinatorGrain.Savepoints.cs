using Microsoft.Extensions.Logging;
using Platform.Storage;
using Platform.Tasks;

namespace Platform.Checkpointing;

/// <summary>Savepoints: requests, stops with savepoint and their outcome, a stop found after the coordinator was lost.</summary>
internal sealed partial class CheckpointCoordinatorGrain
{
    /// <summary>How long a draining stop may take when its request does not say (reading the rest of a bounded input).</summary>
    private static readonly TimeSpan DefaultDrainTimeout = TimeSpan.FromMinutes(30);

    // The acknowledgements that reached the lost activation are gone and subtasks never send them again, so a stop that
    // had not committed cannot complete: it fails now (the job fails over to its latest retained checkpoint). One whose
    // metadata was committed before the activation was lost is complete, whatever the persisted state says.
    private async Task RecoverLostStopAsync(PendingStop lost)
    {
        var pending = new PendingCheckpoint(lost.CheckpointId, lost.TriggeredAt, manual: true, S.Start?.Subtasks ?? [])
        {
            Type = new SnapshotType(lost.Target),
            Timeout = lost.Deadline - lost.TriggeredAt,
            Attempt = lost.Attempt,
        };
        if (await _cleaner.IsCommittedAsync(lost.Target))
        {
            var metadata = await lost.Target.Location.ReadMetadataAsync(storageFactory);
            S.PendingStop = null;
            _stats.ReportCompleted(pending, metadata.StateSize());
            LogLostStopCommitted(JobId, lost.CheckpointId, lost.Target.Location.Directory);
            await state.WriteStateAsync();
            return;
        }

        _pending[pending.Id] = pending;
        LogLostStop(JobId, lost.CheckpointId);
        await AbortAsync(
            pending,
            CheckpointFailureReason.CoordinatorLost,
            $"the checkpoint coordinator was lost while stop with savepoint {lost.CheckpointId} was in progress, and the acknowledgements it had received with it");
    }

    public Task<StopOutcome> GetStopOutcome(int attempt)
    {
        if (S.FailedStop is { } failed && failed.Attempt == attempt)
        {
            return Task.FromResult(new StopOutcome(StopStatus.Failed, failed.Reason));
        }

        var pending = _pending.Values.Any(p => p.Type.IsStop && p.Attempt == attempt) || S.PendingStop?.Attempt == attempt;
        return Task.FromResult(pending ? StopOutcome.Pending : StopOutcome.None);
    }

    public async Task<long> TriggerSavepoint(SavepointRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.RequestId is { } requestId && _stats.FindRequest(requestId) is { } existing)
        {
            return existing;
        }

        if (CheckpointRequestDecider.RefuseManual(JobId, Settings, S.Triggering && S.Start is not null, _pending.Values, savepoint: true) is { } refusal)
        {
            throw new InvalidOperationException(refusal);
        }

        if (CheckpointRequestDecider.RefuseRequest(JobId, request, S.Start?.StateBackend) is { } malformed)
        {
            // Without a parameter name: the message is shown to people as it is (platform savepoint prints it).
            throw new ArgumentException(malformed);
        }

        var location = savepointLocations.NewSavepoint(JobId, request.TargetDirectory);
        var timeout = request.Drain ? request.DrainTimeout ?? DefaultDrainTimeout : Settings.Timeout;
        var type = new SnapshotType(new SavepointTarget(location, request.Format, request.Stop, request.Drain));
        return await TriggerAsync(manual: true, type, request.RequestId, timeout);
    }

    // A savepoint is self-contained: the final snapshots of finished subtasks live in the job's checkpoint storage, so
    // their files are copied into the savepoint's directory.
    private async Task<List<SubtaskSnapshot>> FinalSnapshotsIntoSavepointAsync(PendingCheckpoint pending, SavepointTarget savepoint)
    {
        var snapshots = new List<SubtaskSnapshot>(pending.Snapshots.Count);
        foreach (var snapshot in pending.Snapshots)
        {
            if (!pending.FinishedSubtasks.Contains(new TaskId(JobId, snapshot.TaskIndex, snapshot.SubtaskIndex)) || !snapshot.Operators.Any(o => o.KeyedState?.Handle is not null))
            {
                snapshots.Add(snapshot);
                continue;
            }

            var target = savepoint.Location.Storage(storageFactory);
            var operators = new List<OperatorSnapshot>();
            foreach (var op in snapshot.Operators)
            {
                if (op.KeyedState is { Handle: { } handle } keyed)
                {
                    var copy = await CopyStateFileAsync(handle, target, savepoint.Location.JobId, pending.Id);
                    operators.Add(op with { KeyedState = keyed with { Handle = copy } });
                }
                else
                {
                    operators.Add(op);
                }
            }

            snapshots.Add(snapshot with { Operators = operators });
        }

        return snapshots;
    }

    // Streams the file through a bounded pipe (a final snapshot holds a subtask's whole keyed state, never wanted whole
    // in memory); the storage verifies its checksum on the way out and the copy gets its own.
    private async Task<StateHandle> CopyStateFileAsync(StateHandle handle, ICheckpointStorage target, string targetJobId, long checkpointId)
    {
        var pipe = new System.IO.Pipelines.Pipe(new System.IO.Pipelines.PipeOptions(pauseWriterThreshold: 4 << 20, resumeWriterThreshold: 2 << 20));
        var reading = ReadIntoAsync(pipe.Writer);
        StateHandle copy;
        try
        {
            await using var content = pipe.Reader.AsStream();
            copy = await target.WriteStateAsync(targetJobId, checkpointId, Path.GetFileName(handle.Path), content);
        }
        catch
        {
            await pipe.Reader.CompleteAsync(); // stops the reading side at its next write
            await reading.ContinueWith(_ => { }, TaskScheduler.Current);
            throw;
        }

        await reading;
        return copy;

        async Task ReadIntoAsync(System.IO.Pipelines.PipeWriter writer)
        {
            try
            {
                await Storage!.ReadStateAsync(JobId, handle, writer.AsStream(leaveOpen: true));
                await writer.CompleteAsync();
            }
            catch (Exception ex)
            {
                await writer.CompleteAsync(ex); // the write fails with it, and deletes what it wrote
                throw;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId}: completed savepoint {CheckpointId} at {Path} ({Size} bytes)")]
    private partial void LogSavepointCompleted(string jobId, long checkpointId, string path, long size);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: the checkpoint coordinator was re-activated while stop with savepoint {CheckpointId} was in progress; failing it")]
    private partial void LogLostStop(string jobId, long checkpointId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: the checkpoint coordinator was re-activated after stop with savepoint {CheckpointId} committed its metadata at {Path}; it is complete")]
    private partial void LogLostStopCommitted(string jobId, long checkpointId, string path);
}
