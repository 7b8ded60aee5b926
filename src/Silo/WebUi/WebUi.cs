using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Options;
using Platform.Silo.Security;

namespace Platform.Silo.WebUi;

/// <summary>
/// The web UI (<c>/web/</c>): static pages over the REST API: jobs, a job's graph with parallelism and back pressure, its
/// checkpoints (counts, history, a chart of durations and sizes, per-subtask details), and buttons for a savepoint, stop
/// with savepoint and cancel. With an admin token or Entra ID configured, it and the Orleans Dashboard need a sign-in (a cookie holding either token).
/// </summary>
public static class WebUi
{
    /// <summary>Where the web UI is served.</summary>
    public const string Path = "/web";

    /// <summary>Where the Orleans Dashboard is mounted.</summary>
    public const string DashboardPath = "/dashboard";

    private const string LoginPath = Path + "/login";

    private static string AssetsDirectory => System.IO.Path.Combine(AppContext.BaseDirectory, "WebUi", "assets");

    /// <summary>Sends requests for the web UI or the Orleans Dashboard to the sign-in page when a token is required and none was presented.</summary>
    public static IApplicationBuilder UseWebUi(this IApplicationBuilder app)
    {
        app.UseWhen(
            context => (context.Request.Path.StartsWithSegments(Path) || context.Request.Path.StartsWithSegments(DashboardPath))
                && !context.Request.Path.StartsWithSegments(LoginPath),
            branch => branch.Use(async (context, next) =>
            {
                var security = context.RequestServices.GetRequiredService<IOptions<HttpSecurityOptions>>().Value;
                if (HttpSecurity.Required(security) && !HttpSecurity.IsAdmin(context.User, security.EntraId))
                {
                    if (HttpMethods.IsGet(context.Request.Method) && context.Request.Headers.Accept.ToString().Contains("text/html", StringComparison.Ordinal))
                    {
                        context.Response.Redirect($"{LoginPath}?return={Uri.EscapeDataString(context.Request.Path + context.Request.QueryString)}");
                        return;
                    }

                    context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    await context.Response.WriteAsJsonAsync(new Rest.ErrorResponse([$"Sign in at {LoginPath} or send the admin token (or an Entra ID access token) as 'Authorization: Bearer <token>'."]));
                    return;
                }

                if (string.Equals(context.Request.Path.Value, Path, StringComparison.Ordinal))
                {
                    context.Response.Redirect(Path + "/");
                    return;
                }

                await next(context);
            }));
        app.UseDefaultFiles(new DefaultFilesOptions { RequestPath = Path, FileProvider = new PhysicalFileProvider(AssetsDirectory) });
        app.UseStaticFiles(new StaticFileOptions { RequestPath = Path, FileProvider = new PhysicalFileProvider(AssetsDirectory) });
        return app;
    }

    /// <summary>Maps the sign-in page and its form.</summary>
    public static IEndpointRouteBuilder MapWebUi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet(LoginPath, () => Results.File(System.IO.Path.Combine(AssetsDirectory, "login.html"), "text/html")).ExcludeFromDescription();
        endpoints.MapPost(LoginPath, async (HttpContext context, IOptions<HttpSecurityOptions> security) =>
        {
            var form = await context.Request.ReadFormAsync();
            var target = form["return"].ToString() is { Length: > 0 } r && r.StartsWith('/') && !r.StartsWith("//", StringComparison.Ordinal) ? r : Path + "/";
            if (!HttpSecurity.Required(security.Value))
            {
                return Results.Redirect(target);
            }

            var token = form["token"].ToString().Trim();
            if (!await HttpSecurity.SignsInAsync(context, security.Value, token))
            {
                return Results.Redirect($"{LoginPath}?failed=1&return={Uri.EscapeDataString(target)}");
            }

            context.Response.Cookies.Append(HttpSecurity.CookieName, token, new CookieOptions
            {
                HttpOnly = true,
                SameSite = SameSiteMode.Strict,
                Secure = context.Request.IsHttps,
                Path = "/",
            });
            return Results.Redirect(target);
        }).DisableAntiforgery().ExcludeFromDescription();
        return endpoints;
    }
}
