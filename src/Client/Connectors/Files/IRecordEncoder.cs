namespace Platform.Connectors;

/// <summary>
/// Turns a record into the bytes a <see cref="FileSink{T}"/> appends to its part file (Flink's <c>Encoder</c>). It is
/// serialized into the job graph, so an implementation needs <c>[GenerateSerializer]</c>.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
public interface IRecordEncoder<in T>
{
    /// <summary>Writes <paramref name="record"/> to <paramref name="output"/>, including any separator after it.</summary>
    void Encode(T record, Stream output);
}
