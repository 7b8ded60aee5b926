using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Providers;
using Platform.Hosting;
using Platform.State;

[assembly: RegisterProvider("Heap", StateBackendProviders.Kind, "Silo", typeof(HeapStateBackendProviderBuilder))]
[assembly: RegisterProvider("RocksDb", StateBackendProviders.Kind, "Silo", typeof(RocksDbStateBackendProviderBuilder))]

namespace Platform.Hosting;

/// <summary>
/// Chooses the silo's default state backend from configuration the way Orleans chooses its providers: the
/// <c>Platform:StateBackend:ProviderType</c> key names a provider that an assembly registered with
/// <c>[assembly: RegisterProvider(name, "StateBackend", "Silo", typeof(builder))]</c>; its builder configures the silo.
/// </summary>
internal static class StateBackendProviders
{
    /// <summary>The provider kind in <see cref="RegisterProviderAttribute"/>.</summary>
    public const string Kind = "StateBackend";

    /// <summary>The configuration section, under <c>Platform</c>.</summary>
    public const string SectionName = "StateBackend";

    /// <summary>The providers registered by the loaded assemblies, by name (case-insensitive).</summary>
    public static IReadOnlyDictionary<string, Type> Registered() => Registered(Kind);

    /// <summary>The silo providers of a platform provider kind (<c>StateBackend</c>, <c>CheckpointStorage</c>) that the loaded assemblies register, by name (case-insensitive).</summary>
    public static IReadOnlyDictionary<string, Type> Registered(string kind)
    {
        var providers = new Dictionary<string, Type>(StringComparer.OrdinalIgnoreCase);
        foreach (var assembly in AppDomain.CurrentDomain.GetAssemblies().Append(typeof(StateBackendProviders).Assembly).Distinct())
        {
            foreach (var attribute in SafeAttributes(assembly).Where(a => a.Kind == kind && a.Target == "Silo"))
            {
                providers.TryAdd(attribute.Name, attribute.Type);
            }
        }

        return providers;
    }

    /// <summary>Applies the provider named in <paramref name="section"/>, if any; an unknown name is left to the options validator to report.</summary>
    public static void Apply(ISiloBuilder builder, IConfigurationSection section) => Apply(builder, section, Kind);

    /// <summary>Applies the provider of <paramref name="kind"/> named in <paramref name="section"/>, if any.</summary>
    public static void Apply(ISiloBuilder builder, IConfigurationSection section, string kind)
    {
        if (section["ProviderType"] is not { Length: > 0 } providerType || !Registered(kind).TryGetValue(providerType, out var type))
        {
            return;
        }

        var provider = (IProviderBuilder<ISiloBuilder>)Activator.CreateInstance(type)!;
        provider.Configure(builder, null, section);
    }

    private static IEnumerable<RegisterProviderAttribute> SafeAttributes(System.Reflection.Assembly assembly)
    {
        try
        {
            return assembly.GetCustomAttributes(typeof(RegisterProviderAttribute), false).Cast<RegisterProviderAttribute>();
        }
        catch (Exception ex) when (ex is TypeLoadException or FileNotFoundException or FileLoadException)
        {
            return [];
        }
    }
}

/// <summary>The <c>Heap</c> state backend provider: <c>Platform:StateBackend:ProviderType = Heap</c>.</summary>
internal sealed class HeapStateBackendProviderBuilder : IProviderBuilder<ISiloBuilder>
{
    public void Configure(ISiloBuilder builder, string? name, IConfigurationSection configurationSection) => builder.UseHeapStateBackend();
}

/// <summary>
/// The <c>RocksDb</c> state backend provider: <c>Platform:StateBackend:ProviderType = RocksDb</c>; its settings are
/// in <c>Platform:RocksDb</c> (they also apply to jobs that choose RocksDB while the default is the heap).
/// </summary>
internal sealed class RocksDbStateBackendProviderBuilder : IProviderBuilder<ISiloBuilder>
{
    public void Configure(ISiloBuilder builder, string? name, IConfigurationSection configurationSection) => builder.UseRocksDbStateBackend();
}
