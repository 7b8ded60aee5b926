using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Platform.Placement;

namespace Platform.Tasks;

/// <summary>
/// Hosts one subtask. Kept alive while deployed (its loop is not grain activity), placed to spread subtasks over
/// silos, and fenced: a grain activated without a deployment (Orleans re-activates grains by itself after a silo
/// dies) refuses every batch instead of carrying on without state.
/// </summary>
[KeepAlive]
[SubtaskSpreadPlacement]
internal sealed partial class StreamTaskGrain(
    ILogger<StreamTaskGrain> logger,
    ILocalSiloDetails silo) : Grain, IStreamTaskGrain
{
    private StreamTask? _task;
    private Task? _run;

    public Task<TaskDeployed> Deploy(TaskDeployment deployment)
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
        _task = new StreamTask(deployment, chain, GrainFactory, logger);
        _run = null;
        LogDeployed(deployment.Id, deployment.Attempt, deployment.TaskName);
        return Task.FromResult(new TaskDeployed(silo.SiloAddress.ToString()));
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

    public Task GrantCredit(int attempt, int outputChannel, long consumed)
    {
        if (_task is null)
        {
            DeactivateOnIdle();
        }
        else if (_task.Attempt == attempt)
        {
            _task.OnCredit(outputChannel, consumed);
        }

        return Task.CompletedTask;
    }

    public Task Cancel(int attempt)
    {
        Current(attempt)?.Cancel();
        return Task.CompletedTask;
    }

    public Task Release(int attempt)
    {
        if (_task is null || _task.Attempt <= attempt)
        {
            _task?.Cancel();
            DeactivateOnIdle();
        }

        return Task.CompletedTask;
    }

    public Task<TaskMetrics> GetMetrics() => Task.FromResult(_task?.Metrics ?? new TaskMetrics(0, 0));

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _task?.Cancel();
        return Task.CompletedTask;
    }

    private StreamTask? Current(int attempt) => _task is { } task && task.Attempt == attempt ? task : null;

    [LoggerMessage(Level = LogLevel.Debug, Message = "Deployed task {Task} attempt {Attempt} ({TaskName})")]
    private partial void LogDeployed(TaskId task, int attempt, string taskName);
}
