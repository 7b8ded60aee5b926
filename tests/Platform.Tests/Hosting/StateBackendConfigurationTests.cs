using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Serialization;
using Platform.Hosting;
using Platform.State;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Hosting;

/// <summary>Choosing the silo's default state backend: Orleans-style provider configuration, plain options, and code.</summary>
public sealed class StateBackendConfigurationTests
{
    private static StreamingPlatformOptions Resolve(Dictionary<string, string?> settings, Action<ISiloBuilder>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        settings["Platform:StateDirectory"] = TestData.NewDirectory("backend-config");
        settings["Platform:CheckpointDirectory"] = TestData.NewDirectory("backend-config");
        builder.Configuration.AddInMemoryCollection(settings);
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering().AddStreamingPlatform();
            configure?.Invoke(silo);
        });
        using var host = builder.Build();
        return host.Services.GetRequiredService<IOptions<StreamingPlatformOptions>>().Value;
    }

    [Fact]
    public void The_default_is_the_heap()
    {
        Assert.Equal(StateBackendKind.Heap, Resolve([]).DefaultStateBackend);
    }

    [Fact]
    public void A_provider_type_in_configuration_chooses_the_backend_and_its_settings_come_from_its_section()
    {
        var options = Resolve(new()
        {
            ["Platform:StateBackend:ProviderType"] = "RocksDb",
            ["Platform:RocksDb:BlockCacheSize"] = "1048576",
            ["Platform:RocksDb:IncrementalCheckpoints"] = "false",
        });

        Assert.Equal(StateBackendKind.RocksDb, options.DefaultStateBackend);
        Assert.Equal(1048576, options.RocksDb.BlockCacheSize);
        Assert.False(options.RocksDb.IncrementalCheckpoints);
    }

    [Fact]
    public void The_provider_type_wins_over_the_plain_option_and_code_wins_over_both()
    {
        Assert.Equal(StateBackendKind.Heap, Resolve(new()
        {
            ["Platform:StateBackend:ProviderType"] = "heap",
            ["Platform:DefaultStateBackend"] = "RocksDb",
        }).DefaultStateBackend);

        var directory = TestData.NewDirectory("rocksdb");
        var options = Resolve(new() { ["Platform:StateBackend:ProviderType"] = "Heap" }, silo => silo.UseRocksDbStateBackend(o => o.LocalDirectory = directory));
        Assert.Equal(StateBackendKind.RocksDb, options.DefaultStateBackend);
        Assert.Equal(directory, options.RocksDb.LocalDirectory);
    }

    [Fact]
    public void An_unknown_provider_type_is_a_startup_error_that_lists_the_known_ones()
    {
        var error = Assert.Throws<OptionsValidationException>(() => Resolve(new() { ["Platform:StateBackend:ProviderType"] = "Cassandra" }));

        Assert.Contains("Platform:StateBackend:ProviderType is 'Cassandra'", error.Message);
        Assert.Contains("Heap, RocksDb", error.Message);
    }

    [Fact]
    public void Every_backend_kind_has_a_registered_factory()
    {
        var services = new ServiceCollection();
        services.AddSerializer();
        services.AddStreamingPlatform(section: null);
        using var provider = services.BuildServiceProvider();

        foreach (var kind in Enum.GetValues<StateBackendKind>())
        {
            Assert.NotNull(provider.GetKeyedService<IKeyedStateBackendFactory>(kind));
        }
    }
}
