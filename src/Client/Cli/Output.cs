using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Platform.Cli;

/// <summary>
/// Where a command writes: results on stdout (tables and lines for people, or one JSON document with --json), and
/// errors and progress on stderr, so that stdout holds nothing but the result.
/// </summary>
internal sealed class Output
{
    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        // Scripts read the JSON, not a browser: keep '>' and '\'' as they are.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public Output(bool json, bool verbose)
    {
        Json = json;
        Verbose = verbose;
        Console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(System.Console.Out) });
        if (System.Console.IsOutputRedirected)
        {
            // Redirected output has no width of its own; wide enough that tables do not wrap ids and paths.
            Console.Profile.Width = 240;
        }

        Error = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(System.Console.Error) });
    }

    /// <summary>Whether results are written as JSON.</summary>
    public bool Json { get; }

    /// <summary>Whether errors include their stack traces.</summary>
    public bool Verbose { get; }

    /// <summary>stdout, for results for people.</summary>
    public IAnsiConsole Console { get; }

    /// <summary>stderr, for progress.</summary>
    public IAnsiConsole Error { get; }

    /// <summary>Writes <paramref name="value"/> as a JSON document on stdout.</summary>
    public void WriteJson<T>(T value) => System.Console.Out.WriteLine(JsonSerializer.Serialize(value, JsonOptions));

    /// <summary>Writes a line of plain text (no markup) on stdout.</summary>
    public void Line(string text = "") => Console.WriteLine(text);

    /// <summary>Writes an error for people on stderr: one line, then the details with --verbose.</summary>
    public void ReportError(string message, Exception? exception)
    {
        System.Console.Error.WriteLine($"error: {message}");
        if (Verbose && exception is not null)
        {
            System.Console.Error.WriteLine(exception.ToString());
        }
    }

    /// <summary>A table whose cells are plain text (never markup, since ids, paths and messages may hold brackets).</summary>
    public static Table Table(params string[] columns)
    {
        var table = new Table().Border(TableBorder.None);
        foreach (var column in columns)
        {
            table.AddColumn(new TableColumn(new Text(column)).Padding(0, 0, 2, 0));
        }

        return table;
    }

    /// <summary>Adds a row of plain-text cells.</summary>
    public static void Row(Table table, params string?[] cells) => table.AddRow(cells.Select(c => (IRenderable)new Text(c ?? "")).ToArray());

    /// <summary>A size in bytes for people (1.5 KiB, 12.0 MiB).</summary>
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0 ? $"{bytes} B" : string.Create(CultureInfo.InvariantCulture, $"{value:0.0} {units[unit]}");
    }

    /// <summary>A duration for people (85 ms, 1.2 s, 3 min 5 s).</summary>
    public static string Duration(TimeSpan? duration) => duration switch
    {
        null => "",
        { TotalSeconds: < 1 } d => string.Create(CultureInfo.InvariantCulture, $"{d.TotalMilliseconds:0} ms"),
        { TotalMinutes: < 1 } d => string.Create(CultureInfo.InvariantCulture, $"{d.TotalSeconds:0.0} s"),
        { TotalHours: < 1 } d => string.Create(CultureInfo.InvariantCulture, $"{(int)d.TotalMinutes} min {d.Seconds} s"),
        { } d => string.Create(CultureInfo.InvariantCulture, $"{(int)d.TotalHours} h {d.Minutes} min"),
    };

    /// <summary>A point in time for people, in the local time zone.</summary>
    public static string Time(DateTimeOffset? time) =>
        time is { } t && t != default ? t.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "";
}
