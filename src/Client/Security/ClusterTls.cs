using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Orleans.Connections.Security;
using Orleans.Hosting;

namespace Platform.Security;

/// <summary>
/// TLS on a cluster's connections (silo to silo, client to gateway): this side's certificate and the certificate
/// authorities a peer's certificate must chain to. Mutual: each side presents a certificate, and each side checks the
/// other's against <see cref="CertificateAuthorityPath"/> (or, without one, the machine's trusted roots).
/// </summary>
public sealed class ClusterTlsSettings
{
    /// <summary>
    /// This side's certificate with its private key: a PEM file (certificate, with the key in it or in <see cref="KeyPath"/>)
    /// or a PKCS#12 file (<c>.pfx</c>/<c>.p12</c>, with <see cref="Password"/>). For a silo it must allow both server and
    /// client authentication (a silo dials other silos), or name no extended key usage at all.
    /// </summary>
    public string? CertificatePath { get; set; }

    /// <summary>The PEM private key of <see cref="CertificatePath"/>, when it is not in the same file.</summary>
    public string? KeyPath { get; set; }

    /// <summary>The password of a PKCS#12 file or of an encrypted PEM key.</summary>
    public string? Password { get; set; }

    /// <summary>
    /// A PEM file of the certificate authorities (one or more) a peer's certificate must be issued by; the machine's
    /// trusted roots are then not consulted. Without it, a peer's certificate must chain to a root this machine trusts.
    /// </summary>
    public string? CertificateAuthorityPath { get; set; }

    /// <summary>Whether TLS is configured (a certificate is named).</summary>
    public bool Enabled => !string.IsNullOrWhiteSpace(CertificatePath);
}

/// <summary>Loads <see cref="ClusterTlsSettings"/> and applies them to Orleans' <see cref="TlsOptions"/>.</summary>
public static class ClusterTls
{
    /// <summary>
    /// What is wrong with the settings, each problem naming its setting by <paramref name="names"/> (for example
    /// <c>Silo:Tls:CertificatePath</c> or <c>--tls-certificate</c>) and what to do; empty when they load.
    /// </summary>
    public static IReadOnlyList<string> Problems(ClusterTlsSettings settings, Func<string, string> names)
    {
        var problems = new List<string>();
        if (!settings.Enabled)
        {
            foreach (var (value, name) in new[] { (settings.KeyPath, nameof(ClusterTlsSettings.KeyPath)), (settings.CertificateAuthorityPath, nameof(ClusterTlsSettings.CertificateAuthorityPath)) })
            {
                if (!string.IsNullOrWhiteSpace(value))
                {
                    problems.Add($"{names(name)} is set but {names(nameof(ClusterTlsSettings.CertificatePath))} is not: TLS needs this side's certificate; set it, or remove {names(name)}.");
                }
            }

            return problems;
        }

        try
        {
            using var certificate = LoadCertificate(settings);
            if (DateTime.Now > certificate.NotAfter || DateTime.Now < certificate.NotBefore)
            {
                problems.Add($"{names(nameof(ClusterTlsSettings.CertificatePath))} is '{settings.CertificatePath}', which is valid only from {certificate.NotBefore:u} to {certificate.NotAfter:u}; issue a current one.");
            }
        }
        catch (ClusterTlsException ex)
        {
            problems.Add(ex.Describe(names));
        }

        try
        {
            LoadAuthorities(settings);
        }
        catch (ClusterTlsException ex)
        {
            problems.Add(ex.Describe(names));
        }

        return problems;
    }

    /// <summary>Loads this side's certificate with its private key.</summary>
    /// <exception cref="ClusterTlsException">The file is missing, unreadable, or holds no private key.</exception>
    public static X509Certificate2 LoadCertificate(ClusterTlsSettings settings)
    {
        var path = settings.CertificatePath ?? throw new ClusterTlsException(nameof(ClusterTlsSettings.CertificatePath), "(unset)", "is not set");
        RequireFile(path, nameof(ClusterTlsSettings.CertificatePath));
        if (settings.KeyPath is { Length: > 0 } keyPath)
        {
            RequireFile(keyPath, nameof(ClusterTlsSettings.KeyPath));
        }

        X509Certificate2 certificate;
        try
        {
            var extension = Path.GetExtension(path).ToLowerInvariant();
            if (extension is ".pfx" or ".p12")
            {
                certificate = X509CertificateLoader.LoadPkcs12FromFile(path, settings.Password, X509KeyStorageFlags.EphemeralKeySet);
            }
            else
            {
                var keyFile = string.IsNullOrWhiteSpace(settings.KeyPath) ? null : settings.KeyPath;
                using var pem = string.IsNullOrEmpty(settings.Password)
                    ? X509Certificate2.CreateFromPemFile(path, keyFile)
                    : X509Certificate2.CreateFromEncryptedPemFile(path, settings.Password, keyFile);
                // A PEM key is ephemeral; SslStream on some platforms needs it exported and reimported.
                certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.EphemeralKeySet);
            }
        }
        catch (CryptographicException ex)
        {
            throw new ClusterTlsException(nameof(ClusterTlsSettings.CertificatePath), path,
                $"cannot be read as a certificate with its private key ({ex.Message.TrimEnd('.')}): give a PEM certificate with its key (in the file or in KeyPath) or a .pfx/.p12 file with its Password", ex);
        }
        catch (ArgumentException ex)
        {
            throw new ClusterTlsException(nameof(ClusterTlsSettings.CertificatePath), path,
                $"holds no certificate or no private key ({ex.Message.TrimEnd('.')}): give a PEM certificate with its key (in the file or in KeyPath) or a .pfx/.p12 file", ex);
        }

        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            throw new ClusterTlsException(nameof(ClusterTlsSettings.CertificatePath), path, "holds a certificate without its private key; add the key (KeyPath) or use a .pfx/.p12 file with it");
        }

        return certificate;
    }

    /// <summary>The authorities of <see cref="ClusterTlsSettings.CertificateAuthorityPath"/>, or null when it is not set.</summary>
    /// <exception cref="ClusterTlsException">The file is missing or holds no certificate.</exception>
    public static X509Certificate2Collection? LoadAuthorities(ClusterTlsSettings settings)
    {
        if (string.IsNullOrWhiteSpace(settings.CertificateAuthorityPath))
        {
            return null;
        }

        var path = settings.CertificateAuthorityPath;
        RequireFile(path, nameof(ClusterTlsSettings.CertificateAuthorityPath));
        var authorities = new X509Certificate2Collection();
        try
        {
            authorities.ImportFromPemFile(path);
        }
        catch (CryptographicException ex)
        {
            throw new ClusterTlsException(nameof(ClusterTlsSettings.CertificateAuthorityPath), path, $"cannot be read as PEM certificates ({ex.Message.TrimEnd('.')})", ex);
        }

        return authorities.Count > 0
            ? authorities
            : throw new ClusterTlsException(nameof(ClusterTlsSettings.CertificateAuthorityPath), path, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
    }

    /// <summary>
    /// Applies the settings to Orleans' TLS options: this side's certificate, a peer's certificate required (mutual
    /// TLS), and the peer checked against the configured authorities. Host names are not checked: silos' addresses change
    /// with every deployment, and the authority that issued the certificate is what admits a peer to the cluster.
    /// </summary>
    public static void Configure(TlsOptions options, X509Certificate2 certificate, X509Certificate2Collection? authorities)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.LocalCertificate = certificate;
        options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.RemoteCertificateValidation = (remote, chain, errors) => IsTrusted(remote, errors, authorities);
    }

    /// <summary>Uses TLS with these settings on a client's gateway connections.</summary>
    /// <exception cref="ClusterTlsException">A file is missing or unreadable.</exception>
    public static IClientBuilder UseClusterTls(this IClientBuilder builder, ClusterTlsSettings settings)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var certificate = LoadCertificate(settings);
        var authorities = LoadAuthorities(settings);
        return builder.UseTls(certificate, options => Configure(options, certificate, authorities));
    }

    private static bool IsTrusted(X509Certificate2 remote, SslPolicyErrors errors, X509Certificate2Collection? authorities)
    {
        if (authorities is null)
        {
            // The machine's roots: what SslStream already checked, apart from the host name.
            return (errors & ~SslPolicyErrors.RemoteCertificateNameMismatch) == SslPolicyErrors.None;
        }

        if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(remote);
    }

    private static void RequireFile(string path, string setting)
    {
        if (!File.Exists(path))
        {
            throw new ClusterTlsException(setting, path, Directory.Exists(path) ? "is a directory, not a file" : "does not exist");
        }
    }
}

/// <summary>A TLS setting that cannot be applied: which setting, its value, and what is wrong.</summary>
public sealed class ClusterTlsException(string setting, string value, string problem, Exception? inner = null)
    : Exception($"{setting} is '{value}', which {problem}.", inner)
{
    /// <summary>The <see cref="ClusterTlsSettings"/> property at fault.</summary>
    public string Setting { get; } = setting;

    /// <summary>The message with the setting named as the caller knows it.</summary>
    public string Describe(Func<string, string> names) => $"{names(Setting)} is '{value}', which {problem}.";
}
