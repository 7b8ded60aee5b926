using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using Platform.Silo.Rest;

namespace Platform.Silo.Security;

/// <summary>
/// The <c>Silo:Http</c> section: who may change anything through the silo's HTTP endpoints (the REST API's
/// mutating endpoints, the web UI and the Orleans Dashboard). Bound to loopback only, nobody else can reach them and no
/// token is needed; bound to any other address, a bearer token is required unless <see cref="AllowAnonymousAdmin"/>.
/// </summary>
public sealed class HttpSecurityOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Silo:Http";

    /// <summary>
    /// The token a caller presents as <c>Authorization: Bearer &lt;token&gt;</c> (or, in a browser, through the web UI's
    /// sign-in page) to use the mutating endpoints, the web UI and the Orleans Dashboard. At least 16 characters. Keep it
    /// in a secret store (an environment variable <c>Silo__Http__AdminToken</c> from a Key Vault reference, ...).
    /// </summary>
    public string? AdminToken { get; set; }

    /// <summary>
    /// Lets the silo listen beyond loopback without a token: only behind something that authenticates every request
    /// (an ingress with Entra ID, a private network with its own controls). Default false.
    /// </summary>
    public bool AllowAnonymousAdmin { get; set; }

    /// <summary>
    /// Whether the Orleans Dashboard runs (at <c>/dashboard/</c>). Default true; false saves its memory (a few MiB of
    /// metric history and its grain call profiler) on silos with a tight heap.
    /// </summary>
    public bool Dashboard { get; set; } = true;
}

/// <summary>Checks <see cref="HttpSecurityOptions"/> against the addresses the silo listens on.</summary>
public static class HttpSecurity
{
    /// <summary>The authentication scheme of the admin token.</summary>
    public const string Scheme = "PlatformAdminToken";

    /// <summary>The cookie the web UI's sign-in sets (HttpOnly, SameSite=Strict).</summary>
    public const string CookieName = "platform-admin";

    /// <summary>The shortest admin token accepted.</summary>
    public const int MinimumTokenLength = 16;

    /// <summary>Whether every one of <paramref name="urls"/> is a loopback address (127.0.0.0/8, ::1, localhost).</summary>
    public static bool AllLoopback(IEnumerable<string> urls) => urls.All(IsLoopback);

    /// <summary>Whether <paramref name="url"/> listens on loopback only.</summary>
    public static bool IsLoopback(string url)
    {
        // Kestrel's wildcard forms (http://*:80, http://+:80) are not URIs with a host: they bind every interface.
        var host = url.Split("://", 2) is [_, var rest] ? rest.Split('/', 2)[0] : url;
        host = host.StartsWith('[') ? host[1..host.IndexOf(']', StringComparison.Ordinal)] : host.Split(':')[0];
        return host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
    }

    /// <summary>What is wrong with the settings for these addresses, each naming the setting and the fix; empty when fine.</summary>
    public static IReadOnlyList<string> Problems(HttpSecurityOptions options, IReadOnlyList<string> urls)
    {
        var problems = new List<string>();
        if (options.AdminToken is { } token && token.Trim().Length < MinimumTokenLength)
        {
            problems.Add($"{HttpSecurityOptions.SectionName}:{nameof(HttpSecurityOptions.AdminToken)} is shorter than {MinimumTokenLength} characters; use a long random value (for example `openssl rand -hex 32`).");
        }

        if (string.IsNullOrWhiteSpace(options.AdminToken) && !options.AllowAnonymousAdmin && !AllLoopback(urls))
        {
            problems.Add(
                $"The silo listens on {string.Join(", ", urls.Where(u => !IsLoopback(u)))}, beyond loopback, but {HttpSecurityOptions.SectionName}:{nameof(HttpSecurityOptions.AdminToken)} is not set: " +
                "anyone who can reach it could cancel jobs and take savepoints. Set an admin token, listen on 127.0.0.1 only, or, " +
                $"behind a proxy that authenticates every request, set {HttpSecurityOptions.SectionName}:{nameof(HttpSecurityOptions.AllowAnonymousAdmin)}=true.");
        }

        return problems;
    }

    /// <summary>Whether <paramref name="presented"/> is the configured token (compared in constant time).</summary>
    public static bool Matches(string? configured, string? presented)
    {
        if (string.IsNullOrWhiteSpace(configured) || string.IsNullOrEmpty(presented))
        {
            return false;
        }

        var expected = SHA256.HashData(Encoding.UTF8.GetBytes(configured.Trim()));
        var actual = SHA256.HashData(Encoding.UTF8.GetBytes(presented.Trim()));
        return CryptographicOperations.FixedTimeEquals(expected, actual);
    }

    /// <summary>
    /// Registers the admin token's authentication and the <see cref="FlinkRestApi.AdminPolicy"/> policy: with a token,
    /// the policy requires it; without one (loopback only, or <see cref="HttpSecurityOptions.AllowAnonymousAdmin"/>), anyone may.
    /// </summary>
    public static IServiceCollection AddPlatformHttpSecurity(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<HttpSecurityOptions>().Bind(configuration.GetSection(HttpSecurityOptions.SectionName));
        var tokenSet = !string.IsNullOrWhiteSpace(configuration[$"{HttpSecurityOptions.SectionName}:{nameof(HttpSecurityOptions.AdminToken)}"]);
        services.AddAuthentication(Scheme).AddScheme<AuthenticationSchemeOptions, AdminTokenHandler>(Scheme, null);
        services.AddAuthorizationBuilder().AddPolicy(FlinkRestApi.AdminPolicy, policy =>
        {
            policy.AddAuthenticationSchemes(Scheme);
            if (tokenSet)
            {
                policy.RequireAuthenticatedUser();
            }
            else
            {
                policy.RequireAssertion(_ => true);
            }
        });
        return services;
    }

    /// <summary>Whether a request needs the token (one is configured).</summary>
    public static bool Required(HttpSecurityOptions options) => !string.IsNullOrWhiteSpace(options.AdminToken);

    /// <summary>Authenticates a request by the admin token in its <c>Authorization</c> header or the web UI's cookie.</summary>
    private sealed class AdminTokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions, ILoggerFactory logger, UrlEncoder encoder, IOptions<HttpSecurityOptions> security)
        : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, logger, encoder)
    {
        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            var configured = security.Value.AdminToken;
            if (string.IsNullOrWhiteSpace(configured))
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            string? presented = null;
            var header = Request.Headers.Authorization.ToString();
            if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                presented = header["Bearer ".Length..];
            }
            else if (Request.Cookies.TryGetValue(CookieName, out var cookie))
            {
                presented = cookie;
            }

            if (presented is null)
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            if (!Matches(configured, presented))
            {
                // Never echo what was presented: it may be a real token for something else.
                return Task.FromResult(AuthenticateResult.Fail("The admin token presented is not the one configured."));
            }

            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "admin")], HttpSecurity.Scheme);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), HttpSecurity.Scheme)));
        }

        protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
        {
            Response.StatusCode = StatusCodes.Status401Unauthorized;
            Response.Headers.WWWAuthenticate = "Bearer";
            await Response.WriteAsJsonAsync(new ErrorResponse([$"This endpoint changes the cluster: send the admin token ({HttpSecurityOptions.SectionName}:{nameof(HttpSecurityOptions.AdminToken)}) as 'Authorization: Bearer <token>', or sign in at /web/login."]));
        }

        protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
        {
            Response.StatusCode = StatusCodes.Status403Forbidden;
            await Response.WriteAsJsonAsync(new ErrorResponse(["The admin token presented is not the one configured."]));
        }
    }
}
