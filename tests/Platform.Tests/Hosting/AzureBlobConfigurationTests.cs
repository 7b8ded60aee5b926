using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Platform.Checkpointing;
using Platform.Hosting;
using Platform.Storage.AzureBlob;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Hosting;

/// <summary>Configuring Azure Blob checkpoint storage with the keys deployments set, and the startup errors for bad values.</summary>
public sealed class AzureBlobConfigurationTests
{
    private static StreamingPlatformOptions Resolve(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        settings["Platform:StateDirectory"] = TestData.NewDirectory("blob-config");
        settings["Platform:CheckpointDirectory"] = TestData.NewDirectory("blob-config");
        builder.Configuration.AddInMemoryCollection(settings);
        builder.UseOrleans(silo => silo.UseLocalhostClustering().AddStreamingPlatform());
        using var host = builder.Build();
        return host.Services.GetRequiredService<IOptions<StreamingPlatformOptions>>().Value;
    }

    [Fact]
    public void A_service_uri_signs_in_with_the_silos_identity_and_the_settings_bind_from_the_section()
    {
        var options = Resolve(new()
        {
            ["Platform:DefaultCheckpointStorage"] = "AzureBlob",
            ["Platform:AzureBlob:ServiceUri"] = "https://acct.blob.core.windows.net",
            ["Platform:AzureBlob:ContainerName"] = "jobs",
            ["Platform:AzureBlob:Prefix"] = "prod",
            ["Platform:AzureBlob:RetryMode"] = "Fixed",
            ["Platform:AzureBlob:MaxRetries"] = "5",
            ["Platform:AzureBlob:RetryDelay"] = "00:00:02",
            ["Platform:AzureBlob:NetworkTimeout"] = "00:00:30",
            ["Platform:SavepointStorage"] = "AzureBlob",
            ["Platform:AzureBlob:SavepointPrefix"] = "prod/savepoints",
            ["Platform:AzureBlob:RestoreContainers:0"] = "archive",
        });

        Assert.Equal(CheckpointStorageKind.AzureBlob, options.DefaultCheckpointStorage);
        Assert.Equal(CheckpointStorageKind.AzureBlob, options.SavepointStorage);
        Assert.Equal("prod/savepoints", options.AzureBlob.SavepointPrefix);
        Assert.Equal(["archive"], options.AzureBlob.RestoreContainers);
        var endpoint = options.AzureBlob.ResolveEndpoint();
        Assert.Equal(new Uri("https://acct.blob.core.windows.net"), endpoint.ServiceUri);
        Assert.Null(endpoint.ConnectionString);
        Assert.Equal("Platform:AzureBlob:ServiceUri", endpoint.Key);
        Assert.Equal("jobs", options.AzureBlob.ContainerName);
        Assert.Equal("prod", options.AzureBlob.Prefix);
        Assert.Equal(Azure.Core.RetryMode.Fixed, options.AzureBlob.RetryMode);
        Assert.Equal(5, options.AzureBlob.MaxRetries);
        Assert.Equal(TimeSpan.FromSeconds(2), options.AzureBlob.RetryDelay);
        Assert.Equal(TimeSpan.FromSeconds(30), options.AzureBlob.NetworkTimeout);
    }

    [Fact]
    public void A_connection_string_wins_over_a_service_uri()
    {
        var options = Resolve(new()
        {
            ["Platform:AzureBlob:ConnectionString"] = "UseDevelopmentStorage=true",
            ["Platform:AzureBlob:ServiceUri"] = "https://acct.blob.core.windows.net",
        });

        var endpoint = options.AzureBlob.ResolveEndpoint();
        Assert.Equal("UseDevelopmentStorage=true", endpoint.ConnectionString);
        Assert.Null(endpoint.ServiceUri);
    }

    [Theory]
    [InlineData("UseDevelopmentStorage=true", "UseDevelopmentStorage=true", null, null)]
    [InlineData("https://acct.blob.core.windows.net/", null, "https://acct.blob.core.windows.net/", null)]
    [InlineData("Endpoint=https://acct.blob.core.windows.net/;ContainerName=aspire-chk", null, "https://acct.blob.core.windows.net/", "aspire-chk")]
    public void An_aspire_named_connection_string_is_used_when_nothing_else_is_set(string value, string? connectionString, string? serviceUri, string? container)
    {
        var options = Resolve(new()
        {
            ["Platform:DefaultCheckpointStorage"] = "AzureBlob",
            ["ConnectionStrings:checkpoints"] = value,
        });

        var endpoint = options.AzureBlob.ResolveEndpoint();
        Assert.Equal("ConnectionStrings:checkpoints", endpoint.Key);
        Assert.Equal(connectionString, endpoint.ConnectionString);
        Assert.Equal(serviceUri, endpoint.ServiceUri?.ToString());
        Assert.Equal(container, endpoint.ContainerName);
    }

    [Fact]
    public void The_connection_name_chooses_which_connection_string_is_read()
    {
        var options = Resolve(new()
        {
            ["Platform:AzureBlob:ConnectionName"] = "blobs",
            ["ConnectionStrings:checkpoints"] = "https://wrong.blob.core.windows.net",
            ["ConnectionStrings:blobs"] = "https://right.blob.core.windows.net",
        });

        Assert.Equal("right.blob.core.windows.net", options.AzureBlob.ResolveEndpoint().ServiceUri!.Host);
    }

    [Fact]
    public void Savepoint_urls_never_carry_the_sas_token_of_a_connection_string()
    {
        var options = new AzureBlobStorageOptions
        {
            ConnectionString = "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2024-08-04&ss=b&srt=co&sp=rwdl&se=2030-01-01T00:00:00Z&sig=abc",
            ContainerName = "jobs",
        };
        var provider = new AzureBlobContainerProvider(options, NullLogger<AzureBlobContainerProvider>.Instance);

        // The SDK keeps the token in the client's URI; the URLs savepoints are named by must not.
        Assert.Contains("sig=abc", provider.Container.Uri.Query);
        Assert.Equal("https://acct.blob.core.windows.net/jobs", provider.ContainerUrl);
        var located = provider.Locate("https://acct.blob.core.windows.net/jobs/savepoints/savepoint-a-1");
        Assert.Equal("savepoints/savepoint-a-1", located?.Path);
    }

    [Theory]
    [InlineData("Platform:DefaultCheckpointStorage", "AzureBlob", "Platform:AzureBlob:ServiceUri")]
    [InlineData("Platform:AzureBlob:ServiceUri", "ftp://acct.blob.core.windows.net", "Platform:AzureBlob:ServiceUri is 'ftp://acct.blob.core.windows.net', which is not an http(s) URI")]
    [InlineData("Platform:AzureBlob:ServiceUri", "https://acct.blob.core.windows.net/?sv=2024&sig=x", "Platform:AzureBlob:ServiceUri has a query string")]
    [InlineData("Platform:AzureBlob:ConnectionString", "AccountName=only", "Platform:AzureBlob:ConnectionString cannot be read as a storage connection string")]
    [InlineData("ConnectionStrings:checkpoints", "AccountName=only", "ConnectionStrings:checkpoints cannot be read as a storage connection string")]
    [InlineData("Platform:AzureBlob:ContainerName", "My_Checkpoints", "Platform:AzureBlob:ContainerName is 'My_Checkpoints'")]
    [InlineData("Platform:AzureBlob:MaxRetries", "-1", "Platform:AzureBlob:MaxRetries is -1")]
    [InlineData("Platform:AzureBlob:NetworkTimeout", "00:00:00", "Platform:AzureBlob:NetworkTimeout is 00:00:00")]
    [InlineData("Platform:AzureBlob:Prefix", "a/../b", "Platform:AzureBlob:Prefix is 'a/../b'")]
    [InlineData("Platform:SavepointStorage", "AzureBlob", "Platform:SavepointStorage is AzureBlob, but no account is configured")]
    [InlineData("Platform:SavepointStorage", "InMemory", "Platform:SavepointStorage is InMemory; use FileSystem or AzureBlob")]
    [InlineData("Platform:AzureBlob:SavepointPrefix", "../sp", "Platform:AzureBlob:SavepointPrefix is '../sp'")]
    [InlineData("Platform:AzureBlob:RestoreContainers:0", "Other_Container", "Platform:AzureBlob:RestoreContainers:0 is 'Other_Container'")]
    public void A_bad_setting_is_a_startup_error_naming_it(string key, string value, string expected)
    {
        var error = Assert.Throws<OptionsValidationException>(() => Resolve(new() { [key] = value }));

        Assert.Contains(expected, error.Message);
    }
}
