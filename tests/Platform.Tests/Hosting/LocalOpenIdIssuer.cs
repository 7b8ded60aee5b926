using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Platform.Tests.Hosting;

/// <summary>
/// An OpenID Connect issuer on a free loopback port, shaped like Entra ID's v2.0 endpoint: it serves its discovery document
/// and signing keys (what a silo's JwtBearer fetches), and signs access tokens with its own RSA key.
/// </summary>
public sealed class LocalOpenIdIssuer : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly RSA _key = RSA.Create(2048);
    private readonly string _keyId = Guid.NewGuid().ToString("N");
    private readonly Task _loop;

    public LocalOpenIdIssuer()
    {
        var port = Ports.Free(1)[0];
        Authority = $"http://127.0.0.1:{port}/{Guid.NewGuid()}/v2.0";
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    /// <summary>The issuer (<c>iss</c>) and the authority a silo is configured with.</summary>
    public string Authority { get; }

    /// <summary>How many times the signing keys were fetched.</summary>
    public int KeyRequests { get; private set; }

    /// <summary>Signs a token for <paramref name="audience"/> with <paramref name="roles"/>, valid for an hour from <paramref name="issuedAt"/> (default now).</summary>
    public string Issue(string audience, IReadOnlyList<string> roles, DateTime? issuedAt = null, string? issuer = null, RSA? signingKey = null)
    {
        var issued = issuedAt ?? DateTime.UtcNow;
        var claims = new Dictionary<string, object> { ["oid"] = Guid.NewGuid().ToString(), ["name"] = "Test Admin" };
        if (roles.Count > 0)
        {
            claims["roles"] = roles.ToArray();
        }

        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer ?? Authority,
            Audience = audience,
            IssuedAt = issued,
            NotBefore = issued,
            Expires = issued.AddHours(1),
            Claims = claims,
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(signingKey ?? _key) { KeyId = _keyId }, SecurityAlgorithms.RsaSha256),
        });
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        try
        {
            await _loop;
        }
        catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
        {
            // Stopping the listener ends the loop's pending GetContextAsync.
        }

        _key.Dispose();
    }

    private async Task ServeAsync()
    {
        var path = new Uri(Authority).AbsolutePath;
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            using var response = context.Response;
            object? document = context.Request.Url?.AbsolutePath switch
            {
                var p when p == path + "/.well-known/openid-configuration" => new Dictionary<string, object>
                {
                    ["issuer"] = Authority,
                    ["jwks_uri"] = Authority + "/discovery/keys",
                    ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
                },
                var p when p == path + "/discovery/keys" => Keys(),
                _ => null,
            };
            response.StatusCode = document is null ? 404 : 200;
            response.ContentType = "application/json";
            var body = Encoding.UTF8.GetBytes(document is null ? "{}" : JsonSerializer.Serialize(document));
            await response.OutputStream.WriteAsync(body);
        }
    }

    private Dictionary<string, object> Keys()
    {
        KeyRequests++;
        var parameters = _key.ExportParameters(includePrivateParameters: false);
        return new()
        {
            ["keys"] = new[]
            {
                new Dictionary<string, string>
                {
                    ["kty"] = "RSA",
                    ["use"] = "sig",
                    ["alg"] = "RS256",
                    ["kid"] = _keyId,
                    ["n"] = Base64UrlEncoder.Encode(parameters.Modulus),
                    ["e"] = Base64UrlEncoder.Encode(parameters.Exponent),
                },
            },
        };
    }
}
