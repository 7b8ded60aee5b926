using System.Text;

namespace Platform.Tests.Infrastructure;

/// <summary>Test inputs written to temporary files.</summary>
public static class TestData
{
    private static readonly string[] Vocabulary =
    [
        "stream", "state", "barrier", "checkpoint", "key", "group", "silo", "grain", "orleans", "flink",
        "window", "record", "batch", "channel", "credit", "offset", "source", "sink", "operator", "task",
        "Zürich", "naïve", "don't", "o'clock", "x1", "2026",
    ];

    /// <summary>Where every test's files are: the test silos' data root (Platform:DataRoots), beside the repository.</summary>
    public static string Root { get; } = Path.Combine(Path.GetTempPath(), "platform-tests");

    /// <summary>A directory under the system temp folder that the test owns.</summary>
    public static string NewDirectory(string name)
    {
        var path = Path.Combine(Root, $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>
    /// Copies the fixture folder <c>TestData/{relativePath}</c> (copied beside the test assembly) into a new directory the
    /// test owns, and returns that directory, so a test may change or delete what it restores without touching the fixture.
    /// </summary>
    public static string CopyFixture(string relativePath)
    {
        var source = Path.Combine(AppContext.BaseDirectory, "TestData", relativePath);
        if (!Directory.Exists(source))
        {
            throw new DirectoryNotFoundException($"Test fixture '{source}' is missing; is it copied to the output directory?");
        }

        var target = NewDirectory(Path.GetFileName(relativePath.TrimEnd('/')));
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
        }

        return target;
    }

    /// <summary>Writes <paramref name="lines"/> lines of pseudo-random words (skewed, with punctuation) and returns the path.</summary>
    public static string WriteText(int lines, int seed)
    {
        var random = new Random(seed);
        var builder = new StringBuilder();
        for (var i = 0; i < lines; i++)
        {
            var words = random.Next(0, 14);
            for (var w = 0; w < words; w++)
            {
                // Skewed: low indexes are far more frequent, like natural text.
                var index = (int)(Math.Pow(random.NextDouble(), 2.5) * Vocabulary.Length);
                var word = Vocabulary[index];
                builder.Append(random.Next(5) == 0 ? word.ToUpperInvariant() : word);
                builder.Append(random.Next(6) switch { 0 => ", ", 1 => ". ", 2 => "  ", _ => " " });
            }

            builder.Append(i % 17 == 0 ? "\r\n" : "\n");
        }

        var path = Path.Combine(NewDirectory("text"), "input.txt");
        File.WriteAllText(path, builder.ToString(), new UTF8Encoding(false));
        return path;
    }
}
