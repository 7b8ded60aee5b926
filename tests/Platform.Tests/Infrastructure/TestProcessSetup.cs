using System.Runtime.CompilerServices;

namespace Platform.Tests.Infrastructure;

internal static class TestProcessSetup
{
    /// <summary>
    /// Several in-process silos share this process's thread pool, and some tests run deliberately blocking operators
    /// (Thread.Sleep per record); on a 2-core machine the pool starts with 2 threads and grows slowly, which would
    /// starve Orleans' messaging and time calls out. Production silos run one per process.
    /// </summary>
    [ModuleInitializer]
    internal static void RaiseThreadPoolMinimum()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
    }
}
