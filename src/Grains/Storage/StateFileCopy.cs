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
        // Pooled: a new large buffer per file is a large-object allocation each time, which fragments a heap with a
        // hard limit (the larger-than-memory test's silo ran out of memory allocating one).
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(bufferSize);
        try
        {
            int read;
            while ((read = await source.ReadAsync(buffer.AsMemory(0, bufferSize), cancellationToken)) > 0)
            {
                hash.Append(buffer.AsSpan(0, read));
                length += read;
                await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
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
