using System.Collections.Concurrent;
using Orleans;
using Platform.Tasks;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// Faults tests inject into the acknowledgements subtasks send their coordinator (test silos run in this process): an
/// acknowledgement of a job's checkpoint can be held back until released, as one queued behind a slow network or a
/// busy silo would be. Only jobs a test armed are affected.
/// </summary>
public static class AckFaults
{
    private static readonly ConcurrentDictionary<(string JobId, long CheckpointId), TaskCompletionSource> Held = new();
    private static readonly ConcurrentDictionary<string, TaskCompletionSource> HeldFromNowOn = new();

    /// <summary>Holds back every acknowledgement of checkpoint <paramref name="checkpointId"/> of the job.</summary>
    public static void Hold(string jobId, long checkpointId) =>
        Held[(jobId, checkpointId)] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Holds back every acknowledgement of the job from now on.</summary>
    public static void HoldAll(string jobId) =>
        HeldFromNowOn[jobId] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    private static readonly ConcurrentDictionary<string, bool> Dropped = new();

    /// <summary>Loses every acknowledgement and decline of the job from now on (they fail as if their silo were gone).</summary>
    public static void DropAll(string jobId) => Dropped[jobId] = true;

    /// <summary>Lets every held acknowledgement of the job go, and stops dropping them.</summary>
    public static void Release(string jobId)
    {
        Dropped.TryRemove(jobId, out _);
        if (HeldFromNowOn.TryRemove(jobId, out var all))
        {
            all.TrySetResult();
        }

        foreach (var key in Held.Keys.Where(k => k.JobId == jobId).ToList())
        {
            if (Held.TryRemove(key, out var gate))
            {
                gate.TrySetResult();
            }
        }
    }

    internal static bool IsDropped(string jobId) => Dropped.ContainsKey(jobId);

    internal static Task? GateFor(string jobId, long checkpointId) =>
        HeldFromNowOn.TryGetValue(jobId, out var all) ? all.Task
        : Held.TryGetValue((jobId, checkpointId), out var one) ? one.Task
        : null;
}

/// <summary>Applies <see cref="AckFaults"/> to outgoing acknowledgements, in the caller's context (never blocking the coordinator).</summary>
public sealed class AckFaultFilter : IOutgoingGrainCallFilter
{
    /// <inheritdoc />
    public async Task Invoke(IOutgoingGrainCallContext context)
    {
        if (context.InterfaceMethod?.Name is nameof(ICheckpointAcknowledger.AcknowledgeCheckpoint) or nameof(ICheckpointAcknowledger.DeclineCheckpoint)
            && context.Request.GetArgument(1) is TaskId dropped
            && AckFaults.IsDropped(dropped.JobId))
        {
            throw new TimeoutException($"Test fault: the {context.InterfaceMethod.Name} call of {dropped} was lost.");
        }

        if (context.InterfaceMethod?.Name == nameof(ICheckpointAcknowledger.AcknowledgeCheckpoint)
            && context.Request.GetArgument(1) is TaskId task
            && context.Request.GetArgument(2) is long checkpointId
            && AckFaults.GateFor(task.JobId, checkpointId) is { } gate)
        {
            await gate.WaitAsync(TimeSpan.FromMinutes(2));
        }

        await context.Invoke();
    }
}
