using Platform.Checkpointing;
using Platform.Graph;
using Platform.Runtime;
using Platform.State;

namespace Platform.Tasks;

/// <summary>Identifies one subtask of one task (a chain of operators) of a job; it is the task grain's key.</summary>
[GenerateSerializer, Immutable, Alias("platform.TaskId")]
public readonly record struct TaskId([property: Id(0)] string JobId, [property: Id(1)] int TaskIndex, [property: Id(2)] int SubtaskIndex)
{
    /// <summary>The task grain's key: <c>{jobId}/{taskIndex}/{subtaskIndex}</c>.</summary>
    public string GrainKey => $"{JobId}/{TaskIndex}/{SubtaskIndex}";

    /// <summary>Parses a task grain's key.</summary>
    public static bool TryParse(string grainKey, out TaskId id)
    {
        var last = grainKey.LastIndexOf('/');
        var middle = last > 0 ? grainKey.LastIndexOf('/', last - 1) : -1;
        if (middle > 0
            && int.TryParse(grainKey.AsSpan(middle + 1, last - middle - 1), out var taskIndex)
            && int.TryParse(grainKey.AsSpan(last + 1), out var subtask))
        {
            id = new TaskId(grainKey[..middle], taskIndex, subtask);
            return true;
        }

        id = default;
        return false;
    }

    /// <inheritdoc />
    public override string ToString() => GrainKey;
}

/// <summary>A control element that travels in-band in a channel, ordered with the records around it.</summary>
[GenerateSerializer, Immutable, Alias("platform.ControlElement")]
public abstract record ControlElement;

/// <summary>The sender will send nothing more on this channel.</summary>
[GenerateSerializer, Immutable, Alias("platform.EndOfInput")]
public sealed record EndOfInput : ControlElement
{
    /// <summary>The shared instance.</summary>
    public static readonly EndOfInput Instance = new();
}

/// <summary>
/// Event time has reached <c>Timestamp</c> on this channel (Flink's <c>Watermark</c>): the sender will send no record
/// with a smaller timestamp that is not late. Not part of any checkpoint: after a restore watermarks start again from
/// <see cref="long.MinValue"/>.
/// </summary>
[GenerateSerializer, Immutable, Alias("platform.Watermark")]
public sealed record Watermark([property: Id(0)] long Timestamp) : ControlElement;

/// <summary>
/// The channel turned idle or active again (Flink's <c>WatermarkStatus</c>): an idle channel holds back no
/// downstream watermark until it is active again.
/// </summary>
[GenerateSerializer, Immutable, Alias("platform.WatermarkStatus")]
public sealed record WatermarkStatus([property: Id(0)] bool Idle) : ControlElement
{
    /// <summary>The channel sends neither records nor watermarks for now.</summary>
    public static readonly WatermarkStatus IdleStatus = new(true);

    /// <summary>The channel sends records and watermarks again.</summary>
    public static readonly WatermarkStatus ActiveStatus = new(false);
}

/// <summary>
/// Checkpoint barrier n (Flink's CheckpointBarrier): everything before it on a channel belongs to checkpoint n,
/// everything after it to the next. <c>BaseCheckpointId</c> is the latest completed checkpoint when n was triggered:
/// an incremental snapshot may reference the files that checkpoint holds instead of uploading them again.
/// </summary>
[GenerateSerializer, Immutable, Alias("platform.CheckpointBarrier")]
public sealed record CheckpointBarrier(
    [property: Id(0)] long CheckpointId,
    [property: Id(1)] DateTimeOffset TriggeredAt,
    [property: Id(2)] CheckpointingMode Mode,
    [property: Id(3)] long? BaseCheckpointId = null,
    [property: Id(4)] SavepointTarget? Savepoint = null) : ControlElement;

/// <summary>
/// Where and how a savepoint is written: its own directory, in the portable or the backend's native format; with
/// <c>Stop</c>, sources stop right after it; with <c>Drain</c> as well, bounded sources first read to the end of their input.
/// </summary>
[GenerateSerializer, Immutable, Alias("platform.SavepointTarget")]
public sealed record SavepointTarget(
    [property: Id(0)] Storage.SnapshotLocation Location,
    [property: Id(1)] SavepointFormat Format,
    [property: Id(2)] bool Stop = false,
    [property: Id(3)] bool Drain = false);

/// <summary>The event the coordinator publishes on a job's control stream to make sources inject a barrier.</summary>
[GenerateSerializer, Immutable, Alias("platform.CheckpointTrigger")]
public sealed record CheckpointTrigger(
    [property: Id(0)] long CheckpointId,
    [property: Id(1)] int Attempt,
    [property: Id(2)] DateTimeOffset TriggeredAt,
    [property: Id(3)] CheckpointingMode Mode,
    [property: Id(4)] long? BaseCheckpointId = null,
    [property: Id(5)] SavepointTarget? Savepoint = null);

/// <summary>How a subtask takes part in checkpoints.</summary>
[GenerateSerializer, Immutable, Alias("platform.TaskCheckpointSettings")]
public sealed record TaskCheckpointSettings(
    [property: Id(0)] CheckpointingMode Mode,
    [property: Id(1)] CheckpointStorageKind Storage,
    [property: Id(2)] string? Directory,
    [property: Id(3)] bool Incremental = false);

/// <summary>The state one operator starts from when a job is restored from a checkpoint.</summary>
[GenerateSerializer, Immutable, Alias("platform.OperatorRestore")]
public sealed record OperatorRestore(
    [property: Id(0)] string OperatorUid,
    [property: Id(1)] long? SourceOffset,
    [property: Id(2)] List<KeyedStateSnapshot> KeyedState,
    [property: Id(3)] List<SinkCommittables>? Committables = null,
    [property: Id(4)] Dictionary<string, string>? SplitPositions = null);

/// <summary>Timings of one subtask's part of a checkpoint.</summary>
[GenerateSerializer, Immutable, Alias("platform.SubtaskCheckpointMetrics")]
public sealed record SubtaskCheckpointMetrics(
    [property: Id(0)] TimeSpan SyncDuration,
    [property: Id(1)] TimeSpan AsyncDuration,
    [property: Id(2)] TimeSpan AlignmentDuration,
    [property: Id(3)] long StateSize,
    [property: Id(4)] long CheckpointedSize)
{
    /// <summary>The metrics recorded for a subtask that finished before the checkpoint and counts with its final snapshot.</summary>
    public static SubtaskCheckpointMetrics Finished { get; } = new(TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, 0, 0);
}

/// <summary>
/// A batch on a channel: serialized records, then optionally one control element. The sequence number orders
/// batches at the receiver (calls between silos can arrive out of order); the attempt fences stale deployments.
/// </summary>
[GenerateSerializer, Immutable, Alias("platform.ChannelBatch")]
public sealed record ChannelBatch
{
    /// <summary>The sender's deployment attempt.</summary>
    [Id(0)] public required int Attempt { get; init; }

    /// <summary>The channel's index in the receiver's input channel table.</summary>
    [Id(1)] public required int Channel { get; init; }

    /// <summary>The batch's position on the channel, from 0.</summary>
    [Id(2)] public required long Sequence { get; init; }

    /// <summary>The records, serialized as an array; null when the batch only carries a control element.</summary>
    [Id(3)] public byte[]? Payload { get; init; }

    /// <summary>How many records <see cref="Payload"/> holds.</summary>
    [Id(4)] public int RecordCount { get; init; }

    /// <summary>A control element that follows the records.</summary>
    [Id(5)] public ControlElement? Control { get; init; }
}

/// <summary>How a receiver answered a batch.</summary>
[GenerateSerializer, Alias("platform.PushStatus")]
public enum PushStatus
{
    /// <summary>Queued (or a duplicate of a batch already received).</summary>
    Accepted,

    /// <summary>The batch belongs to another deployment attempt.</summary>
    StaleAttempt,

    /// <summary>The receiving grain was activated without being deployed (for example after its silo died).</summary>
    NotDeployed,
}

/// <summary>A receiver's answer: the status, and how many batches of the channel it consumed (the sender's credit).</summary>
[GenerateSerializer, Immutable, Alias("platform.PushAck")]
public readonly record struct PushAck([property: Id(0)] PushStatus Status, [property: Id(1)] long Consumed);

/// <summary>One input channel of a subtask, as the receiver sees it.</summary>
[GenerateSerializer, Immutable, Alias("platform.InputChannelSpec")]
public sealed record InputChannelSpec(
    [property: Id(0)] int Gate,
    [property: Id(1)] TaskId Upstream,
    [property: Id(2)] int UpstreamOutputChannel);

/// <summary>One output channel of a subtask, as the sender sees it.</summary>
[GenerateSerializer, Immutable, Alias("platform.OutputChannelSpec")]
public sealed record OutputChannelSpec(
    [property: Id(0)] TaskId Target,
    [property: Id(1)] int ReceiverChannel);

/// <summary>An edge leaving a task's last operator: how records are partitioned and the channels they go to.</summary>
[GenerateSerializer, Immutable, Alias("platform.OutputEdgeSpec")]
public sealed record OutputEdgeSpec
{
    /// <summary>How records are distributed.</summary>
    [Id(0)] public required Partitioning Partitioning { get; init; }

    /// <summary>The key selector of a hash edge.</summary>
    [Id(1)] public FunctionSpec? KeySelector { get; init; }

    /// <summary>The key type of a hash edge.</summary>
    [Id(2)] public string? KeyType { get; init; }

    /// <summary>The channels, indexed by target subtask for hash and rebalance edges; a single one for forward edges.</summary>
    [Id(3)] public required List<OutputChannelSpec> Channels { get; init; }

    /// <summary>The index of the first of <see cref="Channels"/> in the sender's output channel table.</summary>
    [Id(4)] public required int FirstChannelIndex { get; init; }
}

/// <summary>The key selector a keyed task applies to the records of one input.</summary>
[GenerateSerializer, Immutable, Alias("platform.KeyedInputSpec")]
public sealed record KeyedInputSpec([property: Id(0)] FunctionSpec KeySelector, [property: Id(1)] string KeyType);

/// <summary>Everything a task grain needs to run one subtask of one attempt.</summary>
[GenerateSerializer, Immutable, Alias("platform.TaskDeployment")]
public sealed record TaskDeployment
{
    /// <summary>The subtask.</summary>
    [Id(0)] public required TaskId Id { get; init; }

    /// <summary>The deployment attempt; every message carries it.</summary>
    [Id(1)] public required int Attempt { get; init; }

    /// <summary>The task's name (its operators' names).</summary>
    [Id(2)] public required string TaskName { get; init; }

    /// <summary>The task's parallelism.</summary>
    [Id(3)] public required int Parallelism { get; init; }

    /// <summary>The job's max parallelism.</summary>
    [Id(4)] public required int MaxParallelism { get; init; }

    /// <summary>The operators chained in the task, head first.</summary>
    [Id(5)] public required List<JobVertex> Chain { get; init; }

    /// <summary>The input channel table.</summary>
    [Id(6)] public required List<InputChannelSpec> Inputs { get; init; }

    /// <summary>The key selector per input gate, for keyed tasks.</summary>
    [Id(7)] public List<KeyedInputSpec>? KeyedInputs { get; init; }

    /// <summary>The edges leaving the last operator.</summary>
    [Id(8)] public required List<OutputEdgeSpec> Outputs { get; init; }

    /// <summary>The key groups this subtask owns, for keyed tasks.</summary>
    [Id(9)] public KeyGroupRange? KeyGroups { get; init; }

    /// <summary>Records per batch.</summary>
    [Id(10)] public required int BatchSize { get; init; }

    /// <summary>Batches a sender may have sent beyond what the receiver consumed.</summary>
    [Id(11)] public required int ChannelWindow { get; init; }

    /// <summary>How the subtask takes part in checkpoints; <c>null</c> when the job has none.</summary>
    [Id(12)] public TaskCheckpointSettings? Checkpointing { get; init; }

    /// <summary>The state to start from, per operator uid; <c>null</c> for a fresh start.</summary>
    [Id(13)] public List<OperatorRestore>? Restore { get; init; }

    /// <summary>The checkpoint the state comes from.</summary>
    [Id(14)] public long? RestoredFrom { get; init; }

    /// <summary>Where the subtask's keyed state lives.</summary>
    [Id(15)] public StateBackendKind StateBackend { get; init; }

    /// <summary>Where the restored state's files are, when not in the job's own checkpoint storage (a savepoint, another job's checkpoint).</summary>
    [Id(16)] public Storage.SnapshotLocation? RestoreLocation { get; init; }

    /// <summary>The job's policy for poison records; <c>null</c> fails the subtask.</summary>
    [Id(17)] public Connectors.PoisonRecordPolicy? PoisonRecords { get; init; }

    /// <summary>How often a chain's watermark generator emits (the job's auto-watermark interval).</summary>
    [Id(19)] public TimeSpan AutoWatermarkInterval { get; init; } = DefaultAutoWatermarkInterval;

    /// <summary>Whether the job uses event time: its batches then carry a timestamp per record.</summary>
    [Id(20)] public bool EventTime { get; init; }

    /// <summary>Flink's default <c>pipeline.auto-watermark-interval</c>.</summary>
    public static readonly TimeSpan DefaultAutoWatermarkInterval = TimeSpan.FromMilliseconds(200);

    /// <summary>The job's name (for telemetry).</summary>
    [Id(18)] public string? JobName { get; init; }
}

/// <summary>What a task grain reports once deployed.</summary>
[GenerateSerializer, Immutable, Alias("platform.TaskDeployed")]
public sealed record TaskDeployed([property: Id(0)] string Silo);

/// <summary>A subtask's counters: records taken in and emitted, and the milliseconds it waited for credit on its outputs.</summary>
[GenerateSerializer, Immutable, Alias("platform.TaskMetrics")]
public sealed record TaskMetrics([property: Id(0)] long RecordsIn, [property: Id(1)] long RecordsOut, [property: Id(2)] double BackPressuredMilliseconds = 0);

/// <summary>A subtask's answer to the job manager's heartbeat: whether it runs the attempt asked about, and its counters.</summary>
[GenerateSerializer, Immutable, Alias("platform.HeartbeatReply")]
public sealed record HeartbeatReply([property: Id(0)] bool RunsAttempt, [property: Id(1)] TaskMetrics? Metrics);

/// <summary>Runs one subtask: receives batches, runs its operator chain, sends batches downstream.</summary>
[Alias("platform.IStreamTaskGrain")]
public interface IStreamTaskGrain : IGrainWithStringKey
{
    /// <summary>Prepares the subtask for an attempt; the loop starts with <see cref="Start"/>.</summary>
    Task<TaskDeployed> Deploy(TaskDeployment deployment);

    /// <summary>Starts processing (sources start reading).</summary>
    Task Start(int attempt);

    /// <summary>Delivers a batch on an input channel.</summary>
    Task<PushAck> PushBatch(ChannelBatch batch);

    /// <summary>
    /// The job manager's heartbeat: whether this activation runs <paramref name="attempt"/>, with its counters. Not
    /// from an activation nobody deployed (its silo died and the heartbeat re-activated it empty) or one of another attempt.
    /// </summary>
    Task<HeartbeatReply> Heartbeat(int attempt);

    /// <summary>The receiver of output channel <paramref name="outputChannel"/> consumed its first <paramref name="consumed"/> batches.</summary>
    /// <returns>
    /// <see cref="PushStatus.Accepted"/>; or, as for a batch, <see cref="PushStatus.NotDeployed"/> from an activation nobody
    /// deployed (the sender's silo died and the grant re-activated it empty) and <see cref="PushStatus.StaleAttempt"/>
    /// from a sender of another attempt: the receiver will never get the rest of that channel's input.
    /// </returns>
    Task<PushStatus> GrantCredit(int attempt, int outputChannel, long consumed);

    /// <summary>Stops the subtask of <paramref name="attempt"/>.</summary>
    Task Cancel(int attempt);

    /// <summary>The job is over: the grain may deactivate.</summary>
    Task Release(int attempt);

    /// <summary>The subtask's counters.</summary>
    Task<TaskMetrics> GetMetrics();

    /// <summary>Checkpoint <paramref name="checkpointId"/> completed: transactional operators may commit.</summary>
    Task NotifyCheckpointComplete(int attempt, long checkpointId);

    /// <summary>
    /// A checkpoint trigger delivered directly, when its subtask has not answered the copy published on the job's
    /// control stream (a stream delivery lost after a silo failure). Idempotent: a source takes each checkpoint once.
    /// </summary>
    [Orleans.Concurrency.OneWay]
    Task DeliverTrigger(CheckpointTrigger trigger);

    /// <summary>Checkpoint <paramref name="checkpointId"/> was aborted.</summary>
    Task NotifyCheckpointAborted(int attempt, long checkpointId);
}

/// <summary>How subtasks report their part of checkpoints to the job's coordinator.</summary>
[Alias("platform.ICheckpointAcknowledger")]
public interface ICheckpointAcknowledger : IGrainWithStringKey
{
    /// <summary>The subtask wrote its part of checkpoint <paramref name="checkpointId"/>.</summary>
    Task AcknowledgeCheckpoint(int attempt, TaskId task, long checkpointId, SubtaskSnapshot snapshot, SubtaskCheckpointMetrics metrics);

    /// <summary>The subtask cannot take part in checkpoint <paramref name="checkpointId"/>.</summary>
    Task DeclineCheckpoint(int attempt, TaskId task, long checkpointId, string reason);

    /// <summary>
    /// The subtask's input ended with output pre-committed and not committed yet: returns the triggers of the
    /// checkpoints in progress that still wait for it, or triggers one now, so that a completed checkpoint covers that
    /// output. No trigger for another attempt, or while a stop with savepoint (whose completion commits it) is in
    /// progress; a failure when no checkpoint of the attempt can complete any more.
    /// </summary>
    Task<FinalCheckpointAnswer> RequestFinalCheckpoint(int attempt, TaskId task);
}

/// <summary>
/// The coordinator's answer to a subtask waiting for its final checkpoint: the triggers to take part in, or, when no
/// checkpoint of the attempt can complete any more, why (the subtask then fails, so the job restarts from its latest
/// checkpoint instead of waiting forever).
/// </summary>
[GenerateSerializer, Immutable, Alias("platform.FinalCheckpointAnswer")]
public sealed record FinalCheckpointAnswer([property: Id(0)] List<CheckpointTrigger> Triggers, [property: Id(1)] string? Impossible = null)
{
    /// <summary>Nothing to take part in now; ask again later.</summary>
    public static FinalCheckpointAnswer None { get; } = new([]);
}

/// <summary>How tasks report to their job manager.</summary>
[Alias("platform.ITaskEventSink")]
public interface ITaskEventSink : IGrainWithStringKey
{
    /// <summary>
    /// A subtask finished: its input ended and everything was flushed downstream. <paramref name="finalSnapshot"/>
    /// is its state at the end when it holds no state files (a source's final offsets), so that later checkpoints
    /// can include it without the subtask; <c>null</c> otherwise.
    /// </summary>
    /// <param name="lastCheckpoint">The last checkpoint the subtask took part in itself: the final snapshot stands in only for later ones.</param>
    Task TaskFinished(TaskId task, int attempt, TaskMetrics metrics, SubtaskSnapshot? finalSnapshot, long lastCheckpoint);

    /// <summary>A subtask failed.</summary>
    Task TaskFailed(TaskId task, int attempt, FailureInfo failure);

    /// <summary>A subtask restored its state and opened its operators: it is processing now.</summary>
    /// <remarks>One-way: a status update must never hold up a subtask's first record while the job manager is busy.</remarks>
    [Orleans.Concurrency.OneWay]
    Task TaskInitialized(TaskId task, int attempt);
}
