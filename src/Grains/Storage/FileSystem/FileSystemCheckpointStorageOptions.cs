using Orleans;
using Orleans.Runtime;
using Platform.Checkpointing;

namespace Platform.Storage.FileSystem;

/// <summary>Settings of a file-system checkpoint storage (Flink's FileSystemCheckpointStorage).</summary>
public sealed class FileSystemCheckpointStorageOptions
{
    /// <summary>
    /// The root of the checkpoints (jobs may set their own directory). Every silo must see the same directory: local
    /// disk on one machine, a shared mount across machines. It is created on the first checkpoint, not at startup.
    /// For the storage named <c>FileSystem</c> this is <c>Platform:CheckpointDirectory</c> (default <c>data/checkpoints</c>).
    /// </summary>
    public string Directory { get; set; } = Path.Combine("data", "checkpoints");
}

/// <summary>Checks a directory setting without creating anything: the validators of the silo only read.</summary>
internal static class DirectorySetting
{
    /// <summary>What is wrong with <paramref name="path"/> as a directory the silo will create and write, or <c>null</c>.</summary>
    public static string? Problem(string key, string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            return $"{key} is empty; set it to a directory every silo can write.";
        }

        string full;
        try
        {
            full = Path.GetFullPath(path);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return $"{key} is '{path}', which is not a valid path: {ex.Message}";
        }

        // The nearest part of the path that exists decides: a file there blocks the directory, and a directory there
        // must let this process create entries (what is missing below it is created on first use).
        for (var current = full; current is not null; current = Path.GetDirectoryName(current))
        {
            if (File.Exists(current))
            {
                return $"{key} is '{path}', but '{current}' is a file, so the directory cannot be created; choose another path.";
            }

            if (System.IO.Directory.Exists(current))
            {
                return DurableFiles.IsWritable(current)
                    ? null
                    : $"{key} is '{path}', but this process may not write '{current}'; grant write access or choose another path.";
            }
        }

        return null;
    }
}

/// <summary>Rejects bad <see cref="FileSystemCheckpointStorageOptions"/> of a named storage at startup, every problem at once.</summary>
internal sealed class FileSystemCheckpointStorageOptionsValidator(FileSystemCheckpointStorageOptions options, string name) : IConfigurationValidator
{
    /// <inheritdoc />
    public void ValidateConfiguration()
    {
        if (DirectorySetting.Problem($"Checkpoint storage '{name}': {nameof(options.Directory)}", options.Directory) is { } problem)
        {
            throw new OrleansConfigurationException(problem);
        }
    }
}

/// <summary>A named file-system checkpoint storage.</summary>
internal sealed class FileSystemCheckpointStorageProvider(string directory) : ICheckpointStorageProvider
{
    /// <inheritdoc />
    public CheckpointStorageKind Kind => CheckpointStorageKind.FileSystem;

    /// <inheritdoc />
    public string? Unavailable => null;

    /// <inheritdoc />
    public string? ResolveDirectory(string? jobDirectory) => Path.GetFullPath(jobDirectory ?? directory);

    /// <inheritdoc />
    public ICheckpointStorage Create(string? directory) => new FileSystemCheckpointStorage(ResolveDirectory(directory)!);
}
