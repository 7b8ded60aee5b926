using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Orleans.Streams;
using Platform.Checkpointing;
using Platform.Hosting;
using Platform.Placement;
using Platform.Storage;

namespace Platform.Tasks;

/// <summary>
/// Hosts one subtask. Kept alive while deployed (its loop is not grain activity), placed to spread subtasks over
/// silos, and fenced: a grain activated without a deployment (Orleans re-activates grains by itself after a silo
/// dies) refuses every batch instead of carrying on without state. Source subtasks subscribe to the job's control
/// stream, on which the checkpoint coordinator publishes checkpoint triggers.
/// </summary>
[KeepAlive]
[SubtaskSpreadPlacement]
internal sealed partial class StreamTaskGrain(
    ILogger<StreamTaskGrain> logger,
    ILocalSiloDetails silo,
    CheckpointStorageFactory storageFactory,
    Diagnostics.StreamingMetrics metrics) : Grain, IStreamTaskGrain
{
    private StreamTask? _task;
    private Task? _run;
    private StreamSubscriptionHandle<CheckpointTrigger>? _triggers;

    public async Task<TaskDeployed> Deploy(TaskDeployment deployment)
    {
        if (_task is not null)
        {
            if (deployment.Attempt <= _task.Attempt)
            {
                throw new InvalidOperationException(
                    $"Task {deployment.Id} is already deployed for attempt {_task.Attempt}; attempt {deployment.Attempt} is stale.");
            }

            _task.Cancel();
        }

        var chain = OperatorChain.Build(deployment, ServiceProvider);
        var storage = deployment.Checkpointing is { } checkpointing ? storageFactory.Create(checkpointing.Storage, checkpointing.Directory) : null;
        _task = new StreamTask(deployment, chain, GrainFactory, storage, deployment.RestoreLocation?.Storage(storageFactory), location => location.Storage(storageFactory), new Diagnostics.SubtaskMetrics(metrics, deployment), logger);
        _run = null;
        if (chain.Source is not null && deployment.Checkpointing is not null)
        {
            await SubscribeToTriggersAsync(deployment.Id.JobId);
        }

        LogDeployed(deployment.Id, deployment.Attempt, deployment.TaskName);
        return new TaskDeployed(silo.SiloAddress.ToString());
    }

    public Task Start(int attempt)
    {
        var task = Current(attempt)
            ?? throw new InvalidOperationException($"Task {this.GetPrimaryKeyString()} is not deployed for attempt {attempt}.");
        _run ??= task.RunAsync();
        return Task.CompletedTask;
    }

    public Task<PushAck> PushBatch(ChannelBatch batch)
    {
        if (_task is null)
        {
            // An activation nobody deployed: refuse, and do not linger.
            DeactivateOnIdle();
            return Task.FromResult(new PushAck(PushStatus.NotDeployed, 0));
        }

        if (batch.Attempt != _task.Attempt)
        {
            return Task.FromResult(new PushAck(PushStatus.StaleAttempt, 0));
        }

        return Task.FromResult(_task.OnBatch(batch));
    }

    public Task<HeartbeatReply> Heartbeat(int attempt)
    {
        if (_task is null)
        {
            // An activation nobody deployed: the subtask it stands for is gone; do not linger.
            DeactivateOnIdle();
            return Task.FromResult(new HeartbeatReply(false, null));
        }

        return Task.FromResult(_task.Attempt == attempt ? new HeartbeatReply(true, _task.Metrics) : new HeartbeatReply(false, null));
    }

    public Task<PushStatus> GrantCredit(int attempt, int outputChannel, long consumed)
    {
        if (_task is null)
        {
            // An activation nobody deployed: the subtask that sent the batches is gone; the receiver must learn it.
            DeactivateOnIdle();
            return Task.FromResult(PushStatus.NotDeployed);
        }

        if (_task.Attempt != attempt)
        {
            return Task.FromResult(PushStatus.StaleAttempt);
        }

        _task.OnCredit(outputChannel, consumed);
        return Task.FromResult(PushStatus.Accepted);
    }

    public Task Cancel(int attempt)
    {
        Current(attempt)?.Cancel();
        return Task.CompletedTask;
    }

    public async Task Release(int attempt)
    {
        if (_task is null || _task.Attempt <= attempt)
        {
            _task?.Cancel();
            await UnsubscribeAsync();
            DeactivateOnIdle();
        }
    }

    public Task<TaskMetrics> GetMetrics() => Task.FromResult(_task?.Metrics ?? new TaskMetrics(0, 0));

    public Task NotifyCheckpointComplete(int attempt, long checkpointId)
    {
        Current(attempt)?.OnCheckpointComplete(checkpointId);
        return Task.CompletedTask;
    }

    public Task NotifyCheckpointAborted(int attempt, long checkpointId) => Task.CompletedTask;

    public Task DeliverTrigger(CheckpointTrigger trigger) => OnTriggerAsync(trigger, null);

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _task?.Cancel();
        return Task.CompletedTask;
    }

    private async Task SubscribeToTriggersAsync(string jobId)
    {
        var stream = this.GetStreamProvider(PlatformStreams.ProviderName)
            .GetStream<CheckpointTrigger>(StreamId.Create(PlatformStreams.CheckpointTriggerNamespace, jobId));
        var handles = await stream.GetAllSubscriptionHandles();
        if (handles.Count > 0)
        {
            // A subscription made by an earlier attempt or activation: resume it rather than add another.
            _triggers = await handles[0].ResumeAsync(OnTriggerAsync);
            foreach (var extra in handles.Skip(1))
            {
                await extra.UnsubscribeAsync();
            }
        }
        else
        {
            _triggers ??= await stream.SubscribeAsync(OnTriggerAsync);
        }
    }

    private async Task UnsubscribeAsync()
    {
        if (_triggers is { } handle)
        {
            _triggers = null;
            try
            {
                await handle.UnsubscribeAsync();
            }
            catch (Exception ex)
            {
                LogUnsubscribeFailed(ex, this.GetPrimaryKeyString());
            }
        }
    }

    private Task OnTriggerAsync(CheckpointTrigger trigger, StreamSequenceToken? token)
    {
        _task?.OnTrigger(trigger);
        return Task.CompletedTask;
    }

    private StreamTask? Current(int attempt) => _task is { } task && task.Attempt == attempt ? task : null;

    [LoggerMessage(Level = LogLevel.Debug, Message = "Deployed task {Task} attempt {Attempt} ({TaskName})")]
    private partial void LogDeployed(TaskId task, int attempt, string taskName);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Task grain {Grain} could not unsubscribe from checkpoint triggers")]
    private partial void LogUnsubscribeFailed(Exception exception, string grain);
}
