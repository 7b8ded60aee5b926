using Microsoft.Playwright;

namespace Platform.Tests.Hosting;

/// <summary>Debian's chromium (or <c>CHROMIUM_PATH</c>), headless, through Playwright: for the tests of web pages.</summary>
internal static class HeadlessChromium
{
    /// <summary>Starts Playwright and the browser; the caller disposes both.</summary>
    public static async Task<(IPlaywright Playwright, IBrowser Browser)> LaunchAsync()
    {
        var chromium = Environment.GetEnvironmentVariable("CHROMIUM_PATH") is { Length: > 0 } configured ? configured : "/usr/bin/chromium";
        Assert.True(File.Exists(chromium), $"{chromium} is missing; scripts/install-test-dependencies installs Debian's chromium.");
        var playwright = await Playwright.CreateAsync();
        try
        {
            // As root (CI) Chromium refuses its sandbox.
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = chromium, Headless = true, Args = ["--no-sandbox"] });
            return (playwright, browser);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }
}
