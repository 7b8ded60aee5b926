using System.Runtime.InteropServices;

namespace Platform.Storage.FileSystem;

/// <summary>
/// Makes renames and new directories survive a power loss. Flushing a file's bytes (<c>Flush(flushToDisk: true)</c>)
/// does not make its name durable: on Linux the new directory entry a rename creates lives in the directory, which
/// must be fsynced as well, or after a crash the rename, and so the commit it stands for, may be gone.
/// </summary>
/// <remarks>
/// On Windows (NTFS journals its metadata, and .NET cannot open a directory for flushing there) directories are not
/// flushed. A file system that cannot fsync a directory (<c>EINVAL</c>, <c>EBADF</c>, as some network mounts answer)
/// is taken to make renames durable by itself, as PostgreSQL does. It lives in the client assembly because the file
/// sink (<see cref="Platform.Connectors.FileSink{T}"/>) commits by renaming too; the checkpoint storage uses it from there.
/// </remarks>
internal static class DurableFiles
{
    private const int ReadOnly = 0;
    private const int InvalidArgument = 22;
    private const int BadFileDescriptor = 9;
    private const int Writable = 2;

    /// <summary>Raised after a directory was flushed, with its full path: lets tests see what a commit made durable.</summary>
    internal static event Action<string>? DirectoryFlushed;

    /// <summary>Renames <paramref name="temporary"/> (already flushed to disk) to <paramref name="path"/>, then flushes the directory that holds it.</summary>
    /// <exception cref="IOException">Without <paramref name="overwrite"/>: <paramref name="path"/> exists (nothing was renamed).</exception>
    public static void Replace(string temporary, string path, bool overwrite)
    {
        File.Move(temporary, path, overwrite);
        FlushDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Creates a directory and its missing parents, and flushes the parent of each one created, so that none of them disappears in a crash.</summary>
    public static void CreateDirectory(string path)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            return;
        }

        var missing = new Stack<string>();
        for (var current = full; current is not null && !Directory.Exists(current); current = Path.GetDirectoryName(current))
        {
            missing.Push(current);
        }

        Directory.CreateDirectory(full);
        while (missing.TryPop(out var created))
        {
            FlushDirectory(Path.GetDirectoryName(created)!);
        }
    }

    /// <summary>Flushes a directory's entries to disk (fsync of the directory); nothing on Windows.</summary>
    /// <exception cref="IOException">The directory cannot be opened or flushed.</exception>
    public static void FlushDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var descriptor = Open(directory, ReadOnly);
        if (descriptor < 0)
        {
            throw Failure("open", directory, Marshal.GetLastPInvokeError());
        }

        try
        {
            if (Fsync(descriptor) != 0 && Marshal.GetLastPInvokeError() is var error and not (InvalidArgument or BadFileDescriptor))
            {
                throw Failure("fsync", directory, error);
            }
        }
        finally
        {
            _ = Close(descriptor);
        }

        DirectoryFlushed?.Invoke(directory);
    }

    /// <summary>Whether this process may create entries in an existing directory (<c>access(W_OK)</c>), without creating anything; always true on Windows.</summary>
    public static bool IsWritable(string directory) => OperatingSystem.IsWindows() || Access(directory, Writable) == 0;

    private static IOException Failure(string call, string directory, int error) =>
        new($"Cannot make the directory '{directory}' durable: {call} failed with errno {error} ({Marshal.GetPInvokeErrorMessage(error)}).", error);

    // "libc" is mapped to the platform's C library by the runtime (libc.so.6 on glibc Linux, libSystem on macOS).
    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int Fsync(int descriptor);

    [DllImport("libc", EntryPoint = "access", SetLastError = true)]
    private static extern int Access([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int mode);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int descriptor);
}
