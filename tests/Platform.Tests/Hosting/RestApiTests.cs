using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Playwright;
using Platform.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Platform.Tests.Hosting;

/// <summary>
/// Flink's REST API and the web UI on a real silo process: jobs started, watched, savepointed, stopped and canceled over
/// HTTP, the checkpoint tab and its buttons in a real headless Chromium, and the admin token when the silo listens
/// beyond loopback.
/// </summary>
[Collection(HostingCollection.Name)]
public sealed class RestApiTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    private const string EntraRole = "Platform.Admin";

    [Fact]
    public async Task The_REST_API_runs_watches_savepoints_stops_and_cancels_jobs_and_the_web_UI_shows_checkpoints_and_takes_a_savepoint()
    {
        var savepointRoot = TestData.NewDirectory("rest-savepoints");
        await using var silo = await RestSilo.StartAsync(output, new Dictionary<string, string> { ["Platform__SavepointDirectory"] = savepointRoot });
        var http = silo.Http;

        // Bad runs: a job the catalog does not have, an argument the job does not take.
        using (var unknown = await http.PostAsJsonAsync("/jobs", new { job = "no-such-job" }))
        {
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
            Assert.Contains("word-count", string.Join(" ", await Errors(unknown)));
        }

        using (var badArgument = await http.PostAsJsonAsync("/jobs", new { job = "generated-word-count", arguments = new Dictionary<string, string> { ["bogus"] = "1" } }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, badArgument.StatusCode);
            Assert.Contains("Unknown argument 'bogus'", string.Join(" ", await Errors(badArgument)));
        }

        var jobId = await RunAsync(http, parallelism: 2);
        await Poll.UntilAsync(async () => (await GetAsync(http, $"/jobs/{jobId}/checkpoints")).GetProperty("counts").GetProperty("completed").GetInt64() >= 3, Timeout, () => "three checkpoints complete");

        // Jobs, and the job's vertices and plan.
        var jobs = await GetAsync(http, "/jobs");
        Assert.Contains(jobs.GetProperty("jobs").EnumerateArray(), j => j.GetProperty("id").GetString() == jobId && j.GetProperty("status").GetString() == "RUNNING");
        var overview = await GetAsync(http, "/jobs/overview");
        Assert.Equal(4, overview.GetProperty("jobs").EnumerateArray().Single(j => j.GetProperty("jid").GetString() == jobId).GetProperty("tasks").GetProperty("RUNNING").GetInt32());
        var job = await GetAsync(http, $"/jobs/{jobId}");
        Assert.True(job.GetProperty("isStoppable").GetBoolean());
        var vertices = job.GetProperty("vertices").EnumerateArray().ToList();
        Assert.Equal(["words", "count -> discard"], vertices.Select(v => v.GetProperty("name").GetString()));
        Assert.All(vertices, v => Assert.Equal(2, v.GetProperty("parallelism").GetInt32()));
        Assert.Equal(["0-63", "64-127"], vertices[1].GetProperty("subtasks").EnumerateArray().Select(s => s.GetProperty("key-groups").GetString()));
        var input = Assert.Single(job.GetProperty("plan").GetProperty("nodes")[1].GetProperty("inputs").EnumerateArray());
        Assert.Equal(("0", "HASH"), (input.GetProperty("id").GetString(), input.GetProperty("ship_strategy").GetString()));
        var backpressure = await GetAsync(http, $"/jobs/{jobId}/vertices/0/backpressure");
        Assert.Equal(2, backpressure.GetProperty("subtasks").GetArrayLength());

        // Checkpoints: counts, summary, history, and one checkpoint per task and per subtask.
        var checkpoints = await GetAsync(http, $"/jobs/{jobId}/checkpoints");
        var duration = checkpoints.GetProperty("summary").GetProperty("end_to_end_duration");
        Assert.True(duration.GetProperty("min").GetInt64() <= duration.GetProperty("avg").GetInt64() && duration.GetProperty("avg").GetInt64() <= duration.GetProperty("max").GetInt64());
        Assert.True(duration.GetProperty("p99").GetDouble() <= duration.GetProperty("max").GetInt64());
        var latest = checkpoints.GetProperty("latest").GetProperty("completed");
        var checkpointId = latest.GetProperty("id").GetInt64();
        Assert.Equal(4, latest.GetProperty("num_acknowledged_subtasks").GetInt32());
        Assert.Contains(checkpoints.GetProperty("history").EnumerateArray(), h => h.GetProperty("id").GetInt64() == checkpointId && h.GetProperty("status").GetString() == "COMPLETED");
        var details = await GetAsync(http, $"/jobs/{jobId}/checkpoints/details/{checkpointId}");
        var countTask = details.GetProperty("tasks").GetProperty("1");
        Assert.Equal(2, countTask.GetProperty("num_acknowledged_subtasks").GetInt32());
        var subtasks = await GetAsync(http, $"/jobs/{jobId}/checkpoints/details/{checkpointId}/subtasks/1");
        var parts = subtasks.GetProperty("subtasks").EnumerateArray().ToList();
        Assert.Equal(["completed", "completed"], parts.Select(p => p.GetProperty("status").GetString()));
        Assert.Equal(countTask.GetProperty("state_size").GetInt64(), parts.Sum(p => p.GetProperty("state_size").GetInt64()));
        Assert.True(countTask.GetProperty("state_size").GetInt64() > 0, "the keyed counts have state");
        Assert.All(parts, p => Assert.True(p.GetProperty("checkpoint").GetProperty("async").GetInt64() >= 0));
        var config = await GetAsync(http, $"/jobs/{jobId}/checkpoints/config");
        Assert.Equal(("exactly_once", 300L), (config.GetProperty("mode").GetString(), config.GetProperty("interval").GetInt64()));
        using (var missing = await http.GetAsync(new Uri($"/jobs/{jobId}/checkpoints/details/999999", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        using (var noJob = await http.GetAsync(new Uri("/jobs/no-such-job/checkpoints", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.NotFound, noJob.StatusCode);
            Assert.Contains("GET /jobs lists the jobs", string.Join(" ", await Errors(noJob)));
        }

        // A savepoint over REST: a trigger id, then COMPLETED with its location; the same trigger id starts nothing new.
        var triggerId = $"trigger-{Guid.NewGuid():N}";
        var savepoint = await SavepointAsync(http, $"/jobs/{jobId}/savepoints", new { triggerId });
        Assert.True(File.Exists(Path.Combine(savepoint, "_metadata")), $"no savepoint at {savepoint}");
        Assert.Equal(savepoint, await SavepointAsync(http, $"/jobs/{jobId}/savepoints", new { triggerId }));
        using (var outside = await http.PostAsJsonAsync($"/jobs/{jobId}/savepoints", new Dictionary<string, object> { ["target-directory"] = TestData.NewDirectory("elsewhere") }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, outside.StatusCode);
            Assert.Contains("outside the silos' savepoint root", string.Join(" ", await Errors(outside)));
        }

        using (var format = await http.PostAsJsonAsync($"/jobs/{jobId}/savepoints", new { formatType = "SIDEWAYS" }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, format.StatusCode);
        }

        // The web UI in a real Chromium: the jobs list, the job's graph, the checkpoint tab with its chart, a checkpoint's
        // tasks and subtasks, and a savepoint triggered from its button, confirmed in its dialog.
        await using (var browser = await Browser.OpenAsync(output))
        {
            var page = browser.Page;
            await page.GotoAsync($"{silo.BaseAddress}web/");
            await page.Locator($"#jobs tr[data-job='{jobId}']").WaitForAsync();
            await browser.ScreenshotAsync("jobs.png");
            await page.Locator($"#jobs tr[data-job='{jobId}']").ClickAsync();
            await page.Locator("#job-graph .node").First.WaitForAsync();
            Assert.Equal(2, await page.Locator("#job-graph .node").CountAsync());
            Assert.Contains("parallelism 2", await page.Locator("#job-graph").TextContentAsync());
            await browser.ScreenshotAsync("job.png");

            await page.Locator("#tab-checkpoints").ClickAsync();
            await page.Locator("#checkpoint-chart .bar").First.WaitForAsync();
            Assert.True(await page.Locator("#checkpoint-chart .bar.COMPLETED").CountAsync() >= 3, "the chart shows the completed checkpoints");
            Assert.True(long.Parse(await page.Locator("#count-completed").InnerTextAsync(), CultureInfo.InvariantCulture) >= 3);
            await browser.ScreenshotAsync("checkpoints.png");
            await page.Locator($"#checkpoint-history tr[data-checkpoint='{checkpointId}']").ClickAsync();
            await page.Locator("#checkpoint-tasks tr[data-vertex='1']").ClickAsync();
            await page.Locator("#checkpoint-subtasks tbody tr").First.WaitForAsync();
            Assert.Equal(2, await page.Locator("#checkpoint-subtasks tbody tr").CountAsync());
            await browser.ScreenshotAsync("checkpoint-subtasks.png");

            var before = Directory.GetDirectories(savepointRoot).Length;
            await page.Locator("#savepoint").ClickAsync();
            await page.Locator("#confirm-yes").ClickAsync();
            await page.Locator("#message", new PageLocatorOptions { HasTextString = "Savepoint completed" }).WaitForAsync(new LocatorWaitForOptions { Timeout = 60_000 });
            var shown = (await page.Locator("#message").InnerTextAsync()).Split("Savepoint completed: ", 2)[1].Trim();
            Assert.True(File.Exists(Path.Combine(shown, "_metadata")), $"the UI reported {shown}, which holds no savepoint");
            Assert.Equal(before + 1, Directory.GetDirectories(savepointRoot).Length);
            await browser.ScreenshotAsync("savepoint.png");
        }

        // Stop with savepoint: the trigger completes with the savepoint and the job finishes.
        var stopped = await SavepointAsync(http, $"/jobs/{jobId}/stop", new { drain = false });
        Assert.True(File.Exists(Path.Combine(stopped, "_metadata")));
        await Poll.UntilAsync(async () => (await GetAsync(http, $"/jobs/{jobId}")).GetProperty("state").GetString() == "FINISHED", Timeout, () => "the stopped job finishes");

        // Cancel: PATCH mode=cancel; another mode is refused.
        var second = await RunAsync(http, parallelism: 1);
        using (var mode = await http.PatchAsync(new Uri($"/jobs/{second}?mode=stop", UriKind.Relative), null))
        {
            Assert.Equal(HttpStatusCode.BadRequest, mode.StatusCode);
        }

        using (var cancel = await http.PatchAsync(new Uri($"/jobs/{second}?mode=cancel", UriKind.Relative), null))
        {
            Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        }

        await Poll.UntilAsync(async () => (await GetAsync(http, $"/jobs/{second}")).GetProperty("state").GetString() == "CANCELED", Timeout, () => "the canceled job ends CANCELED");

        // The OpenAPI document and the Orleans Dashboard beside the UI.
        var openApi = await GetAsync(http, "/openapi/v1.json");
        Assert.True(openApi.GetProperty("paths").TryGetProperty("/jobs/{jobId}/checkpoints/details/{checkpointId}/subtasks/{vertexId}", out _));
        using var dashboard = await http.GetAsync(new Uri("/dashboard/", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, dashboard.StatusCode);
    }

    [Fact]
    public async Task Beyond_loopback_changes_the_web_UI_and_the_dashboard_need_the_admin_token_and_no_secret_is_printed()
    {
        // Without a token the silo refuses to listen beyond loopback, saying what to set.
        var refusedPorts = Ports.Free(3);
        await using (var refused = ChildProcess.Start(BuiltPrograms.Silo, [], RestSilo.Environment(refusedPorts, "http://0.0.0.0")))
        {
            Assert.True(await refused.WaitForExitAsync(Timeout), "the silo without an admin token kept running");
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Contains("Silo:Http:AdminToken is not set", refused.Output);
        }

        // A storage key and a SAS signature the silo must never print, in logs or errors (the storage is not there).
        const string accountKey = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWstMDEyMzQ1Njc4OWFiY2RlZg==";
        var token = Convert.ToHexString(Guid.NewGuid().ToByteArray()) + Convert.ToHexString(Guid.NewGuid().ToByteArray());
        var closed = Ports.Free(1)[0];
        await using var silo = await RestSilo.StartAsync(output, new Dictionary<string, string>
        {
            ["Silo__Http__AdminToken"] = token,
            ["Platform__AzureBlob__ConnectionString"] = $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={accountKey};BlobEndpoint=http://127.0.0.1:{closed}/devstoreaccount1",
            ["Platform__CheckpointStorage__ProviderType"] = "AzureBlob",
            ["Platform__AzureBlob__MaxRetries"] = "0",
            ["Platform__AzureBlob__NetworkTimeout"] = "00:00:02",
        }, listenOn: "http://0.0.0.0");
        var http = silo.Http;

        // Reading needs no token; changing does, and a wrong one is refused without echoing it.
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("/jobs", UriKind.Relative))).StatusCode);
        var run = new { job = "generated-word-count", arguments = new Dictionary<string, string> { ["records"] = "100000000", ["rate"] = "500", ["checkpoint-interval"] = "00:00:00.300" } };
        using (var anonymous = await http.PostAsJsonAsync("/jobs", new { job = "generated-word-count" }))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Contains("Silo:Http:AdminToken", string.Join(" ", await Errors(anonymous)));
        }

        using (var wrong = new HttpRequestMessage(HttpMethod.Post, "/jobs") { Content = JsonContent.Create(new { job = "generated-word-count" }) })
        {
            wrong.Headers.Authorization = new("Bearer", "not-the-token-at-all-0123456789");
            using var response = await http.SendAsync(wrong);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.DoesNotContain("not-the-token-at-all", await response.Content.ReadAsStringAsync());
        }

        // The web UI and the dashboard send a browser to the sign-in page; the token signs it in with a cookie.
        using (var page = new HttpRequestMessage(HttpMethod.Get, "/web/"))
        {
            page.Headers.Accept.ParseAdd("text/html");
            using var response = await silo.NoRedirects.SendAsync(page);
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
            Assert.StartsWith("/web/login", response.Headers.Location!.OriginalString, StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync(new Uri("/dashboard/", UriKind.Relative))).StatusCode);
        var cookies = new CookieContainer();
        using var browserLike = new HttpClient(new HttpClientHandler { CookieContainer = cookies }) { BaseAddress = silo.BaseAddress };
        using (var wrongSignIn = await browserLike.PostAsync(new Uri("/web/login", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = "wrong" })))
        {
            Assert.Contains("failed=1", wrongSignIn.RequestMessage!.RequestUri!.Query);
        }

        using (var signIn = await browserLike.PostAsync(new Uri("/web/login", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = token, ["return"] = "/web/" })))
        {
            Assert.Equal(HttpStatusCode.OK, signIn.StatusCode);
            Assert.Contains("<title>Platform: jobs</title>", await signIn.Content.ReadAsStringAsync());
        }

        Assert.Equal(HttpStatusCode.OK, (await browserLike.GetAsync(new Uri("/dashboard/", UriKind.Relative))).StatusCode);

        // With the token: a job whose checkpoints go to the unreachable blob storage, so that errors about it are written
        // (each attempt fails to list the job's retained checkpoints, and restarts).
        using var authorized = new HttpClient { BaseAddress = silo.BaseAddress };
        authorized.DefaultRequestHeaders.Authorization = new("Bearer", token);
        using var started = await authorized.PostAsJsonAsync("/jobs", run);
        var startedBody = await started.Content.ReadAsStringAsync();
        Assert.True(started.IsSuccessStatusCode, $"POST /jobs: {(int)started.StatusCode} {startedBody}");
        var jobId = JsonDocument.Parse(startedBody).RootElement.GetProperty("jobid").GetString()!;
        await Poll.UntilAsync(async () => (await GetAsync(http, $"/jobs/{jobId}")).GetProperty("restarts").GetInt32() >= 2, Timeout, () => "attempts fail on the unreachable storage");
        var failures = await http.GetStringAsync(new Uri($"/jobs/{jobId}", UriKind.Relative)) + await http.GetStringAsync(new Uri($"/jobs/{jobId}/checkpoints", UriKind.Relative));

        // The cookie works for changes too (the web UI's buttons).
        using (var cancel = await browserLike.PatchAsync(new Uri($"/jobs/{jobId}?mode=cancel", UriKind.Relative), null))
        {
            Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        }

        await silo.DisposeAsync();
        Assert.Contains("Connection refused", silo.Output);
        foreach (var secret in new[] { accountKey, accountKey[..24], token })
        {
            Assert.DoesNotContain(secret, failures);
            Assert.DoesNotContain(secret, silo.Output);
        }
    }

    [Fact]
    public async Task Entra_ID_tokens_with_the_admin_role_change_the_cluster_and_every_other_token_is_refused()
    {
        await using var issuer = new LocalOpenIdIssuer();
        const string audience = "api://platform-rest-tests";

        // Metadata over http is refused unless the settings say it is a local test issuer.
        await using (var refused = ChildProcess.Start(BuiltPrograms.Silo, [], new Dictionary<string, string>(RestSilo.Environment(Ports.Free(3), "http://127.0.0.1"))
        {
            ["Silo__Http__EntraId__Authority"] = issuer.Authority,
            ["Silo__Http__EntraId__Audience"] = audience,
        }))
        {
            Assert.True(await refused.WaitForExitAsync(Timeout), "the silo with an http authority kept running");
            Assert.Equal(2, refused.ExitCode);
            Assert.Contains("Silo:Http:EntraId:RequireHttpsMetadata=false", refused.Output);
        }

        // Entra ID alone (no admin token) is enough to listen beyond loopback.
        await using var silo = await RestSilo.StartAsync(output, new Dictionary<string, string>
        {
            ["Silo__Http__EntraId__Authority"] = issuer.Authority,
            ["Silo__Http__EntraId__Audience"] = audience,
            ["Silo__Http__EntraId__RequireHttpsMetadata"] = "false",
        }, listenOn: "http://0.0.0.0");

        // Each token against a cancel of a job that does not exist: 404 means the token was let in.
        async Task<(HttpStatusCode Status, string Body)> CancelWith(string? token)
        {
            using var request = new HttpRequestMessage(HttpMethod.Patch, $"/jobs/{Guid.NewGuid():N}?mode=cancel");
            if (token is not null)
            {
                request.Headers.Authorization = new("Bearer", token);
            }

            using var response = await silo.Http.SendAsync(request);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        var admin = issuer.Issue(audience, [EntraRole]);
        Assert.Equal(HttpStatusCode.NotFound, (await CancelWith(admin)).Status);
        var anonymous = await CancelWith(null);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.Status);
        Assert.Contains("Entra ID access token for the audience " + audience, anonymous.Body);

        var noRole = await CancelWith(issuer.Issue(audience, ["Platform.Reader"]));
        Assert.Equal(HttpStatusCode.Forbidden, noRole.Status);
        Assert.Contains($"app role '{EntraRole}'", noRole.Body);

        using var otherKey = System.Security.Cryptography.RSA.Create(2048);
        var refusedTokens = new Dictionary<string, string>
        {
            ["another audience"] = issuer.Issue("api://someone-else", [EntraRole]),
            ["expired"] = issuer.Issue(audience, [EntraRole], issuedAt: DateTime.UtcNow.AddHours(-2)),
            ["another issuer"] = issuer.Issue(audience, [EntraRole], issuer: "https://login.microsoftonline.com/another-tenant/v2.0"),
            ["a forged signature"] = issuer.Issue(audience, [EntraRole], signingKey: otherKey),
            ["no JWT at all"] = "an-admin-token-this-silo-does-not-have",
        };
        foreach (var (what, token) in refusedTokens)
        {
            var (status, body) = await CancelWith(token);
            Assert.True(status == HttpStatusCode.Unauthorized, $"a token with {what}: {(int)status} {body}");
            Assert.DoesNotContain(token, body);
        }

        // A real change with the token: a job is started and canceled.
        using var authorized = new HttpClient { BaseAddress = silo.BaseAddress };
        authorized.DefaultRequestHeaders.Authorization = new("Bearer", admin);
        var jobId = await RunAsync(authorized, parallelism: 1);
        using (var cancel = await authorized.PatchAsync(new Uri($"/jobs/{jobId}?mode=cancel", UriKind.Relative), null))
        {
            Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        }

        // A browser signs in with an Entra ID token (az account get-access-token) only if it holds the role.
        var cookies = new CookieContainer();
        using var browserLike = new HttpClient(new HttpClientHandler { CookieContainer = cookies }) { BaseAddress = silo.BaseAddress };
        using (var roleless = await browserLike.PostAsync(new Uri("/web/login", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = issuer.Issue(audience, []) })))
        {
            Assert.Contains("failed=1", roleless.RequestMessage!.RequestUri!.Query);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, (await browserLike.GetAsync(new Uri("/dashboard/", UriKind.Relative))).StatusCode);
        using (var signIn = await browserLike.PostAsync(new Uri("/web/login", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string> { ["token"] = admin, ["return"] = "/web/" })))
        {
            Assert.Equal(HttpStatusCode.OK, signIn.StatusCode);
            Assert.Contains("<title>Platform: jobs</title>", await signIn.Content.ReadAsStringAsync());
        }

        Assert.Equal(HttpStatusCode.OK, (await browserLike.GetAsync(new Uri("/dashboard/", UriKind.Relative))).StatusCode);
        Assert.True(issuer.KeyRequests > 0, "the silo never fetched the issuer's signing keys");
        await silo.DisposeAsync();
        Assert.DoesNotContain(admin, silo.Output);
    }

    private static async Task<string> RunAsync(HttpClient http, int parallelism)
    {
        using var response = await http.PostAsJsonAsync("/jobs", new
        {
            job = "generated-word-count",
            arguments = new Dictionary<string, string> { ["records"] = "100000000", ["rate"] = "2000", ["checkpoint-interval"] = "00:00:00.300" },
            parallelism,
        });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"POST /jobs: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("jobid").GetString()!;
    }

    // POSTs a savepoint or stop, then polls its trigger id until COMPLETED; returns the location.
    private static async Task<string> SavepointAsync(HttpClient http, string path, object body)
    {
        using var response = await http.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"POST {path}: {(int)response.StatusCode} {text}");
        var triggerId = JsonDocument.Parse(text).RootElement.GetProperty("request-id").GetString()!;
        var jobPath = path[..path.LastIndexOf('/')];
        JsonElement result = default;
        await Poll.UntilAsync(
            async () => (result = await GetAsync(http, $"{jobPath}/savepoints/{triggerId}")).GetProperty("status").GetProperty("id").GetString() == "COMPLETED",
            Timeout,
            () => $"savepoint {triggerId} completes");
        var operation = result.GetProperty("operation");
        Assert.True(operation.GetProperty("failure-cause").ValueKind == JsonValueKind.Null, $"savepoint {triggerId} failed: {operation}");
        return operation.GetProperty("location").GetString()!;
    }

    private static async Task<JsonElement> GetAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(new Uri(path, UriKind.Relative));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static async Task<List<string>> Errors(HttpResponseMessage response) =>
        [.. JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("errors").EnumerateArray().Select(e => e.GetString()!)];

    /// <summary>A silo process with its HTTP endpoint, in a working directory of its own.</summary>
    private sealed class RestSilo : IAsyncDisposable
    {
        private readonly ChildProcess _process;
        private bool _disposed;

        private RestSilo(ChildProcess process, Uri baseAddress)
        {
            _process = process;
            BaseAddress = baseAddress;
            Http = new HttpClient { BaseAddress = baseAddress };
            NoRedirects = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = baseAddress };
        }

        public Uri BaseAddress { get; }

        public HttpClient Http { get; }

        public HttpClient NoRedirects { get; }

        public string Output => _process.Output;

        public static Dictionary<string, string> Environment(IReadOnlyList<int> ports, string listenOn) => new()
        {
            ["Orleans__ClusterId"] = $"rest-{Guid.NewGuid():N}",
            ["Orleans__ServiceId"] = "platform-rest-tests",
            ["Orleans__Endpoints__SiloPort"] = ports[0].ToString(CultureInfo.InvariantCulture),
            ["Orleans__Endpoints__GatewayPort"] = ports[1].ToString(CultureInfo.InvariantCulture),
            ["ASPNETCORE_URLS"] = $"{listenOn}:{ports[2]}",
            ["Silo__ParentProcessId"] = System.Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
        };

        public static async Task<RestSilo> StartAsync(ITestOutputHelper output, Dictionary<string, string> settings, string listenOn = "http://127.0.0.1")
        {
            var ports = Ports.Free(3);
            var environment = Environment(ports, listenOn);
            foreach (var (key, value) in settings)
            {
                environment[key] = value;
            }

            var process = ChildProcess.Start(BuiltPrograms.Silo, [], environment, TestData.NewDirectory("rest-silo"));
            var silo = new RestSilo(process, new Uri($"http://127.0.0.1:{ports[2]}/"));
            try
            {
                await Poll.UntilAsync(
                    async () => !process.HasExited ? await SiloHostTests.IsLiveAsync(ports[2]) : throw new InvalidOperationException($"The silo exited with code {process.ExitCode}:\n{process.Output}"),
                    Timeout,
                    () => $"the silo answers on port {ports[2]}");
                return silo;
            }
            catch
            {
                output.WriteLine(process.Output);
                await silo.DisposeAsync();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            Http.Dispose();
            NoRedirects.Dispose();
            if (!_process.HasExited)
            {
                _process.Terminate();
                await _process.WaitForExitAsync(TimeSpan.FromSeconds(30));
            }
            await _process.DisposeAsync();
        }
    }

    /// <summary>Debian's chromium, headless, through Playwright; screenshots go to .artifacts/web-ui.</summary>
    private sealed class Browser(IPlaywright playwright, IBrowser browser, IPage page, ITestOutputHelper output) : IAsyncDisposable
    {
        public IPage Page { get; } = page;

        public static async Task<Browser> OpenAsync(ITestOutputHelper output)
        {
            var (playwright, browser) = await HeadlessChromium.LaunchAsync();
            try
            {
                var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 900 } });
                page.SetDefaultTimeout(30_000);
                return new Browser(playwright, browser, page, output);
            }
            catch
            {
                playwright.Dispose();
                throw;
            }
        }

        public async Task ScreenshotAsync(string name)
        {
            var path = Path.Combine(BuiltPrograms.Root, ".artifacts", "web-ui", name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await Page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
            output.WriteLine($"screenshot: {path}");
        }

        public async ValueTask DisposeAsync()
        {
            await browser.DisposeAsync();
            playwright.Dispose();
        }
    }
}
