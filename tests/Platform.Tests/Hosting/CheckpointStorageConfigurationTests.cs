using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Platform.Checkpointing;
using Platform.Hosting;
using Platform.Storage;
using Platform.Storage.AzureBlob;
using Platform.Storage.FileSystem;
using Platform.Storage.InMemory;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Hosting;

/// <summary>Checkpoint storages as providers: configuration alone selects one, code adds named ones, and validators only read.</summary>
public sealed class CheckpointStorageConfigurationTests
{
    private static IHost Build(Dictionary<string, string?> settings, Action<ISiloBuilder>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        settings.TryAdd("Platform:StateDirectory", TestData.NewDirectory("storage-config"));
        settings.TryAdd("Platform:CheckpointDirectory", TestData.NewDirectory("storage-config"));
        builder.Configuration.AddInMemoryCollection(settings);
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering().AddStreamingPlatform();
            configure?.Invoke(silo);
        });
        return builder.Build();
    }

    [Theory]
    [InlineData("FileSystem", CheckpointStorageKind.FileSystem, typeof(FileSystemCheckpointStorage))]
    [InlineData("inmemory", CheckpointStorageKind.InMemory, typeof(InMemoryCheckpointStorage))]
    [InlineData("AzureBlob", CheckpointStorageKind.AzureBlob, typeof(AzureBlobCheckpointStorage))]
    internal void Configuration_alone_selects_each_provider(string providerType, CheckpointStorageKind kind, Type storageType)
    {
        // The plain key says otherwise: the provider key wins, as for the state backend.
        using var host = Build(new()
        {
            ["Platform:CheckpointStorage:ProviderType"] = providerType,
            ["Platform:DefaultCheckpointStorage"] = kind == CheckpointStorageKind.InMemory ? "FileSystem" : "InMemory",
            ["Platform:AzureBlob:ConnectionString"] = "UseDevelopmentStorage=true",
        });
        var factory = host.Services.GetRequiredService<CheckpointStorageFactory>();

        var (resolved, directory) = factory.Resolve(null);

        Assert.Equal(kind, resolved);
        Assert.Null(factory.Unavailable(resolved));
        Assert.IsType(storageType, factory.Create(resolved, directory));
    }

    [Fact]
    public void The_file_system_provider_keeps_the_existing_directory_key()
    {
        var directory = TestData.NewDirectory("storage-config");
        using var host = Build(new() { ["Platform:CheckpointStorage:ProviderType"] = "FileSystem", ["Platform:CheckpointDirectory"] = directory });

        Assert.Equal(Path.GetFullPath(directory), host.Services.GetRequiredService<CheckpointStorageFactory>().Resolve(null).Directory);
    }

    [Fact]
    public void Code_reconfigures_a_built_in_storage_and_makes_it_the_default()
    {
        var directory = TestData.NewDirectory("storage-config");
        using var host = Build(new() { ["Platform:DefaultCheckpointStorage"] = "InMemory" }, silo => silo.AddFileSystemCheckpointStorageAsDefault(o => o.Directory = directory));
        var factory = host.Services.GetRequiredService<CheckpointStorageFactory>();

        Assert.Equal((CheckpointStorageKind.FileSystem, Path.GetFullPath(directory)), factory.Resolve(null));
        Assert.Equal(directory, host.Services.GetRequiredService<IOptions<StreamingPlatformOptions>>().Value.CheckpointDirectory);
    }

    [Fact]
    public void An_unknown_provider_type_is_a_startup_error_that_lists_the_known_ones()
    {
        using var host = Build(new() { ["Platform:CheckpointStorage:ProviderType"] = "Cassandra" });

        var error = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IOptions<StreamingPlatformOptions>>().Value);
        Assert.Contains("Platform:CheckpointStorage:ProviderType is 'Cassandra'", error.Message);
        Assert.Contains("AzureBlob, FileSystem, InMemory", error.Message);
    }

    [Fact]
    public void The_validator_reports_every_problem_at_once_naming_each_key()
    {
        var file = Path.Combine(TestData.NewDirectory("storage-config"), "a-file");
        File.WriteAllText(file, "not a directory");

        var problems = ValidatePlatformSection(new()
        {
            ["Platform:CheckpointDirectory"] = " ",
            ["Platform:SavepointDirectory"] = Path.Combine(file, "savepoints"),
            ["Platform:InMemoryMaxStateSize"] = "0",
            ["Platform:CheckpointStorage:ProviderType"] = "AzureBlob",
            ["Platform:AzureBlob:MaxRetries"] = "-1",
        });

        Assert.Contains(problems, p => p.StartsWith("Platform:CheckpointDirectory is empty", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Platform:SavepointDirectory is ", StringComparison.Ordinal) && p.Contains($"'{file}' is a file", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Platform:InMemoryMaxStateSize is 0", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Platform:CheckpointStorage:ProviderType is AzureBlob, but no account is configured", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Platform:AzureBlob:MaxRetries is -1", StringComparison.Ordinal));
    }

    [Fact]
    public void A_validator_never_creates_a_directory()
    {
        var root = Path.Combine(TestData.NewDirectory("storage-config"), "not-yet");
        string[] directories = [Path.Combine(root, "state"), Path.Combine(root, "checkpoints"), Path.Combine(root, "savepoints"), Path.Combine(root, "named")];
        var settings = new Dictionary<string, string?>
        {
            ["Platform:StateDirectory"] = directories[0],
            ["Platform:CheckpointDirectory"] = directories[1],
            ["Platform:SavepointDirectory"] = directories[2],
        };

        // The host's own check (the section bound and validated before the silo is built), the options validator on
        // start, a named storage's validator, and a job's checkpoint directory at submission.
        Assert.Empty(ValidatePlatformSection(settings));
        using var host = Build(settings, silo => silo.AddFileSystemCheckpointStorage("archive", o => o.Directory = directories[3]));
        _ = host.Services.GetRequiredService<IOptions<StreamingPlatformOptions>>().Value;
        foreach (var validator in host.Services.GetServices<IConfigurationValidator>().OfType<FileSystemCheckpointStorageOptionsValidator>())
        {
            validator.ValidateConfiguration();
        }

        var serializer = host.Services.GetRequiredService<Orleans.Serialization.Serializer>();
        var job = new Platform.Graph.StreamJobBuilder("no-directories") { Checkpointing = new CheckpointingSettings { Directory = directories[1] } };
        job.AddSource(new Platform.Connectors.SequenceSource(), "numbers").SinkTo(new Platform.Connectors.DiscardingSink<long>(), "discard");
        Assert.Empty(new Platform.Jobs.JobGraphValidator(serializer, Platform.Storage.FileSystem.DataRoots.From(new StreamingPlatformOptions())).Validate(job.ToJobGraph(serializer)));

        Assert.All(directories.Append(root), d => Assert.False(Directory.Exists(d), $"{d} was created"));
    }

    // What the silo host does before it builds the silo (src/Silo/Hosting/SiloConfiguration.cs, ValidatePlatform).
    private static IReadOnlyList<string> ValidatePlatformSection(Dictionary<string, string?> settings)
    {
        var options = new StreamingPlatformOptions();
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection(StreamingPlatformOptions.SectionName).Bind(options, o => o.ErrorOnUnknownConfiguration = true);
        var result = new StreamingPlatformOptionsValidator().Validate(Options.DefaultName, options);
        return result.Failed ? [.. result.Failures!] : [];
    }

    [Fact]
    public void A_named_storage_has_its_own_options_and_its_validator_names_every_problem()
    {
        using var host = Build([], silo => silo
            .AddAzureBlobCheckpointStorage("archive", o =>
            {
                o.ConnectionString = "UseDevelopmentStorage=true";
                o.ContainerName = "Not_Valid";
                o.MaxRetries = -1;
            })
            .AddInMemoryCheckpointStorage("small", o => o.MaxStateSize = 0));

        var problems = host.Services.GetServices<IConfigurationValidator>()
            .Select(v => Record.Exception(v.ValidateConfiguration)?.Message)
            .OfType<string>()
            .ToList();

        var archive = Assert.Single(problems, p => p.Contains("'archive'", StringComparison.Ordinal));
        Assert.Contains("Checkpoint storage 'archive':ContainerName is 'Not_Valid'", archive);
        Assert.Contains("Checkpoint storage 'archive':MaxRetries is -1", archive);
        Assert.Contains(problems, p => p.Contains("Checkpoint storage 'small': MaxStateSize is 0", StringComparison.Ordinal));
        // The silos' own account settings are untouched.
        Assert.Equal(AzureBlobStorageOptions.DefaultContainerName, host.Services.GetRequiredService<IOptions<StreamingPlatformOptions>>().Value.AzureBlob.ContainerName);
    }
}
