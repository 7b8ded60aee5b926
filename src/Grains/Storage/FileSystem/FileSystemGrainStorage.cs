using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Storage;

namespace Platform.Storage.FileSystem;

/// <summary>
/// Grain state in files (one per grain and state name) on a directory every silo sees, serialized with Orleans'
/// version-tolerant serializer and replaced atomically (temporary file, then rename). It makes the job managers',
/// checkpoint coordinators' and stream subscriptions' state survive the loss of a silo and a restart of the whole
/// cluster, with no external service.
/// </summary>
internal sealed partial class FileSystemGrainStorage(string name, string root, Serializer serializer, ILogger<FileSystemGrainStorage> logger) : IGrainStorage
{
    private readonly string _root = Path.GetFullPath(root);

    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var path = PathOf(stateName, grainId);
        byte[] content;
        try
        {
            content = await File.ReadAllBytesAsync(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            grainState.State = Activator.CreateInstance<T>();
            grainState.RecordExists = false;
            grainState.ETag = null;
            return;
        }

        if (content.Length < 8)
        {
            throw new InvalidOperationException($"Grain state file '{path}' of storage '{name}' is truncated ({content.Length} bytes).");
        }

        var version = BinaryPrimitives.ReadInt64LittleEndian(content);
        try
        {
            grainState.State = serializer.Deserialize<T>(content.AsMemory(8)) ?? Activator.CreateInstance<T>();
        }
        catch (Exception ex)
        {
            throw new InvalidOperationException($"Grain state file '{path}' of storage '{name}' cannot be read: {ex.Message}", ex);
        }

        grainState.RecordExists = true;
        grainState.ETag = version.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var path = PathOf(stateName, grainId);
        DurableFiles.CreateDirectory(Path.GetDirectoryName(path)!);

        // The version check and the replace must be one step even if two activations (in two silo processes) write
        // at once: hold an exclusive lock file meanwhile (.NET takes an flock for FileShare.None on Unix).
        await using var _ = await LockAsync(path + ".lock");
        var current = ReadVersion(path);
        var expected = grainState.ETag is null ? (long?)null : long.Parse(grainState.ETag, System.Globalization.CultureInfo.InvariantCulture);
        if (current != expected)
        {
            throw new InconsistentStateException(
                $"Grain state '{stateName}' of {grainId} in storage '{name}' changed underneath this activation (stored version {current?.ToString() ?? "none"}, expected {expected?.ToString() ?? "none"}).",
                current?.ToString() ?? "none",
                grainState.ETag ?? "none");
        }

        var next = (current ?? 0) + 1;
        var payload = serializer.SerializeToArray(grainState.State);
        var content = new byte[8 + payload.Length];
        BinaryPrimitives.WriteInt64LittleEndian(content, next);
        payload.CopyTo(content, 8);

        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        await using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous))
        {
            await stream.WriteAsync(content);
            stream.Flush(flushToDisk: true);
        }

        // Durable once the directory holding the new name is flushed, not before.
        DurableFiles.Replace(temporary, path, overwrite: true);
        grainState.ETag = next.ToString(System.Globalization.CultureInfo.InvariantCulture);
        grainState.RecordExists = true;
        LogWritten(name, stateName, grainId, next);
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var path = PathOf(stateName, grainId);
        File.Delete(path);
        if (Directory.Exists(Path.GetDirectoryName(path)))
        {
            // A cleared record must not come back after a crash.
            DurableFiles.FlushDirectory(Path.GetDirectoryName(path)!);
        }

        grainState.ETag = null;
        grainState.RecordExists = false;
        grainState.State = Activator.CreateInstance<T>();
        return Task.CompletedTask;
    }

    private static async Task<FileStream> LockAsync(string lockPath)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }
        }
    }

    private string PathOf(string stateName, GrainId grainId) =>
        Path.Combine(_root, Escape(stateName), Escape(grainId.Type.ToString()!), Escape(grainId.Key.ToString()!) + ".state");

    private static string Escape(string value) => Uri.EscapeDataString(value);

    private static long? ReadVersion(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            Span<byte> buffer = stackalloc byte[8];
            stream.ReadExactly(buffer);
            return BinaryPrimitives.ReadInt64LittleEndian(buffer);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Trace, Message = "Storage {Storage} wrote {StateName} of {GrainId}, version {Version}")]
    private partial void LogWritten(string storage, string stateName, GrainId grainId, long version);
}
