using Platform.Functions;
using Platform.State;

namespace Platform.Tests.Infrastructure;

/// <summary>Throws on the record equal to <see cref="FailOn"/>.</summary>
[GenerateSerializer]
public sealed class ThrowingMap : IMapFunction<long, long>
{
    [Id(0)] public long FailOn { get; set; }

    public long Map(long value) => value == FailOn
        ? throw new InvalidOperationException($"boom at record {value}")
        : value;
}

[GenerateSerializer]
public sealed class Identity<T> : IMapFunction<T, T>
{
    public T Map(T value) => value;
}

[GenerateSerializer]
public sealed class ToText : IMapFunction<long, string>
{
    public string Map(long value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

[GenerateSerializer]
public sealed class LongKey : IKeySelector<long, long>
{
    public long GetKey(long value) => value;
}

[GenerateSerializer]
public sealed class ModuloKey : IKeySelector<long, long>
{
    [Id(0)] public long Modulo { get; set; } = 10;

    public long GetKey(long value) => value % Modulo;
}

[GenerateSerializer]
public sealed class EvenOnly : IFilterFunction<long>
{
    public bool Filter(long value) => value % 2 == 0;
}

/// <summary>Sums values per key and emits (key, running sum).</summary>
[GenerateSerializer]
public sealed class SumPerKey : KeyedProcessFunction<long, long, KeyValuePair<long, long>>
{
    [NonSerialized] private IValueState<long>? _sum;

    public override void Open(IRuntimeContext context) => _sum = context.GetState(new ValueStateDescriptor<long>("sum"));

    public override void ProcessElement(long value, IKeyedContext<long> context, ICollector<KeyValuePair<long, long>> output)
    {
        var sum = _sum!.Value + value;
        _sum.Update(sum);
        output.Collect(new KeyValuePair<long, long>(context.CurrentKey, sum));
    }
}

/// <summary>Holds the task for a while per record so that a job is still running when a test acts on it.</summary>
[GenerateSerializer]
public sealed class SlowMap : IMapFunction<long, long>
{
    [Id(0)] public int MillisecondsPerRecord { get; set; } = 10;

    public long Map(long value)
    {
        Thread.Sleep(MillisecondsPerRecord);
        return value;
    }
}

/// <summary>Passes records through; only subtask <see cref="SlowSubtask"/> sleeps per record, so the barriers it forwards trail the other subtasks'.</summary>
[GenerateSerializer]
public sealed class SlowSubtaskMap : IMapFunction<long, long>, IRichFunction
{
    [Id(0)] public int SlowSubtask { get; set; }

    [Id(1)] public int MillisecondsPerRecord { get; set; } = 1;

    [NonSerialized] private bool _slow;

    public void Open(IRuntimeContext context) => _slow = context.SubtaskIndex == SlowSubtask;

    public void Close()
    {
    }

    public long Map(long value)
    {
        if (_slow)
        {
            Thread.Sleep(MillisecondsPerRecord);
        }

        return value;
    }
}
