using System.Globalization;
using System.Text;

namespace Platform.Connectors;

/// <summary>
/// The names of one sink subtask's part files, as Flink's file sink names them: the hidden in-progress (and pending)
/// <c>.part-{sinkUid}-{subtask}-{attempt}-{seq}.inprogress</c>, and the committed <c>part-{subtask}-{seq}</c>.
/// </summary>
internal sealed class PartFileNames
{
    private const string InProgressPrefix = ".part-";
    private const string InProgressSuffix = ".inprogress";
    private const string FinalPrefix = "part-";

    public PartFileNames(string directory, string sinkUid, int subtaskIndex)
    {
        Directory = Path.GetFullPath(directory);
        SinkUid = Sanitize(sinkUid);
        SubtaskIndex = subtaskIndex;
    }

    /// <summary>The bucket directory, a full path.</summary>
    public string Directory { get; }

    /// <summary>The sink uid as it appears in file names.</summary>
    public string SinkUid { get; }

    public int SubtaskIndex { get; }

    public string InProgress(int attempt, long sequence) =>
        Path.Combine(Directory, string.Create(CultureInfo.InvariantCulture, $"{InProgressPrefix}{SinkUid}-{SubtaskIndex}-{attempt}-{sequence}{InProgressSuffix}"));

    public string Final(long sequence) => Path.Combine(Directory, FinalName(SubtaskIndex, sequence));

    public static string FinalName(int subtaskIndex, long sequence) => string.Create(CultureInfo.InvariantCulture, $"{FinalPrefix}{subtaskIndex}-{sequence}");

    /// <summary>The in-progress files of this subtask (any attempt) that are in the directory, with their attempt.</summary>
    public IEnumerable<(string Path, int Attempt)> InProgressFiles()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            yield break;
        }

        foreach (var path in System.IO.Directory.EnumerateFiles(Directory, InProgressPrefix + "*" + InProgressSuffix))
        {
            if (TryParseInProgress(System.IO.Path.GetFileName(path), out var uid, out var subtask, out var attempt, out _)
                && uid == SinkUid && subtask == SubtaskIndex)
            {
                yield return (path, attempt);
            }
        }
    }

    /// <summary>
    /// The sequence number after every one this subtask has used in the directory, committed or not, by any attempt:
    /// a new part file never takes the name of an existing one, even after a restore to an older checkpoint.
    /// </summary>
    public long NextSequence()
    {
        var next = 0L;
        if (!System.IO.Directory.Exists(Directory))
        {
            return next;
        }

        foreach (var path in System.IO.Directory.EnumerateFiles(Directory))
        {
            var name = System.IO.Path.GetFileName(path);
            if (TryParseFinal(name, out var subtask, out var sequence) && subtask == SubtaskIndex)
            {
                next = Math.Max(next, sequence + 1);
            }
            else if (TryParseInProgress(name, out var uid, out subtask, out _, out sequence) && uid == SinkUid && subtask == SubtaskIndex)
            {
                next = Math.Max(next, sequence + 1);
            }
        }

        return next;
    }

    /// <summary>Parses <c>part-{subtask}-{seq}</c>.</summary>
    public static bool TryParseFinal(string fileName, out int subtaskIndex, out long sequence)
    {
        subtaskIndex = 0;
        sequence = 0;
        if (!fileName.StartsWith(FinalPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        var rest = fileName.AsSpan(FinalPrefix.Length);
        var dash = rest.IndexOf('-');
        return dash > 0
            && IsDigits(rest[..dash]) && IsDigits(rest[(dash + 1)..])
            && int.TryParse(rest[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out subtaskIndex)
            && long.TryParse(rest[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out sequence);
    }

    /// <summary>Parses <c>.part-{sinkUid}-{subtask}-{attempt}-{seq}.inprogress</c>; the uid may hold dashes, so the numbers are read from the right.</summary>
    public static bool TryParseInProgress(string fileName, out string sinkUid, out int subtaskIndex, out int attempt, out long sequence)
    {
        sinkUid = "";
        subtaskIndex = 0;
        attempt = 0;
        sequence = 0;
        if (!fileName.StartsWith(InProgressPrefix, StringComparison.Ordinal) || !fileName.EndsWith(InProgressSuffix, StringComparison.Ordinal)
            || fileName.Length <= InProgressPrefix.Length + InProgressSuffix.Length)
        {
            return false;
        }

        var parts = fileName[InProgressPrefix.Length..^InProgressSuffix.Length].Split('-');
        if (parts.Length < 4 || !parts[^3..].All(p => IsDigits(p)))
        {
            return false;
        }

        sinkUid = string.Join('-', parts[..^3]);
        return sinkUid.Length > 0
            && int.TryParse(parts[^3], NumberStyles.None, CultureInfo.InvariantCulture, out subtaskIndex)
            && int.TryParse(parts[^2], NumberStyles.None, CultureInfo.InvariantCulture, out attempt)
            && long.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out sequence);
    }

    private static bool IsDigits(ReadOnlySpan<char> text) => !text.IsEmpty && !text.ContainsAnyExceptInRange('0', '9');

    // A uid is free text; in a file name only letters, digits, '.', '_' and '-' stay, so that it never names another directory.
    private static string Sanitize(string uid)
    {
        var builder = new StringBuilder(uid.Length);
        foreach (var c in uid)
        {
            builder.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '_');
        }

        return builder.Length == 0 ? "sink" : builder.ToString();
    }
}
