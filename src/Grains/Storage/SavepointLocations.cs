using Microsoft.Extensions.Options;
using Platform.Checkpointing;
using Platform.Hosting;

namespace Platform.Storage;

/// <summary>Where a savepoint or a restored snapshot lives: the storage that reads its files, and its metadata.</summary>
/// <param name="Root">The storage root; state handles are relative to <c>{Root}/{JobId}</c>. For blob storage, a URL.</param>
/// <param name="JobId">The directory under the root that handles are relative to.</param>
/// <param name="Directory">The savepoint's (or checkpoint's) own directory, holding <c>_metadata</c>; in blob storage, its URL.</param>
/// <param name="Kind">
/// The storage: <see cref="CheckpointStorageKind.FileSystem"/>, or <see cref="CheckpointStorageKind.AzureBlob"/> for a
/// savepoint or retained checkpoint in the silos' blob container (or one they may restore from), read and written with
/// the silos' own client. The kind's <see cref="ISnapshotLocations"/> reads and writes it.
/// </param>
[GenerateSerializer, Immutable, Alias("platform.SnapshotLocation")]
public sealed record SnapshotLocation(
    [property: Id(0)] string Root,
    [property: Id(1)] string JobId,
    [property: Id(2)] string Directory,
    [property: Id(3)] CheckpointStorageKind Kind = CheckpointStorageKind.FileSystem)
{
    /// <summary>The storage that reads and writes the snapshot's files.</summary>
    internal ICheckpointStorage Storage(CheckpointStorageFactory factory) => factory.Locations(Kind).StorageAt(this);

    /// <summary>Reads and verifies the snapshot's <c>_metadata</c>.</summary>
    /// <exception cref="CorruptCheckpointException">It is truncated or altered (or, on the file system, missing).</exception>
    /// <exception cref="ArgumentException">A blob snapshot has no <c>_metadata</c>: there is none at that URL.</exception>
    internal Task<CheckpointMetadata> ReadMetadataAsync(CheckpointStorageFactory factory) => factory.Locations(Kind).ReadMetadataAsync(this);

    /// <summary>Commits a savepoint by writing its <c>_metadata</c>, after every state file.</summary>
    internal Task WriteMetadataAsync(CheckpointStorageFactory factory, CheckpointMetadata metadata) => factory.Locations(Kind).WriteMetadataAsync(this, metadata);

    /// <summary>Deletes the snapshot's directory (its <c>_metadata</c> first, so that what is left never looks committed).</summary>
    internal Task DeleteAsync(CheckpointStorageFactory factory) => factory.Locations(Kind).DeleteAsync(this);

    internal string MetadataPath => Path.Combine(Directory, MetadataFormat.FileName);
}

/// <summary>
/// Resolves and checks savepoint paths against the silo's roots, by asking the storage kind the path belongs to
/// (<see cref="ISnapshotLocations"/>: a directory is the file system's, an http(s) URL blob storage's): savepoints are
/// written and disposed under <see cref="StreamingPlatformOptions.SavepointDirectory"/> or, as blob URLs, under
/// <c>{container URL}/{SavepointPrefix}</c>; a job resumes from a savepoint there or a retained checkpoint under a
/// checkpoint directory, or from any snapshot in the silos' blob container and the containers they may restore from.
/// Errors say what is wrong and what to do.
/// </summary>
internal sealed class SavepointLocations(IOptions<StreamingPlatformOptions> options, CheckpointStorageFactory storageFactory)
{
    /// <summary>
    /// A new savepoint directory for a job, under <paramref name="target"/> (a directory, or a URL in the silos' blob
    /// container) or, without one, under the root of <see cref="StreamingPlatformOptions.SavepointStorage"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The target is outside the savepoint root, or names blob storage the silos do not have.</exception>
    public SnapshotLocation NewSavepoint(string jobId, string? target)
    {
        var name = $"savepoint-{Shorten(jobId)}-{Guid.NewGuid().ToString("N")[..8]}";
        var locations = string.IsNullOrWhiteSpace(target) ? storageFactory.Locations(options.Value.SavepointStorage) : Claiming(target);
        return locations.NewSavepoint(name, target);
    }

    /// <summary>The location of a savepoint or retained checkpoint to restore from.</summary>
    /// <exception cref="ArgumentException">The path is outside the allowed roots or holds no snapshot.</exception>
    public SnapshotLocation ForRestore(string path, CheckpointingSettings? job)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new ArgumentException("The restore path is empty; give a savepoint directory or a retained checkpoint's chk-{n} directory.");
        }

        return Claiming(path).ForRestore(path, job);
    }

    /// <summary>Deletes a savepoint under the savepoint root (a directory, or a URL under the blob savepoint root), <c>_metadata</c> first.</summary>
    /// <exception cref="ArgumentException">The path is outside the savepoint root or holds no savepoint; nothing was deleted.</exception>
    public async Task DisposeAsync(string path)
    {
        var locations = Claiming(path);
        await locations.DeleteAsync(await locations.ForDisposalAsync(path));
    }

    /// <summary>Whether a path is an http(s) URL (blob storage) rather than a directory.</summary>
    internal static bool IsUrl(string? path) =>
        Uri.TryCreate(path, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp);

    private ISnapshotLocations Claiming(string path) =>
        storageFactory.AllLocations().FirstOrDefault(l => l.Claims(path))
        ?? throw new ArgumentException($"'{path}' is neither a directory nor a URL of a storage these silos know.");

    private static string Shorten(string jobId) =>
        new([.. jobId.Where(char.IsLetterOrDigit).TakeLast(12)]);
}
