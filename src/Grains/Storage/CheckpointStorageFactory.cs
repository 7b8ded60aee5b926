using Microsoft.Extensions.Options;
using Platform.Checkpointing;
using Platform.Hosting;
using Platform.Storage.FileSystem;
using Platform.Storage.InMemory;

namespace Platform.Storage;

/// <summary>Creates the checkpoint storage a job's settings ask for, filling in the silo's defaults.</summary>
internal sealed class CheckpointStorageFactory(IOptions<StreamingPlatformOptions> options)
{
    /// <summary>The storage kind and directory that apply to a job.</summary>
    public (CheckpointStorageKind Kind, string? Directory) Resolve(CheckpointingSettings? settings)
    {
        var kind = settings?.Storage ?? options.Value.DefaultCheckpointStorage;
        return kind == CheckpointStorageKind.FileSystem
            ? (kind, Path.GetFullPath(settings?.Directory ?? options.Value.CheckpointDirectory))
            : (kind, null);
    }

    /// <summary>
    /// The storage for a job. For in-memory storage every call returns a new instance: tasks only write inline
    /// state through it, and the coordinator keeps its own instance, which holds the metadata.
    /// </summary>
    public ICheckpointStorage Create(CheckpointStorageKind kind, string? directory) => kind switch
    {
        CheckpointStorageKind.FileSystem => new FileSystemCheckpointStorage(directory ?? options.Value.CheckpointDirectory),
        CheckpointStorageKind.InMemory => new InMemoryCheckpointStorage(options.Value.InMemoryMaxStateSize),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown checkpoint storage."),
    };
}
