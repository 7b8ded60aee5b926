namespace Platform.Checkpointing;

/// <summary>
/// Which shared files (those incremental checkpoints write under <c>shared/</c>) each retained checkpoint references
/// (Flink's SharedStateRegistry). A shared file is deleted once no retained checkpoint and no acknowledgement of a
/// checkpoint in progress references it. Rebuilt from the retained checkpoints' metadata after a re-activation.
/// </summary>
internal sealed class SharedStateRegistry
{
    private readonly Dictionary<long, HashSet<string>> _byCheckpoint = [];
    private readonly Dictionary<string, int> _references = new(StringComparer.Ordinal);

    /// <summary>Whether the references of <paramref name="checkpointId"/> are known.</summary>
    public bool Contains(long checkpointId) => _byCheckpoint.ContainsKey(checkpointId);

    /// <summary>Whether a retained checkpoint references <paramref name="path"/>.</summary>
    public bool IsReferenced(string path) => _references.ContainsKey(path);

    /// <summary>Records the shared files a retained checkpoint references.</summary>
    public void Register(long checkpointId, IEnumerable<string> paths)
    {
        if (_byCheckpoint.ContainsKey(checkpointId))
        {
            return;
        }

        var set = paths.ToHashSet(StringComparer.Ordinal);
        _byCheckpoint[checkpointId] = set;
        foreach (var path in set)
        {
            _references[path] = _references.GetValueOrDefault(path) + 1;
        }
    }

    /// <summary>Forgets a checkpoint that is no longer retained; returns the files no retained checkpoint references any more.</summary>
    public List<string> Unregister(long checkpointId)
    {
        var unreferenced = new List<string>();
        if (!_byCheckpoint.Remove(checkpointId, out var set))
        {
            return unreferenced;
        }

        foreach (var path in set)
        {
            var count = _references[path] - 1;
            if (count == 0)
            {
                _references.Remove(path);
                unreferenced.Add(path);
            }
            else
            {
                _references[path] = count;
            }
        }

        return unreferenced;
    }

    /// <summary>Forgets every checkpoint that is not in <paramref name="retained"/>.</summary>
    public void RetainOnly(IReadOnlySet<long> retained)
    {
        foreach (var id in _byCheckpoint.Keys.Where(id => !retained.Contains(id)).ToList())
        {
            Unregister(id);
        }
    }
}
