using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Serialization;
using Orleans.Serialization.Cloning;
using Platform.Hosting;
using Platform.State.Heap;
using Platform.State.RocksDb;

namespace Platform.State;

/// <summary>What a backend needs to hold one operator subtask's keyed state.</summary>
/// <param name="KeyGroups">The key groups the subtask owns.</param>
/// <param name="MaxParallelism">The job's max parallelism (the number of key groups).</param>
/// <param name="OperatorName">The operator's name, for errors and directory names.</param>
internal sealed record KeyedStateBackendContext(KeyGroupRange KeyGroups, int MaxParallelism, string OperatorName);

/// <summary>
/// Creates the keyed state backends of one kind. Registered in the silo's services as a keyed singleton under its
/// <see cref="StateBackendKind"/>; a job's tasks resolve the one the job (or the silo default) asks for.
/// </summary>
internal interface IKeyedStateBackendFactory
{
    /// <summary>Creates a backend for keys of type <typeparamref name="TKey"/>.</summary>
    IKeyedStateBackend<TKey> Create<TKey>(KeyedStateBackendContext context)
        where TKey : notnull;
}

/// <summary>The heap backend (Flink's HashMapStateBackend).</summary>
internal sealed class HeapStateBackendFactory(Serializer serializer, DeepCopier copier) : IKeyedStateBackendFactory
{
    public IKeyedStateBackend<TKey> Create<TKey>(KeyedStateBackendContext context)
        where TKey : notnull =>
        new HeapKeyedStateBackend<TKey>(context.KeyGroups, context.MaxParallelism, KeyHashers.Create<TKey>(serializer), serializer, copier, context.OperatorName);
}

/// <summary>The embedded RocksDB backend (Flink's EmbeddedRocksDBStateBackend), with the silo's <see cref="StreamingPlatformOptions.RocksDb"/> options.</summary>
internal sealed class RocksDbStateBackendFactory(Serializer serializer, IOptions<StreamingPlatformOptions> options) : IKeyedStateBackendFactory
{
    public IKeyedStateBackend<TKey> Create<TKey>(KeyedStateBackendContext context)
        where TKey : notnull =>
        new RocksDbKeyedStateBackend<TKey>(context.KeyGroups, context.MaxParallelism, KeyHashers.Create<TKey>(serializer), serializer, options.Value.RocksDb, context.OperatorName);
}

/// <summary>Registers the built-in backends.</summary>
internal static class KeyedStateBackendRegistration
{
    public static IServiceCollection AddBuiltInStateBackends(this IServiceCollection services)
    {
        services.AddKeyedSingleton<IKeyedStateBackendFactory, HeapStateBackendFactory>(StateBackendKind.Heap);
        services.AddKeyedSingleton<IKeyedStateBackendFactory, RocksDbStateBackendFactory>(StateBackendKind.RocksDb);
        return services;
    }
}
