using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Platform.Storage.FileSystem;

namespace Platform.Connectors;

/// <summary>
/// Writes records exactly once into part files in <see cref="Directory"/> (Flink's <c>FileSink</c> with a row format).
/// Each parallel subtask writes into a hidden in-progress file, <c>.part-{sinkUid}-{subtask}-{attempt}-{seq}.inprogress</c>;
/// at every checkpoint's barrier the file is flushed to disk and closed (pending), and when the checkpoint completes it
/// is renamed to <c>part-{subtask}-{seq}</c>, visible to readers (<see cref="FileSink.ReadCommittedLines"/>). A file
/// also rolls over to a new one inside a checkpoint interval when it reaches <see cref="MaxPartSizeBytes"/> or is
/// older than <see cref="RolloverInterval"/> (Flink's <c>DefaultRollingPolicy</c>).
/// </summary>
/// <remarks>
/// After a failure the job restores its latest checkpoint: that checkpoint's pending files are committed (again), and
/// the in-progress files written after it are deleted, so each record appears in exactly one committed file. A
/// committed file is never truncated, appended to or overwritten. Without checkpointing, a subtask's files are
/// committed when its input ends. Give each sink a directory of its own; on several silos it must be a shared mount.
/// By default a record is written as its <see cref="object.ToString"/> and a newline in UTF-8; set
/// <see cref="Encoder"/> for another format.
/// </remarks>
/// <typeparam name="T">The record type.</typeparam>
[GenerateSerializer, Alias("platform.FileSink`1")]
public sealed class FileSink<T> : ITwoPhaseCommittingSink<T, FileCommittable>, IValidatingFunction, IFileSystemFunction
{
    /// <inheritdoc />
    IEnumerable<string> IFileSystemFunction.FileSystemPaths => [Directory];

    /// <summary>Creates a sink; set <see cref="Directory"/>.</summary>
    public FileSink()
    {
    }

    /// <summary>Creates a sink writing into <paramref name="directory"/>.</summary>
    public FileSink(string directory) => Directory = directory;

    /// <summary>The output directory, as the silo sees it; created when missing.</summary>
    [Id(0)] public string Directory { get; set; } = "";

    /// <summary>Encodes a record into the part file; <c>null</c> for a line of its <see cref="object.ToString"/>.</summary>
    [Id(1)] public IRecordEncoder<T>? Encoder { get; set; }

    /// <summary>A part file rolls over to a new one once it has this many bytes (Flink's default, 128 MiB).</summary>
    [Id(2)] public long MaxPartSizeBytes { get; set; } = 128L * 1024 * 1024;

    /// <summary>A part file rolls over to a new one once it has been open this long (Flink's default, 60 s), checked after each input batch; checkpoints close it sooner.</summary>
    [Id(3)] public TimeSpan RolloverInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <inheritdoc />
    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Directory))
        {
            return ["The file sink has no directory: set FileSink.Directory to where part files go."];
        }

        var problems = new List<string>();
        if (MaxPartSizeBytes <= 0)
        {
            problems.Add($"The file sink's MaxPartSizeBytes is {MaxPartSizeBytes}: set a positive size, in bytes, at which a part file rolls over.");
        }

        if (RolloverInterval <= TimeSpan.Zero)
        {
            problems.Add($"The file sink's RolloverInterval is {RolloverInterval}: set a positive time after which a part file rolls over.");
        }

        try
        {
            var full = Path.GetFullPath(Directory);
            if (File.Exists(full))
            {
                problems.Add($"The output path '{full}' is a file; the file sink needs a directory: point FileSink.Directory at a directory, or remove the file.");
                return problems;
            }

            System.IO.Directory.CreateDirectory(full);
            if (!DurableFiles.IsWritable(full))
            {
                problems.Add($"The output directory '{full}' is not writable by the silo: grant it write access or choose another directory.");
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            problems.Add($"The output directory '{Directory}' cannot be created: {ex.Message}");
        }

        return problems;
    }

    /// <inheritdoc />
    public IPrecommittingSinkWriter<T, FileCommittable> CreatePrecommittingWriter(SinkWriterContext context) =>
        new FileSinkWriter<T>(Names(context), context, Encoder, MaxPartSizeBytes, RolloverInterval);

    /// <inheritdoc />
    public ISinkCommitter<FileCommittable> CreateCommitter(SinkWriterContext context) =>
        new FileSinkCommitter(Names(context), context, (ILogger?)context.Services.GetService<ILoggerFactory>()?.CreateLogger<FileSinkCommitter>() ?? NullLogger.Instance);

    private PartFileNames Names(SinkWriterContext context) => new(Directory, context.OperatorUid, context.SubtaskIndex);
}

/// <summary>Reads what a <see cref="FileSink{T}"/> committed.</summary>
public static class FileSink
{
    /// <summary>
    /// The committed part files in <paramref name="directory"/>, ordered by subtask, then by sequence (the order each
    /// subtask wrote them in).
    /// </summary>
    /// <remarks>
    /// A committed file is named <c>part-{subtask}-{seq}</c>; it appeared by an atomic rename once its checkpoint
    /// completed, is complete, and never changes again. Files in progress or pending (written, but their checkpoint is
    /// not complete yet, or never will be) are hidden: their names begin with a dot and end with <c>.inprogress</c>.
    /// A reader lists the directory and takes only the names of the first form, as this method does.
    /// </remarks>
    public static IReadOnlyList<string> CommittedFiles(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            return [];
        }

        return System.IO.Directory.EnumerateFiles(directory, "part-*")
            .Select(path => (Path: path, Ok: PartFileNames.TryParseFinal(Path.GetFileName(path), out var subtask, out var sequence), Subtask: subtask, Sequence: sequence))
            .Where(f => f.Ok)
            .OrderBy(f => f.Subtask)
            .ThenBy(f => f.Sequence)
            .Select(f => f.Path)
            .ToList();
    }

    /// <summary>
    /// The lines of every committed part file in <paramref name="directory"/> (see <see cref="CommittedFiles"/>): what a
    /// job's file sink has made visible, never a line of a file still in progress.
    /// </summary>
    public static IEnumerable<string> ReadCommittedLines(string directory) => CommittedFiles(directory).SelectMany(File.ReadLines);
}
