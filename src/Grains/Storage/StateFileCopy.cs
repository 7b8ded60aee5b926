using System.IO.Hashing;
using Platform.Checkpointing;

namespace Platform.Storage;

/// <summary>What every checkpoint storage does with a state file's bytes: copy them while hashing, and check them against their handle.</summary>
internal static class StateFileCopy
{
    /// <summary>Copies <paramref name="source"/> to <paramref name="destination"/> and returns the length and XxHash64 of what passed.</summary>
    public static async Task<(long Length, ulong Checksum)> CopyHashingAsync(Stream source, Stream destination, int bufferSize, CancellationToken cancellationToken)
    {
        var hash = new XxHash64();
        long length = 0;
        var buffer = new byte[bufferSize];
        int read;
        while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
        {
            hash.Append(buffer.AsSpan(0, read));
            length += read;
            await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
        }

        return (length, hash.GetCurrentHashAsUInt64());
    }

    /// <summary>Throws <see cref="CorruptCheckpointException"/> naming <paramref name="path"/> unless the bytes read match the handle.</summary>
    public static void Verify(string path, StateHandle handle, long length, ulong checksum)
    {
        if (length != handle.Size)
        {
            throw new CorruptCheckpointException(path, $"it has {length} bytes but the checkpoint recorded {handle.Size}; it is truncated or was replaced.");
        }

        if (checksum != handle.Checksum)
        {
            throw new CorruptCheckpointException(path, $"its checksum is {checksum:x16} but the checkpoint recorded {handle.Checksum:x16}.");
        }
    }
}
