using System.Collections.Concurrent;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// Makes chosen grain calls fail in the test silos (which run in this process), as if their target were unreachable
/// for a while: the next <c>times</c> calls of a method on grains whose key starts with a prefix throw before the
/// grain sees them. Tests arm it with a prefix of their own (a job's unique name), so nothing else is affected.
/// </summary>
public static class CallFaults
{
    private static readonly ConcurrentDictionary<(string Method, string KeyPrefix), int> Armed = new();

    /// <summary>The next <paramref name="times"/> calls of <paramref name="method"/> on grains keyed <paramref name="keyPrefix"/>... fail.</summary>
    public static void Fail(string method, string keyPrefix, int times) => Armed[(method, keyPrefix)] = times;

    /// <summary>How many of the armed failures have not happened yet.</summary>
    public static int Remaining(string method, string keyPrefix) => Armed.TryGetValue((method, keyPrefix), out var left) ? left : 0;

    /// <summary>Disarms a fault.</summary>
    public static void Clear(string method, string keyPrefix) => Armed.TryRemove((method, keyPrefix), out _);

    internal static bool TryFire(string method, string grainKey)
    {
        if (Armed.IsEmpty)
        {
            return false;
        }

        foreach (var ((armedMethod, prefix), _) in Armed)
        {
            if (armedMethod != method || !grainKey.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }

            while (Armed.TryGetValue((armedMethod, prefix), out var left) && left > 0)
            {
                if (Armed.TryUpdate((armedMethod, prefix), left - 1, left))
                {
                    return true;
                }
            }
        }

        return false;
    }
}

/// <summary>The incoming call filter that carries out <see cref="CallFaults"/>.</summary>
public sealed class CallFaultFilter : IIncomingGrainCallFilter
{
    /// <inheritdoc />
    public Task Invoke(IIncomingGrainCallContext context)
    {
        if (CallFaults.TryFire(context.MethodName, context.TargetId.Key.ToString()!))
        {
            throw new InvalidOperationException($"Injected by the test: {context.MethodName} on {context.TargetId} is unreachable.");
        }

        return context.Invoke();
    }
}
