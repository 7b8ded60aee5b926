namespace Platform.Storage.FileSystem;

/// <summary>
/// A path with every symbolic link in it resolved (POSIX <c>realpath</c>, extended to paths whose tail does not exist
/// yet), so that a confinement check sees where a path really leads: a link inside a root that points outside it is
/// outside it.
/// </summary>
internal static class RealPath
{
    // Links that point at links, in a loop, end the walk here instead of spinning.
    private const int MaxLinks = 64;

    /// <summary>The absolute path <paramref name="path"/> stands for, with its existing components' links resolved.</summary>
    public static string Resolve(string path)
    {
        var full = Path.GetFullPath(path);
        var root = Path.GetPathRoot(full) ?? "/";
        var pending = new Stack<string>(full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse());
        var current = root;
        var links = 0;
        while (pending.TryPop(out var part))
        {
            var next = Path.Combine(current, part);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            if (info.Exists && info.LinkTarget is { } target)
            {
                if (++links > MaxLinks)
                {
                    throw new IOException($"Too many symbolic links resolving '{path}' (a loop?).");
                }

                // Resolve the link's target the same way (it may be relative, and may contain links itself).
                var resolved = Path.GetFullPath(target, current);
                var resolvedRoot = Path.GetPathRoot(resolved) ?? "/";
                foreach (var segment in resolved[resolvedRoot.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse())
                {
                    pending.Push(segment);
                }

                current = resolvedRoot;
                continue;
            }

            current = next;
        }

        return current;
    }

    /// <summary>Whether <paramref name="path"/> really lies under <paramref name="root"/> (or is it, with <paramref name="allowEqual"/>), links resolved on both.</summary>
    public static bool IsUnder(string path, string root, bool allowEqual)
    {
        var real = Resolve(path);
        var realRoot = Resolve(root);
        return (allowEqual && string.Equals(real, realRoot, StringComparison.Ordinal))
            || real.StartsWith(realRoot.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal);
    }
}
