using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Platform.Checkpointing;
using Platform.Hosting;

namespace Platform.Storage;

/// <summary>
/// Creates the checkpoint storage a job's settings ask for, filling in the silo's defaults: the provider registered
/// under the name of the job's storage kind (<see cref="ICheckpointStorageProvider"/>), or of the silo's default kind.
/// </summary>
internal sealed class CheckpointStorageFactory(IOptions<StreamingPlatformOptions> options, IServiceProvider services)
{
    /// <summary>The storage kind and directory that apply to a job.</summary>
    public (CheckpointStorageKind Kind, string? Directory) Resolve(CheckpointingSettings? settings)
    {
        var kind = settings?.Storage ?? options.Value.DefaultCheckpointStorage;
        return (kind, Provider(kind)?.ResolveDirectory(settings?.Directory));
    }

    /// <summary>Why a job cannot use <paramref name="kind"/> on these silos, or <c>null</c> when it can.</summary>
    public string? Unavailable(CheckpointStorageKind kind) =>
        Provider(kind) is { } provider
            ? provider.Unavailable
            : $"The job's checkpoint storage is {kind}, but no checkpoint storage named '{kind}' is registered on the silos; register one (for example Add{kind}CheckpointStorage) or choose another storage.";

    /// <summary>
    /// The storage for a job. For in-memory storage every call returns a new instance: tasks only write inline
    /// state through it, and the coordinator keeps its own instance, which holds the metadata.
    /// </summary>
    /// <exception cref="InvalidOperationException">No storage is registered for <paramref name="kind"/>.</exception>
    public ICheckpointStorage Create(CheckpointStorageKind kind, string? directory) =>
        (Provider(kind) ?? throw new InvalidOperationException(Unavailable(kind))).Create(directory);

    /// <summary>The locations of savepoints and restorable snapshots of <paramref name="kind"/>.</summary>
    /// <exception cref="ArgumentException">That kind cannot hold savepoints or snapshots to restore from (in-memory storage).</exception>
    public ISnapshotLocations Locations(CheckpointStorageKind kind) =>
        AllLocations().FirstOrDefault(l => l.Kind == kind)
        ?? throw new ArgumentException($"{kind} checkpoint storage cannot hold savepoints or snapshots to restore from; use FileSystem or AzureBlob.");

    /// <summary>The locations of every storage kind that holds savepoints.</summary>
    public IEnumerable<ISnapshotLocations> AllLocations() => services.GetServices<ISnapshotLocations>();

    // Resolved on each call rather than injected: the snapshot locations depend on this factory.
    private ICheckpointStorageProvider? Provider(CheckpointStorageKind kind) => services.GetKeyedService<ICheckpointStorageProvider>(kind.ToString());
}
