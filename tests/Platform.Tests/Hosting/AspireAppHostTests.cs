using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Platform.AppHost;
using Platform.Connectors;
using Platform.Diagnostics;
using Xunit.Abstractions;

namespace Platform.Tests.Hosting;

/// <summary>
/// The AppHost started once in this process by Aspire.Hosting.Testing (with its dashboard), with <c>--keep-running</c>
/// so that the application stays up after the demo for the tests of the class.
/// </summary>
public sealed class AspireAppHostFixture : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(3);

    /// <summary>The silos the fixture starts.</summary>
    public static readonly string[] SiloNames = ["silo-0", "silo-1"];

    private DistributedApplication? _app;

    /// <summary>The running application.</summary>
    public DistributedApplication App => _app ?? throw new InvalidOperationException("The AppHost is not started.");

    /// <summary>Where the demo's file sink writes.</summary>
    public string OutputDirectory { get; } = Infrastructure.TestData.NewDirectory("aspire-apphost-output");

    /// <summary>What the demo counted (<c>null</c> if it failed).</summary>
    internal WordCountResult? Result { get; private set; }

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        using var timeout = new CancellationTokenSource(StartTimeout);
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Platform_AppHost>(
            ["--silos", SiloNames.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), "--output", OutputDirectory, "--keep-running"],
            (options, _) => options.DisableDashboard = false,
            timeout.Token);
        _app = await builder.BuildAsync(timeout.Token);
        await _app.StartAsync(timeout.Token);
        Result = await _app.Services.GetRequiredService<DemoOutcome>().Completion.Task.WaitAsync(timeout.Token);
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            await _app.StopAsync(timeout.Token);
            await _app.DisposeAsync();
        }
    }
}

/// <summary>The AppHost under Aspire.Hosting.Testing: its silos, the demo's exact result, and the dashboard.</summary>
[Collection(HostingCollection.Name)]
public sealed class AspireAppHostTests(AspireAppHostFixture fixture, ITestOutputHelper output) : IClassFixture<AspireAppHostFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task Every_silo_becomes_healthy_and_answers_its_readiness_endpoint()
    {
        foreach (var silo in AspireAppHostFixture.SiloNames)
        {
            await fixture.App.ResourceNotifications.WaitForResourceHealthyAsync(silo).WaitAsync(Timeout);
            Assert.True(fixture.App.ResourceNotifications.TryGetCurrentState(silo, out var state));
            Assert.Equal(KnownResourceStates.Running, state.Snapshot.State?.Text);

            using var http = fixture.App.CreateHttpClient(silo, "http");
            using var response = await http.GetAsync(new Uri("/health/ready", UriKind.Relative));
            Assert.True(response.IsSuccessStatusCode, $"{silo} answered {(int)response.StatusCode} on /health/ready");
        }
    }

    [Fact]
    public void The_demo_job_finishes_with_exactly_the_counts_of_the_input()
    {
        var result = Assert.IsType<WordCountResult>(fixture.Result);
        var expected = AppHostTests.ExpectedCounts();

        Assert.Equal(expected.OrderBy(p => p.Key, StringComparer.Ordinal), result.Counts.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(expected.Values.Sum(), result.Words);
        Assert.Equal(AppHostTests.ExpectedLines(expected), FileSink.ReadCommittedLines(fixture.OutputDirectory).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task The_dashboard_lists_every_silo_on_its_resources_page_in_a_headless_chromium_screenshot()
    {
        var model = fixture.App.Services.GetRequiredService<DistributedApplicationModel>();
        output.WriteLine($"resources: {string.Join(", ", model.Resources.Select(r => r.Name))}");
        await using var dashboard = await DashboardBrowser.OpenAsync(fixture.App, output);
        var page = dashboard.Page;
        foreach (var silo in AspireAppHostFixture.SiloNames)
        {
            await page.GetByText(silo, new PageGetByTextOptions { Exact = true }).First.WaitForAsync(new LocatorWaitForOptions { Timeout = 60_000 });
        }

        var screenshot = await dashboard.ScreenshotAsync("resources.png");

        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(screenshot)[..4]);
        Assert.Contains("silo-1", await page.ContentAsync(), StringComparison.Ordinal);
    }

    /// <summary>
    /// The dashboard's telemetry HTTP API (Aspire 13.6: <c>/api/telemetry/traces</c>, OTLP JSON) lists the silos' checkpoint
    /// traces: a <c>platform.checkpoint</c> root with a <c>platform.checkpoint.subtask</c> child per subtask and their sync
    /// phases. That API has no metrics endpoint, so the platform's metrics are read where the dashboard shows them: its
    /// Metrics page, in the headless Chromium, which also saves the Traces page of a checkpoint trace.
    /// </summary>
    [Fact]
    public async Task The_dashboard_s_telemetry_lists_the_silos_checkpoint_spans_per_subtask_and_the_platform_s_metrics()
    {
        var dashboardUrl = fixture.App.GetEndpoint("aspire-dashboard", "http");
        var apiKey = fixture.App.Services.GetRequiredService<IConfiguration>()["AppHost:DashboardApiKey"];
        using var http = new HttpClient { BaseAddress = dashboardUrl };
        if (!string.IsNullOrEmpty(apiKey))
        {
            http.DefaultRequestHeaders.Add("X-API-Key", apiKey);
        }

        var resources = string.Join("&", AspireAppHostFixture.SiloNames.Select(s => $"resource={Uri.EscapeDataString(s)}"));
        CheckpointTrace? trace = null;
        var last = "";
        await Poll.UntilAsync(
            async () =>
            {
                using var response = await http.GetAsync(new Uri($"/api/telemetry/traces?{resources}&limit=200", UriKind.Relative));
                last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
                if (!response.IsSuccessStatusCode)
                {
                    return false;
                }

                using var json = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                trace = CheckpointTrace.Find(OtlpSpan.Read(json.RootElement.GetProperty("data")));
                return trace is not null;
            },
            TimeSpan.FromMinutes(2),
            () => $"the dashboard lists a completed checkpoint trace of the silos with a span per subtask (last answer: {last[..Math.Min(last.Length, 2000)]})");

        var found = trace!;
        output.WriteLine($"trace {found.Root.TraceId} from {found.Root.Service}: {found.Subtasks.Count} subtask spans, {found.Phases.Count} phase spans");
        Assert.Contains(found.Root.Service, AspireAppHostFixture.SiloNames);
        Assert.Equal(PlatformTelemetry.Spans.Checkpoint, found.Root.Name);
        Assert.All(found.Subtasks, s => Assert.Equal(found.Root.SpanId, s.ParentSpanId));
        Assert.Equal(found.ExpectedSubtasks, found.Subtasks.Count);
        Assert.All(found.Subtasks, s => Assert.Contains(found.Phases, p => p.ParentSpanId == s.SpanId && p.Name == PlatformTelemetry.Spans.Sync));
        Assert.All(found.Phases, p => Assert.Contains(p.Name, new[] { PlatformTelemetry.Spans.Alignment, PlatformTelemetry.Spans.Sync, PlatformTelemetry.Spans.Async }));

        await using var dashboard = await DashboardBrowser.OpenAsync(fixture.App, output);
        var page = dashboard.Page;

        // The Traces page of that trace: the root and its subtasks' spans.
        await page.GotoAsync(new Uri(dashboardUrl, $"/traces/detail/{found.Root.TraceId}").ToString());
        await dashboard.WaitForTextAsync(PlatformTelemetry.Spans.CheckpointSubtask);
        var traces = await dashboard.ScreenshotAsync("traces.png");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(traces)[..4]);

        // The Metrics page of the coordinator's silo, on the platform's meter's completed-checkpoints counter (meter and
        // instrument are query parameters, as the dashboard's own links have them): the page shows an instrument's
        // description only when the resource reported it.
        await page.GotoAsync(new Uri(dashboardUrl, $"/metrics/resource/{found.Root.Service}?meter={PlatformTelemetry.MeterName}&instrument=platform.checkpoint.completed").ToString());
        await dashboard.WaitForTextAsync("Completed checkpoints (Flink: numberOfCompletedCheckpoints)");
        await dashboard.WaitForTextAsync(PlatformTelemetry.MeterName);
        await dashboard.ScreenshotAsync("metrics.png");

        // Every silo runs subtasks, so every silo reports the per-operator record counters.
        foreach (var silo in AspireAppHostFixture.SiloNames)
        {
            await page.GotoAsync(new Uri(dashboardUrl, $"/metrics/resource/{silo}?meter={PlatformTelemetry.MeterName}&instrument=platform.task.records_in").ToString());
            await dashboard.WaitForTextAsync("Records taken in by a subtask; a source's records read (Flink: numRecordsIn)");
        }
    }

    /// <summary>One span of the dashboard's OTLP JSON, with its resource's <c>service.name</c>.</summary>
    private sealed record OtlpSpan(string Service, string TraceId, string SpanId, string ParentSpanId, string Name, IReadOnlyDictionary<string, string> Attributes)
    {
        public static List<OtlpSpan> Read(System.Text.Json.JsonElement data)
        {
            var spans = new List<OtlpSpan>();
            foreach (var resourceSpans in Array(data, "resourceSpans"))
            {
                var service = AttributesOf(resourceSpans.GetProperty("resource")).GetValueOrDefault("service.name", "");
                foreach (var scopeSpans in Array(resourceSpans, "scopeSpans"))
                {
                    foreach (var span in Array(scopeSpans, "spans"))
                    {
                        spans.Add(new OtlpSpan(
                            service,
                            span.GetProperty("traceId").GetString() ?? "",
                            span.GetProperty("spanId").GetString() ?? "",
                            span.TryGetProperty("parentSpanId", out var parent) ? parent.GetString() ?? "" : "",
                            span.GetProperty("name").GetString() ?? "",
                            AttributesOf(span)));
                    }
                }
            }

            return spans;
        }

        private static IEnumerable<System.Text.Json.JsonElement> Array(System.Text.Json.JsonElement element, string name) =>
            element.TryGetProperty(name, out var array) && array.ValueKind == System.Text.Json.JsonValueKind.Array ? array.EnumerateArray() : [];

        // OTLP JSON: [{ "key": "...", "value": { "stringValue": "..." | "intValue": "..." | ... } }]
        private static Dictionary<string, string> AttributesOf(System.Text.Json.JsonElement element) =>
            Array(element, "attributes").ToDictionary(
                a => a.GetProperty("key").GetString() ?? "",
                a => a.GetProperty("value").EnumerateObject().FirstOrDefault() is { Value: var v } && v.ValueKind != System.Text.Json.JsonValueKind.Undefined ? v.ToString() : "");
    }

    /// <summary>A completed checkpoint's trace: its root, one child per subtask, and the subtasks' phase spans.</summary>
    private sealed record CheckpointTrace(OtlpSpan Root, IReadOnlyList<OtlpSpan> Subtasks, IReadOnlyList<OtlpSpan> Phases, int ExpectedSubtasks)
    {
        /// <summary>
        /// The latest completed checkpoint whose every subtask's span has arrived, each with its sync phase (a subtask that
        /// had finished, as in the word-count job's last checkpoint, has none), or <c>null</c>.
        /// </summary>
        public static CheckpointTrace? Find(List<OtlpSpan> spans)
        {
            foreach (var root in Enumerable.Reverse(spans).Where(s => s.Name == PlatformTelemetry.Spans.Checkpoint && s.ParentSpanId.Length == 0
                                                  && s.Attributes.GetValueOrDefault(PlatformTelemetry.Tags.Outcome) == "completed"))
            {
                var subtasks = spans.Where(s => s.TraceId == root.TraceId && s.Name == PlatformTelemetry.Spans.CheckpointSubtask).ToList();
                var phases = spans.Where(s => s.TraceId == root.TraceId && subtasks.Any(t => t.SpanId == s.ParentSpanId)).ToList();
                if (int.TryParse(root.Attributes.GetValueOrDefault("checkpoint.subtasks.total"), out var total) && total > 0
                    && subtasks.Count == total && subtasks.All(t => phases.Any(p => p.ParentSpanId == t.SpanId && p.Name == PlatformTelemetry.Spans.Sync)))
                {
                    return new CheckpointTrace(root, subtasks, phases, total);
                }
            }

            return null;
        }
    }
}

/// <summary>The fixture's dashboard in a headless Chromium (Debian's <c>chromium</c>), signed in with the browser token.</summary>
internal sealed class DashboardBrowser : IAsyncDisposable
{
    private readonly IPlaywright _playwright;
    private readonly IBrowser _browser;
    private readonly ITestOutputHelper _output;

    private DashboardBrowser(IPlaywright playwright, IBrowser browser, IPage page, ITestOutputHelper output)
    {
        _playwright = playwright;
        _browser = browser;
        _output = output;
        Page = page;
    }

    /// <summary>The signed-in page (on the resources page at first).</summary>
    public IPage Page { get; }

    /// <summary>Starts the browser and signs in.</summary>
    public static async Task<DashboardBrowser> OpenAsync(DistributedApplication app, ITestOutputHelper output)
    {
        var configuration = app.Services.GetRequiredService<IConfiguration>();
        var dashboard = app.GetEndpoint("aspire-dashboard", "http");
        var token = configuration["AppHost:BrowserToken"];
        output.WriteLine($"dashboard: {dashboard}, ASPNETCORE_URLS={configuration["ASPNETCORE_URLS"]}");

        var (playwright, browser) = await HeadlessChromium.LaunchAsync();
        try
        {
            var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1600, Height = 900 } });
            await page.GotoAsync(new Uri(dashboard, token is null ? "/" : $"/login?t={token}").ToString());
            return new DashboardBrowser(playwright, browser, page, output);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    /// <summary>Waits until the page shows <paramref name="text"/>; on a timeout saves failed.png and logs the page's text.</summary>
    public async Task WaitForTextAsync(string text)
    {
        try
        {
            await Page.GetByText(text).First.WaitForAsync(new LocatorWaitForOptions { Timeout = 60_000 });
        }
        catch (TimeoutException)
        {
            await ScreenshotAsync("failed.png");
            var shown = await Page.InnerTextAsync("body");
            _output.WriteLine($"{Page.Url} shows no '{text}':\n{shown[..Math.Min(shown.Length, 4000)]}");
            throw;
        }
    }

    /// <summary>Saves the page as .artifacts/apphost-dashboard/<paramref name="name"/> and returns its path.</summary>
    public async Task<string> ScreenshotAsync(string name)
    {
        var screenshot = Path.Combine(BuiltPrograms.Root, ".artifacts", "apphost-dashboard", name);
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        await Page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        _output.WriteLine($"screenshot: {screenshot}");
        return screenshot;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
    }
}
