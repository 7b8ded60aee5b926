using Microsoft.Extensions.Options;
using Platform.Checkpointing;
using Platform.Hosting;
using Platform.Storage.FileSystem;

namespace Platform.Storage;

/// <summary>Where a savepoint or a restored snapshot lives: the storage that reads its files, and its metadata.</summary>
/// <param name="Root">The storage root; state handles are relative to <c>{Root}/{JobId}</c>.</param>
/// <param name="JobId">The directory under the root that handles are relative to.</param>
/// <param name="Directory">The savepoint's (or checkpoint's) own directory, holding <c>_metadata</c>.</param>
[GenerateSerializer, Immutable, Alias("platform.SnapshotLocation")]
public sealed record SnapshotLocation([property: Id(0)] string Root, [property: Id(1)] string JobId, [property: Id(2)] string Directory)
{
    internal FileSystemCheckpointStorage Storage() => new(Root);

    internal string MetadataPath => Path.Combine(Directory, MetadataFormat.FileName);
}

/// <summary>
/// Resolves and checks savepoint paths against the silo's roots: savepoints are written under
/// <see cref="StreamingPlatformOptions.SavepointDirectory"/>, and a job resumes from a savepoint there or a retained
/// checkpoint under a checkpoint directory. Errors say what is wrong and what to do.
/// </summary>
internal sealed class SavepointLocations(IOptions<StreamingPlatformOptions> options)
{
    private string SavepointRoot => Path.GetFullPath(options.Value.SavepointDirectory);

    /// <summary>A new savepoint directory for a job, under <paramref name="target"/> or the savepoint root.</summary>
    public SnapshotLocation NewSavepoint(string jobId, string? target)
    {
        var parent = Path.GetFullPath(string.IsNullOrWhiteSpace(target) ? SavepointRoot : target);
        if (!IsUnder(parent, SavepointRoot, allowEqual: true))
        {
            throw new ArgumentException(
                $"The savepoint target '{target}' is outside the silos' savepoint root '{SavepointRoot}' (Platform:SavepointDirectory); choose a directory under it.");
        }

        var name = $"savepoint-{Shorten(jobId)}-{Guid.NewGuid().ToString("N")[..8]}";
        return new SnapshotLocation(parent, name, Path.Combine(parent, name));
    }

    /// <summary>The location of a savepoint or retained checkpoint to restore from.</summary>
    /// <exception cref="ArgumentException">The path is outside the allowed roots or holds no snapshot.</exception>
    public SnapshotLocation ForRestore(string path, CheckpointingSettings? job)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new ArgumentException("The restore path is empty; give a savepoint directory or a retained checkpoint's chk-{n} directory.");
        }

        var full = Path.GetFullPath(path.TrimEnd('/', '\\'));
        var roots = new[] { SavepointRoot, Path.GetFullPath(options.Value.CheckpointDirectory), job?.Directory is { } own ? Path.GetFullPath(own) : null }
            .OfType<string>().Distinct().ToList();
        if (!roots.Any(root => IsUnder(full, root, allowEqual: false)))
        {
            throw new ArgumentException(
                $"The restore path '{path}' is outside the silos' savepoint and checkpoint roots ({string.Join(", ", roots)}); " +
                "restore from a savepoint or a retained checkpoint under one of them.");
        }

        if (!Directory.Exists(full) || !File.Exists(Path.Combine(full, MetadataFormat.FileName)))
        {
            throw new ArgumentException(
                $"The restore path '{path}' holds no savepoint or checkpoint (no {MetadataFormat.FileName} file in '{full}'); check the path, or whether the savepoint was disposed.");
        }

        // A retained checkpoint's handles are relative to its job's directory ({root}/{jobId}/chk-{n}/...); a
        // savepoint's are relative to the savepoint's own directory.
        var parent = Path.GetDirectoryName(full)!;
        return MetadataFormat.TryParseCheckpointDirectory(Path.GetFileName(full), out _)
            ? new SnapshotLocation(Path.GetDirectoryName(parent)!, Path.GetFileName(parent), full)
            : new SnapshotLocation(parent, Path.GetFileName(full), full);
    }

    /// <summary>Deletes a savepoint directory under the savepoint root.</summary>
    public void Dispose(string path)
    {
        var full = Path.GetFullPath(path.TrimEnd('/', '\\'));
        if (!IsUnder(full, SavepointRoot, allowEqual: false))
        {
            throw new ArgumentException($"'{path}' is outside the silos' savepoint root '{SavepointRoot}'; only savepoints under it can be disposed.");
        }

        if (!File.Exists(Path.Combine(full, MetadataFormat.FileName)))
        {
            throw new ArgumentException($"'{path}' is not a savepoint (it has no {MetadataFormat.FileName}); nothing was deleted.");
        }

        // The commit record first, so that a deletion cut short leaves nothing that looks like a savepoint.
        File.Delete(Path.Combine(full, MetadataFormat.FileName));
        Directory.Delete(full, recursive: true);
    }

    private static bool IsUnder(string path, string root, bool allowEqual) =>
        (allowEqual && string.Equals(path, root, StringComparison.Ordinal))
        || path.StartsWith(root.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private static string Shorten(string jobId) =>
        new([.. jobId.Where(char.IsLetterOrDigit).TakeLast(12)]);
}
