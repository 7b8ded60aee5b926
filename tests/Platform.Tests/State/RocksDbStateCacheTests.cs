using Microsoft.Extensions.DependencyInjection;
using Platform.State;
using Platform.State.RocksDb;

namespace Platform.Tests.State;

/// <summary>The conformance suite against RocksDB with its write-back cache off, so every access reaches RocksDB.</summary>
public sealed class RocksDbUncachedKeyedStateTests : KeyedStateConformanceTests, IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "platform-tests", "rocksdb-uncached", Guid.NewGuid().ToString("N"));

    internal override IKeyedStateBackend<TKey> CreateBackend<TKey>(KeyGroupRange range) =>
        new RocksDbKeyedStateBackend<TKey>(range, MaxParallelism, KeyHashers.Create<TKey>(Serializer), Serializer, Services.GetRequiredService<Orleans.Serialization.Session.SerializerSessionPool>(), new RocksDbStateOptions { LocalDirectory = _directory, StateCacheSize = 0 }, "test-operator");

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }
}

/// <summary>The conformance suite against RocksDB with a cache so small that it flushes and empties itself all the time.</summary>
public sealed class RocksDbTinyCacheKeyedStateTests : KeyedStateConformanceTests, IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "platform-tests", "rocksdb-tiny-cache", Guid.NewGuid().ToString("N"));

    internal override IKeyedStateBackend<TKey> CreateBackend<TKey>(KeyGroupRange range) =>
        new RocksDbKeyedStateBackend<TKey>(range, MaxParallelism, KeyHashers.Create<TKey>(Serializer), Serializer, Services.GetRequiredService<Orleans.Serialization.Session.SerializerSessionPool>(), new RocksDbStateOptions { LocalDirectory = _directory, StateCacheSize = 2048 }, "test-operator");

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }
}
