using System.Text.Json;
using Microsoft.Extensions.Logging;
using Platform.Connectors;

namespace Platform.Tasks;

/// <summary>
/// Carries out a job's <see cref="PoisonRecordPolicy"/> with <see cref="PoisonRecordAction.Skip"/> in one subtask:
/// a record that a source could not read or an operator threw on is written, with where it came from and the error,
/// as one JSON line to <c>{DeadLetterDirectory}/{jobId}/task-{task}-{subtask}.jsonl</c>, counted
/// (<c>platform.task.records_dead_lettered</c>), and processing goes on.
/// </summary>
internal sealed partial class PoisonRecordHandler : IDisposable
{
    private readonly PoisonRecordPolicy _policy;
    private readonly TaskDeployment _deployment;
    private readonly ILogger _logger;
    private StreamWriter? _writer;

    public PoisonRecordHandler(PoisonRecordPolicy policy, TaskDeployment deployment, ILogger logger)
    {
        _policy = policy;
        _deployment = deployment;
        _logger = logger;
    }

    /// <summary>How many records this subtask skipped.</summary>
    public long Skipped { get; private set; }

    /// <summary>The dead-letter file of a subtask.</summary>
    public static string FileOf(string deadLetterDirectory, TaskId task) =>
        Path.Combine(deadLetterDirectory, task.JobId, $"task-{task.TaskIndex}-{task.SubtaskIndex}.jsonl");

    /// <summary>
    /// Writes the record to the dead-letter output; throws when the subtask skipped as many as the policy allows
    /// (the subtask then fails with the error).
    /// </summary>
    public void Skip(string operatorName, string? record, Exception error, string? split = null, string? offset = null)
    {
        if (_policy.MaxSkippedPerSubtask is { } max && Skipped >= max)
        {
            throw new InvalidOperationException(
                $"Operator '{operatorName}' of subtask {_deployment.Id} met another poison record after skipping {Skipped}, the most PoisonRecords.MaxSkippedPerSubtask allows: {error.Message}",
                error);
        }

        var root = error is Operators.OperatorException { InnerException: { } inner } ? inner : error;
        if (_writer is null)
        {
            var path = FileOf(_policy.DeadLetterDirectory!, _deployment.Id);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
        }

        _writer.WriteLine(JsonSerializer.Serialize(new DeadLetter(
            DateTimeOffset.UtcNow, _deployment.Id.JobId, _deployment.Attempt, _deployment.TaskName, _deployment.Id.SubtaskIndex,
            operatorName, split, offset, root.GetType().FullName, root.Message, record)));
        Skipped++;
        if (Skipped == 1)
        {
            LogFirstSkipped(root, _deployment.Id, operatorName, _policy.DeadLetterDirectory!);
        }
    }

    public void Dispose() => _writer?.Dispose();

    private sealed record DeadLetter(
        DateTimeOffset Time, string JobId, int Attempt, string Task, int Subtask, string Operator, string? Split, string? Offset, string? ErrorType, string Error, string? Record);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Subtask {Task}: operator '{Operator}' met a poison record; it and later ones are skipped into the dead-letter output under '{Directory}'")]
    private partial void LogFirstSkipped(Exception exception, TaskId task, string @operator, string directory);
}
