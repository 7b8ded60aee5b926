using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Platform.AppHost;
using Platform.Connectors;
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
        var chromium = Environment.GetEnvironmentVariable("CHROMIUM_PATH") is { Length: > 0 } configured ? configured : "/usr/bin/chromium";
        Assert.True(File.Exists(chromium), $"{chromium} is missing; scripts/install-test-dependencies installs Debian's chromium.");
        var configuration = fixture.App.Services.GetRequiredService<IConfiguration>();
        var model = fixture.App.Services.GetRequiredService<DistributedApplicationModel>();
        output.WriteLine($"resources: {string.Join(", ", model.Resources.Select(r => r.Name))}");
        var dashboard = fixture.App.GetEndpoint("aspire-dashboard", "http");
        var token = configuration["AppHost:BrowserToken"];
        output.WriteLine($"dashboard: {dashboard}, ASPNETCORE_URLS={configuration["ASPNETCORE_URLS"]}");

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            // As root (CI) Chromium refuses its sandbox.
            Args = ["--no-sandbox"],
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1600, Height = 900 } });
        await page.GotoAsync(new Uri(dashboard, token is null ? "/" : $"/login?t={token}").ToString());
        foreach (var silo in AspireAppHostFixture.SiloNames)
        {
            await page.GetByText(silo, new PageGetByTextOptions { Exact = true }).First.WaitForAsync(new LocatorWaitForOptions { Timeout = 60_000 });
        }

        var screenshot = Path.Combine(BuiltPrograms.Root, ".artifacts", "apphost-dashboard", "resources.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        output.WriteLine($"screenshot: {screenshot}");

        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(screenshot)[..4]);
        Assert.Contains("silo-1", await page.ContentAsync(), StringComparison.Ordinal);
    }
}
