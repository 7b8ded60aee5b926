using Platform.Hosting;

namespace Platform.Storage.FileSystem;

/// <summary>
/// Where jobs' file sources, sinks and dead-letter directories may be (<see cref="StreamingPlatformOptions.DataRoots"/>):
/// a job graph is code from whoever can submit, so without this a job could read or overwrite any file the silo can.
/// Symbolic links are resolved, as for savepoints.
/// </summary>
internal sealed class DataRoots
{
    private readonly IReadOnlyList<string> _roots;
    private readonly bool _anyPath;

    private DataRoots(IReadOnlyList<string> roots, bool anyPath)
    {
        _roots = roots;
        _anyPath = anyPath;
    }

    /// <summary>The roots the options configure; none configured means the silo's working directory.</summary>
    public static DataRoots From(StreamingPlatformOptions options) => new(
        options.DataRoots.Count == 0 ? [Environment.CurrentDirectory] : [.. options.DataRoots.Select(Path.GetFullPath)],
        options.AllowAnyDataPath);

    /// <summary>Why <paramref name="path"/> may not be used by a job (<paramref name="what"/> names it), or <c>null</c> when it may.</summary>
    public string? Problem(string what, string path)
    {
        if (_anyPath || string.IsNullOrWhiteSpace(path))
        {
            return null;
        }

        string real;
        try
        {
            real = RealPath.Resolve(path);
            if (_roots.Any(root => RealPath.IsUnder(real, root, allowEqual: true)))
            {
                return null;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return $"{what} '{path}' cannot be checked against the silo's data roots: {ex.Message}";
        }

        var where = real == Path.GetFullPath(path) ? "" : $" (it leads to '{real}')";
        return $"{what} '{path}'{where} is outside the silo's data roots ({string.Join(", ", _roots)}): put it under one of them, " +
            $"add its directory to {StreamingPlatformOptions.SectionName}:{nameof(StreamingPlatformOptions.DataRoots)}, " +
            $"or let jobs use any path with {StreamingPlatformOptions.SectionName}:{nameof(StreamingPlatformOptions.AllowAnyDataPath)}=true.";
    }
}
