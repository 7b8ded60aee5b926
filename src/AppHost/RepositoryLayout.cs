namespace Platform.AppHost;

/// <summary>Where the repository, Azurite, the sample input and the demo output are.</summary>
internal sealed class RepositoryLayout
{
    private RepositoryLayout(string root)
    {
        Root = root;
    }

    /// <summary>The repository root (the directory holding Platform.sln).</summary>
    public string Root { get; }

    /// <summary>The demo's default input.</summary>
    public string DefaultInput => Path.Combine(Root, "samples", "wordcount", "input.txt");

    /// <summary>The demo's default output directory.</summary>
    public string DefaultOutput => Path.Combine(Root, ".artifacts", "wordcount-output");

    /// <summary>Azurite (blob, queue and table), as scripts/install-test-dependencies installs it (npm, pinned in tools/azurite).</summary>
    public string AzuriteScript => Path.Combine(Root, "tools", "azurite", "node_modules", "azurite", "dist", "src", "azurite.js");

    /// <summary>Finds the repository from the AppHost's binary (or else the current directory).</summary>
    public static RepositoryLayout Locate()
    {
        var root = FindRoot(AppContext.BaseDirectory) ?? FindRoot(Environment.CurrentDirectory)
            ?? throw new AppHostException(
                $"Cannot find the repository (a directory holding Platform.sln) above {AppContext.BaseDirectory} or {Environment.CurrentDirectory}; run the AppHost from the repository.");
        return new RepositoryLayout(root);
    }

    private static string? FindRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Platform.sln")))
            {
                return dir.FullName;
            }
        }

        return null;
    }
}
