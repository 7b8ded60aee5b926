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
internal sealed class HeapStateBackendFactory(Serializer serializer, Orleans.Serialization.Session.SerializerSessionPool sessions, DeepCopier copier) : IKeyedStateBackendFactory
{
    public IKeyedStateBackend<TKey> Create<TKey>(KeyedStateBackendContext context)
        where TKey : notnull =>
        new HeapKeyedStateBackend<TKey>(context.KeyGroups, context.MaxParallelism, KeyHashers.Create<TKey>(serializer), serializer, sessions, copier, context.OperatorName);
}

/// <summary>
/// The embedded RocksDB backend (Flink's EmbeddedRocksDBStateBackend), with the silo's <see cref="StreamingPlatformOptions.RocksDb"/>
/// options. Each silo process works in its own subdirectory of the local directory, named after the process; when a
/// silo starts using RocksDB it deletes the subdirectories of processes that no longer run (a crashed silo cannot
/// delete its own), so disk space is not lost to crashes.
/// </summary>
internal sealed class RocksDbStateBackendFactory : IKeyedStateBackendFactory
{
    private readonly Serializer _serializer;
    private readonly Orleans.Serialization.Session.SerializerSessionPool _sessions;
    private readonly RocksDbStateOptions _options;

    public RocksDbStateBackendFactory(Serializer serializer, Orleans.Serialization.Session.SerializerSessionPool sessions, IOptions<StreamingPlatformOptions> options)
    {
        _serializer = serializer;
        _sessions = sessions;
        var configured = options.Value.RocksDb;
        var root = Path.GetFullPath(configured.LocalDirectory);
        var own = ProcessDirectories.Claim(root);
        ProcessDirectories.DeleteThoseOfEndedProcesses(root);
        _options = new RocksDbStateOptions
        {
            LocalDirectory = own,
            BlockCacheSize = configured.BlockCacheSize,
            WriteBufferSize = configured.WriteBufferSize,
            MaxWriteBufferNumber = configured.MaxWriteBufferNumber,
            IncrementalCheckpoints = configured.IncrementalCheckpoints,
            StateCacheSize = configured.StateCacheSize,
        };
    }

    public IKeyedStateBackend<TKey> Create<TKey>(KeyedStateBackendContext context)
        where TKey : notnull =>
        new RocksDbKeyedStateBackend<TKey>(context.KeyGroups, context.MaxParallelism, KeyHashers.Create<TKey>(_serializer), _serializer, _sessions, _options, context.OperatorName);
}

/// <summary>
/// Per-process working directories (<c>process-{pid}-{random}</c>), each holding a lock file that its process keeps
/// open with an exclusive lock for as long as it lives; a directory whose lock can be taken belongs to a process that
/// is gone (the operating system releases the lock when a process dies, however it dies).
/// </summary>
internal static class ProcessDirectories
{
    private const string Prefix = "process-";
    private const string LockFileName = ".lock";
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, FileStream> Held = new(StringComparer.Ordinal);

    /// <summary>This process's directory name.</summary>
    public static string NameOfThisProcess { get; } = $"{Prefix}{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>Creates this process's directory under <paramref name="root"/> and locks it for the process's lifetime.</summary>
    public static string Claim(string root)
    {
        var directory = Path.Combine(root, NameOfThisProcess);
        lock (Gate)
        {
            if (!Held.ContainsKey(root))
            {
                Directory.CreateDirectory(directory);
                Held[root] = new FileStream(Path.Combine(directory, LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
        }

        return directory;
    }

    /// <summary>Deletes the process directories under <paramref name="root"/> whose process is gone.</summary>
    public static void DeleteThoseOfEndedProcesses(string root)
    {
        if (!Directory.Exists(root))
        {
            return;
        }

        foreach (var directory in Directory.EnumerateDirectories(root, Prefix + "*"))
        {
            if (Path.GetFileName(directory) == NameOfThisProcess)
            {
                continue;
            }

            try
            {
                // Taking the lock proves its owner is gone; without a lock file the directory may be being created.
                using (new FileStream(Path.Combine(directory, LockFileName), FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                {
                }

                RocksDbIncrementalSnapshot.TryDeleteDirectory(directory);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Locked (its process lives), missing, or not ours to delete.
            }
        }
    }
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
