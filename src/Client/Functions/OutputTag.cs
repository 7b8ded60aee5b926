namespace Platform.Functions;

/// <summary>
/// Names a side output of an operator and the type of its records (Flink's <c>OutputTag</c>): a second stream an
/// operator emits beside its main one, taken with <see cref="Graph.DataStream{T}.GetSideOutput{TSide}"/>. Windows
/// send their late records to one (<see cref="Windowing.WindowedStream{T, TKey}.SideOutputLateData"/>).
/// </summary>
/// <typeparam name="T">The type of the side output's records.</typeparam>
public sealed class OutputTag<T>
{
    /// <summary>Creates a tag named <paramref name="id"/>, unique among the side outputs of one operator.</summary>
    public OutputTag(string id)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(id);
        Id = id;
    }

    /// <summary>The side output's name.</summary>
    public string Id { get; }

    /// <inheritdoc />
    public override string ToString() => $"OutputTag<{typeof(T).Name}>({Id})";
}
