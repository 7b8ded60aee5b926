using Microsoft.Extensions.Logging;
using Platform.Storage.FileSystem;

namespace Platform.Connectors;

/// <summary>
/// Commits a <see cref="FileSink{T}"/> subtask's pending part files by renaming them to their visible names, and
/// deletes the in-progress files of earlier attempts that no checkpoint kept.
/// </summary>
internal sealed partial class FileSinkCommitter : ISinkCommitter<FileCommittable>
{
    private readonly PartFileNames _names;
    private readonly SinkWriterContext _context;
    private readonly ILogger _logger;

    public FileSinkCommitter(PartFileNames names, SinkWriterContext context, ILogger logger)
    {
        _names = names;
        _context = context;
        _logger = logger;
    }

    public Task CommitAsync(long checkpointId, IReadOnlyList<FileCommittable> committables, CancellationToken cancellationToken)
    {
        var renamedIn = new HashSet<string>(StringComparer.Ordinal);
        foreach (var committable in committables)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Commit(checkpointId, committable))
            {
                renamedIn.Add(Path.GetDirectoryName(committable.FinalPath)!);
            }
        }

        // A rename is only durable once its directory is; until then a crash could bring the hidden name back.
        foreach (var directory in renamedIn)
        {
            DurableFiles.FlushDirectory(directory);
        }

        return Task.CompletedTask;
    }

    public Task AbortLingeringTransactionsAsync(IReadOnlyCollection<FileCommittable> recovered, CancellationToken cancellationToken)
    {
        var kept = recovered.Select(c => c.InProgressPath).ToHashSet(StringComparer.Ordinal);
        foreach (var (path, attempt) in _names.InProgressFiles().ToList())
        {
            // A later attempt's files are not this one's to judge: this may be a stale attempt still running somewhere.
            if (attempt > _context.Attempt || kept.Contains(path))
            {
                continue;
            }

            File.Delete(path);
            LogAborted(_logger, _context.OperatorName, _context.SubtaskIndex, path);
        }

        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>Renames one pending file; true when it renamed, false when an earlier commit had done it.</summary>
    private bool Commit(long checkpointId, FileCommittable committable)
    {
        var target = new FileInfo(committable.FinalPath);
        if (target.Exists)
        {
            EnsureIsCommitted(checkpointId, committable, target);

            // Both names present with the right length: a move (link, then unlink) died between the two.
            File.Delete(committable.InProgressPath);
            LogAlreadyCommitted(_logger, _context.OperatorName, _context.SubtaskIndex, committable.FinalPath, checkpointId);
            return false;
        }

        var source = new FileInfo(committable.InProgressPath);
        if (!source.Exists)
        {
            throw new IOException(
                $"Sink '{_context.OperatorName}' subtask {_context.SubtaskIndex} cannot commit checkpoint {checkpointId}: neither the pending part file " +
                $"'{committable.InProgressPath}' nor its committed name '{committable.FinalPath}' exists. Its {committable.Length} bytes of output are " +
                "lost: was the output directory cleaned, or is it not the same directory on every silo?");
        }

        if (source.Length != committable.Length)
        {
            throw new IOException(
                $"Sink '{_context.OperatorName}' subtask {_context.SubtaskIndex} cannot commit checkpoint {checkpointId}: the pending part file " +
                $"'{committable.InProgressPath}' has {source.Length} bytes, but {committable.Length} were pre-committed; something else wrote to it.");
        }

        try
        {
            // Without overwrite: a committed file is never replaced, whoever wrote it.
            File.Move(committable.InProgressPath, committable.FinalPath, overwrite: false);
        }
        catch (IOException) when (File.Exists(committable.FinalPath))
        {
            EnsureIsCommitted(checkpointId, committable, new FileInfo(committable.FinalPath));
            File.Delete(committable.InProgressPath);
            return false;
        }

        LogCommitted(_logger, _context.OperatorName, _context.SubtaskIndex, committable.FinalPath, committable.Length, checkpointId);
        return true;
    }

    private void EnsureIsCommitted(long checkpointId, FileCommittable committable, FileInfo target)
    {
        if (target.Length != committable.Length)
        {
            throw new IOException(
                $"Sink '{_context.OperatorName}' subtask {_context.SubtaskIndex} cannot commit checkpoint {checkpointId}: '{committable.FinalPath}' already " +
                $"exists with {target.Length} bytes, but the pending file '{committable.InProgressPath}' has {committable.Length}. Committed output is never " +
                "overwritten: give each sink its own directory, and do not reuse a directory of an earlier job.");
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Sink '{Sink}' subtask {Subtask} committed {Path} ({Length} bytes) for checkpoint {CheckpointId}")]
    private static partial void LogCommitted(ILogger logger, string sink, int subtask, string path, long length, long checkpointId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Sink '{Sink}' subtask {Subtask}: {Path} of checkpoint {CheckpointId} was already committed")]
    private static partial void LogAlreadyCommitted(ILogger logger, string sink, int subtask, string path, long checkpointId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Sink '{Sink}' subtask {Subtask} deleted the part file {Path}, which no completed checkpoint holds")]
    private static partial void LogAborted(ILogger logger, string sink, int subtask, string path);
}
