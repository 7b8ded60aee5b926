using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
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

    /// <summary>
    /// Microsoft Entra ID (or any OpenID Connect issuer): callers may present an access token it issued instead of the
    /// admin token. Off unless <see cref="EntraIdOptions.Authority"/> is set.
    /// </summary>
    public EntraIdOptions EntraId { get; set; } = new();
}

/// <summary>
/// The <c>Silo:Http:EntraId</c> section: access tokens from Microsoft Entra ID (any OpenID Connect issuer) for the admin
/// endpoints. The issuer's signing keys come from its metadata (<c>{Authority}/.well-known/openid-configuration</c>).
/// </summary>
public sealed class EntraIdOptions
{
    /// <summary>The app role an Entra ID admin must hold when <see cref="RequiredRole"/> is not configured.</summary>
    public const string DefaultRole = "Platform.Admin";

    /// <summary>
    /// The token issuer, for Entra ID <c>https://login.microsoftonline.com/{tenant id}/v2.0</c>. Setting it turns Entra ID
    /// sign-in on.
    /// </summary>
    public string? Authority { get; set; }

    /// <summary>The audience the tokens must be issued for: the app registration's application id URI or client id.</summary>
    public string? Audience { get; set; }

    /// <summary>
    /// The app role (the token's <c>roles</c> claim) a caller needs; default <see cref="DefaultRole"/>. Empty accepts any
    /// token for <see cref="Audience"/>: only for an app registration whose users must be assigned to it.
    /// </summary>
    public string RequiredRole { get; set; } = DefaultRole;

    /// <summary>Whether the issuer's metadata must be fetched over https. Default true; false only for a local test issuer.</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>Whether Entra ID sign-in is configured.</summary>
    public bool Enabled => !string.IsNullOrWhiteSpace(Authority);
}

/// <summary>Checks <see cref="HttpSecurityOptions"/> against the addresses the silo listens on.</summary>
public static class HttpSecurity
{
    /// <summary>The authentication scheme of the admin endpoints: it forwards to the admin token's or Entra ID's.</summary>
    public const string Scheme = "PlatformAdmin";

    /// <summary>The authentication scheme of the admin token.</summary>
    public const string AdminTokenScheme = "PlatformAdminToken";

    /// <summary>The authentication scheme of Entra ID access tokens.</summary>
    public const string EntraIdScheme = "EntraId";

    /// <summary>The cookie the web UI's sign-in sets (HttpOnly, SameSite=Strict).</summary>
    public const string CookieName = "platform-admin";

    /// <summary>Where the web UI's sign-in puts the token it checks before setting its cookie (<see cref="HttpContext.Items"/>).</summary>
    public const string SignInTokenItem = "platform-sign-in-token";

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

        var entra = options.EntraId;
        const string EntraSection = HttpSecurityOptions.SectionName + ":" + nameof(HttpSecurityOptions.EntraId);
        if (entra.Enabled)
        {
            if (!Uri.TryCreate(entra.Authority, UriKind.Absolute, out var authority) || (authority.Scheme != Uri.UriSchemeHttps && authority.Scheme != Uri.UriSchemeHttp))
            {
                problems.Add($"{EntraSection}:{nameof(EntraIdOptions.Authority)} is '{entra.Authority}', which is not an https:// address; for Entra ID use https://login.microsoftonline.com/<tenant id>/v2.0.");
            }
            else if (authority.Scheme == Uri.UriSchemeHttp && entra.RequireHttpsMetadata)
            {
                problems.Add($"{EntraSection}:{nameof(EntraIdOptions.Authority)} is '{entra.Authority}', over http: its signing keys could be forged in transit. Use https, or for a local test issuer set {EntraSection}:{nameof(EntraIdOptions.RequireHttpsMetadata)}=false.");
            }

            if (string.IsNullOrWhiteSpace(entra.Audience))
            {
                problems.Add($"{EntraSection}:{nameof(EntraIdOptions.Authority)} is set but {EntraSection}:{nameof(EntraIdOptions.Audience)} is not: set it to the app registration's application id URI (api://...) or client id, which the tokens must be issued for.");
            }
        }
        else if (!string.IsNullOrWhiteSpace(entra.Audience))
        {
            problems.Add($"{EntraSection}:{nameof(EntraIdOptions.Audience)} is set but {EntraSection}:{nameof(EntraIdOptions.Authority)} is not: set the issuer (https://login.microsoftonline.com/<tenant id>/v2.0), or remove the audience.");
        }

        if (!Required(options) && !options.AllowAnonymousAdmin && !AllLoopback(urls))
        {
            problems.Add(
                $"The silo listens on {string.Join(", ", urls.Where(u => !IsLoopback(u)))}, beyond loopback, but {HttpSecurityOptions.SectionName}:{nameof(HttpSecurityOptions.AdminToken)} is not set: " +
                $"anyone who can reach it could cancel jobs and take savepoints. Set an admin token, Entra ID ({EntraSection}:{nameof(EntraIdOptions.Authority)} and {nameof(EntraIdOptions.Audience)}), listen on 127.0.0.1 only, or, " +
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
    /// Registers the admin token's and Entra ID's authentication and the <see cref="FlinkRestApi.AdminPolicy"/> policy:
    /// with either configured, the policy requires the admin token or an Entra ID token holding the required role;
    /// with neither (loopback only, or <see cref="HttpSecurityOptions.AllowAnonymousAdmin"/>), anyone may.
    /// </summary>
    public static IServiceCollection AddPlatformHttpSecurity(this IServiceCollection services, IConfiguration configuration)
    {
        var section = configuration.GetSection(HttpSecurityOptions.SectionName);
        services.AddOptions<HttpSecurityOptions>().Bind(section);
        var configured = section.Get<HttpSecurityOptions>() ?? new();
        var entra = configured.EntraId;

        // One scheme in front: a presented JWT (three dot-separated parts) goes to Entra ID, anything else to the admin
        // token, so that a challenge or a refusal is answered by the scheme that judged the request.
        var authentication = services.AddAuthentication(Scheme)
            .AddPolicyScheme(Scheme, "Admin token or Entra ID", options => options.ForwardDefaultSelector = context =>
                entra.Enabled && Presented(context.Request) is { } token && token.Count(c => c == '.') == 2 ? EntraIdScheme : AdminTokenScheme)
            .AddScheme<AuthenticationSchemeOptions, AdminTokenHandler>(AdminTokenScheme, null);
        if (entra.Enabled)
        {
            authentication.AddJwtBearer(EntraIdScheme, options =>
            {
                options.Authority = entra.Authority;
                options.Audience = entra.Audience;
                options.RequireHttpsMetadata = entra.RequireHttpsMetadata;
                // Keep the token's claim names (roles, oid, name) instead of WS-Federation URIs.
                options.MapInboundClaims = false;
                options.TokenValidationParameters.AuthenticationType = EntraIdScheme;
                options.TokenValidationParameters.RoleClaimType = "roles";
                options.TokenValidationParameters.NameClaimType = "name";
                options.Events = new JwtBearerEvents
                {
                    // The web UI's sign-in cookie may hold an Entra ID token as well as the admin token.
                    OnMessageReceived = context =>
                    {
                        context.Token = context.HttpContext.Items[SignInTokenItem] as string ?? Presented(context.Request);
                        return Task.CompletedTask;
                    },
                    OnChallenge = async context =>
                    {
                        context.HandleResponse();
                        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                        context.Response.Headers.WWWAuthenticate = "Bearer";
                        // Why the token was refused (expired, wrong audience, bad signature), never the token itself.
                        var reason = context.AuthenticateFailure is { } failure ? $": {failure.GetType().Name.Replace("SecurityToken", "", StringComparison.Ordinal).Replace("Exception", "", StringComparison.Ordinal)}" : "";
                        await context.Response.WriteAsJsonAsync(new ErrorResponse([$"The Entra ID token was not accepted{reason}. It must be issued by {entra.Authority} for the audience {entra.Audience}, unexpired and signed by the issuer's keys."]));
                    },
                    OnForbidden = async context =>
                    {
                        context.Response.StatusCode = StatusCodes.Status403Forbidden;
                        await context.Response.WriteAsJsonAsync(new ErrorResponse([$"The Entra ID token does not hold the app role '{entra.RequiredRole}' ({HttpSecurityOptions.SectionName}:{nameof(HttpSecurityOptions.EntraId)}:{nameof(EntraIdOptions.RequiredRole)}); assign it to the caller in the app registration."]));
                    },
                };
            });
        }

        services.AddAuthorizationBuilder().AddPolicy(FlinkRestApi.AdminPolicy, policy =>
        {
            policy.AddAuthenticationSchemes(Scheme);
            if (Required(configured))
            {
                policy.RequireAuthenticatedUser();
                policy.RequireAssertion(context => IsAdmin(context.User, entra));
            }
            else
            {
                policy.RequireAssertion(_ => true);
            }
        });
        return services;
    }

    /// <summary>Whether a request needs the admin token or an Entra ID token (either is configured).</summary>
    public static bool Required(HttpSecurityOptions options) => !string.IsNullOrWhiteSpace(options.AdminToken) || options.EntraId.Enabled;

    /// <summary>
    /// Whether <paramref name="token"/> signs a browser in: the admin token, or an Entra ID access token (for example from
    /// <c>az account get-access-token --resource &lt;audience&gt;</c>) that holds the required role.
    /// </summary>
    public static async Task<bool> SignsInAsync(HttpContext context, HttpSecurityOptions options, string token)
    {
        if (Matches(options.AdminToken, token))
        {
            return true;
        }

        if (!options.EntraId.Enabled || token.Count(c => c == '.') != 2)
        {
            return false;
        }

        context.Items[SignInTokenItem] = token;
        try
        {
            var result = await context.AuthenticateAsync(EntraIdScheme);
            return result.Succeeded && IsAdmin(result.Principal, options.EntraId);
        }
        finally
        {
            context.Items.Remove(SignInTokenItem);
        }
    }

    /// <summary>Whether <paramref name="user"/> presented the admin token, or an Entra ID token with the required role.</summary>
    public static bool IsAdmin(ClaimsPrincipal user, EntraIdOptions entra) => user.Identities.Any(identity => identity.IsAuthenticated && identity.AuthenticationType switch
    {
        AdminTokenScheme => true,
        EntraIdScheme => string.IsNullOrWhiteSpace(entra.RequiredRole) || identity.HasClaim("roles", entra.RequiredRole),
        _ => false,
    });

    /// <summary>The token in the request's <c>Authorization: Bearer</c> header, else in the web UI's sign-in cookie.</summary>
    private static string? Presented(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return header["Bearer ".Length..].Trim();
        }

        return request.Cookies.TryGetValue(CookieName, out var cookie) && !string.IsNullOrEmpty(cookie) ? cookie : null;
    }

    /// <summary>Authenticates a request by the admin token in its <c>Authorization</c> header or the web UI's cookie.</summary>
    private sealed class AdminTokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions, ILoggerFactory logger, UrlEncoder encoder, IOptions<HttpSecurityOptions> security)
        : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, logger, encoder)
    {
        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            var configured = security.Value.AdminToken;
            if (string.IsNullOrWhiteSpace(configured) && !security.Value.EntraId.Enabled)
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            var presented = Presented(Request);
            if (presented is null)
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            if (string.IsNullOrWhiteSpace(configured))
            {
                return Task.FromResult(AuthenticateResult.Fail("No admin token is configured on this silo; present an Entra ID access token."));
            }

            if (!Matches(configured, presented))
            {
                // Never echo what was presented: it may be a real token for something else.
                return Task.FromResult(AuthenticateResult.Fail("The admin token presented is not the one configured."));
            }

            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "admin")], AdminTokenScheme);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), AdminTokenScheme)));
        }

        protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
        {
            Response.StatusCode = StatusCodes.Status401Unauthorized;
            Response.Headers.WWWAuthenticate = "Bearer";
            var entra = security.Value.EntraId.Enabled ? " or an Entra ID access token for the audience " + security.Value.EntraId.Audience : "";
            await Response.WriteAsJsonAsync(new ErrorResponse([$"This endpoint changes the cluster: send the admin token ({HttpSecurityOptions.SectionName}:{nameof(HttpSecurityOptions.AdminToken)}){entra} as 'Authorization: Bearer <token>', or sign in at /web/login."]));
        }

        protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
        {
            Response.StatusCode = StatusCodes.Status403Forbidden;
            await Response.WriteAsJsonAsync(new ErrorResponse(["The admin token presented is not the one configured."]));
        }
    }
}
