namespace Platform.AppHost;

/// <summary>Writes whole lines from several threads (the demo and its Orleans client's log) without interleaving them.</summary>
internal sealed class ConsoleOutput
{
    private readonly Lock _lock = new();

    /// <summary>Writes a line to standard output.</summary>
    public void Line(string line = "")
    {
        lock (_lock)
        {
            Console.Out.WriteLine(line);
        }
    }

    /// <summary>Writes a line to standard error.</summary>
    public void ErrorLine(string line)
    {
        lock (_lock)
        {
            Console.Error.WriteLine(line);
        }
    }

    /// <summary>Writes the AppHost's own message, prefixed so that it stands out among Aspire's log lines.</summary>
    public void Info(string message) => Line($"[apphost] {message}");

    /// <summary>Writes the AppHost's own error message to standard error.</summary>
    public void Error(string message) => ErrorLine($"[apphost] error: {message}");
}
