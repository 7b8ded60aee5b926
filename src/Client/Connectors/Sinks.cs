using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

namespace Platform.Connectors;

/// <summary>
/// Collects a stream's records in the cluster so that a client can read them with
/// <see cref="Client.PlatformClient.GetCollectedAsync{T}"/> (for tests and demos; everything is held in memory).
/// </summary>
[GenerateSerializer, Alias("platform.CollectSink`1")]
public sealed class CollectSink<T> : ISinkFunction<T>
{
    /// <inheritdoc />
    public ISinkWriter<T> CreateWriter(SinkWriterContext context) => new Writer(context);

    private sealed class Writer(SinkWriterContext context) : ISinkWriter<T>
    {
        private readonly Serializer<T[]> _serializer = context.Services.GetRequiredService<Serializer<T[]>>();
        private readonly ICollectSinkGrain _results = context.Services.GetRequiredService<IGrainFactory>()
            .GetGrain<ICollectSinkGrain>(CollectSinkKey.For(context.JobId, context.OperatorUid));
        private readonly List<T> _buffer = [];

        public void Write(T record) => _buffer.Add(record);

        public async ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            if (_buffer.Count == 0)
            {
                return;
            }

            var payload = _serializer.SerializeToArray([.. _buffer]);
            var count = _buffer.Count;
            _buffer.Clear();
            await _results.Append(context.Attempt, context.SubtaskIndex, payload, count);
        }

        public ValueTask FinishAsync(CancellationToken cancellationToken) => FlushAsync(cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>Drops every record (for benchmarks and jobs whose effect is their state).</summary>
[GenerateSerializer, Alias("platform.DiscardingSink`1")]
public sealed class DiscardingSink<T> : ISinkFunction<T>
{
    /// <inheritdoc />
    public ISinkWriter<T> CreateWriter(SinkWriterContext context) => Writer.Instance;

    private sealed class Writer : ISinkWriter<T>
    {
        public static readonly Writer Instance = new();

        public void Write(T record)
        {
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask FinishAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>
/// Writes each record's <see cref="object.ToString"/> as a UTF-8 line into <c>{Directory}/part-{subtask}</c>, one file
/// per parallel subtask, on the silo's file system. Superseded by <see cref="FileSink{T}"/>, which is exactly-once.
/// </summary>
/// <remarks>
/// At least once: the file is appended to and never truncated, so after a restart the records replayed since the
/// checkpoint appear again after the output written before the failure, and readers see lines before any checkpoint
/// completed. Kept for jobs that already use it; new jobs should use <see cref="FileSink{T}"/>.
/// </remarks>
[GenerateSerializer, Alias("platform.TextFileSink`1")]
public sealed class TextFileSink<T> : ISinkFunction<T>, IValidatingFunction, IFileSystemFunction
{
    /// <inheritdoc />
    IEnumerable<string> IFileSystemFunction.FileSystemPaths => [Directory];

    /// <summary>Creates a sink; set <see cref="Directory"/>.</summary>
    public TextFileSink()
    {
    }

    /// <summary>Creates a sink writing into <paramref name="directory"/>.</summary>
    public TextFileSink(string directory) => Directory = directory;

    /// <summary>The output directory, as the silo sees it; created when missing.</summary>
    [Id(0)] public string Directory { get; set; } = "";

    /// <summary>The path of the part file written by a subtask.</summary>
    public static string PartFile(string directory, int subtaskIndex) => Path.Combine(directory, $"part-{subtaskIndex}");

    /// <inheritdoc />
    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Directory))
        {
            return ["The text file sink has no directory: set TextFileSink.Directory to where part files go."];
        }

        try
        {
            var full = Path.GetFullPath(Directory);
            if (File.Exists(full))
            {
                return [$"The output path '{full}' is a file; the text file sink needs a directory."];
            }

            System.IO.Directory.CreateDirectory(full);
            return [];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return [$"The output directory '{Directory}' cannot be created: {ex.Message}"];
        }
    }

    /// <inheritdoc />
    public ISinkWriter<T> CreateWriter(SinkWriterContext context) => new Writer(PartFile(Directory, context.SubtaskIndex), context);

    private sealed class Writer : ISinkWriter<T>
    {
        private readonly StreamWriter _writer;

        public Writer(string path, SinkWriterContext context)
        {
            try
            {
                System.IO.Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
                // Append: a restarted attempt must not truncate what the attempts before it wrote.
                _writer = new StreamWriter(path, append: true, new UTF8Encoding(false), 64 * 1024);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"Sink '{context.OperatorName}' cannot write output file '{Path.GetFullPath(path)}': {ex.Message}", ex);
            }
        }

        public void Write(T record) => _writer.WriteLine(record?.ToString());

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public async ValueTask FinishAsync(CancellationToken cancellationToken) => await _writer.FlushAsync(cancellationToken);

        public ValueTask DisposeAsync() => _writer.DisposeAsync();
    }
}

/// <summary>Holds the records a <see cref="CollectSink{T}"/> collected, per job and sink uid.</summary>
[Alias("platform.ICollectSinkGrain")]
public interface ICollectSinkGrain : IGrainWithStringKey
{
    /// <summary>Appends a batch of serialized records written by one subtask.</summary>
    Task Append(int attempt, int subtaskIndex, byte[] payload, int count);

    /// <summary>Returns every batch collected so far, in arrival order per subtask.</summary>
    Task<List<byte[]>> ReadAll();

    /// <summary>Drops everything collected.</summary>
    Task Clear();
}

/// <summary>Names the grain that holds a collect sink's results.</summary>
public static class CollectSinkKey
{
    /// <summary>The key of the results of sink <paramref name="sinkUid"/> in job <paramref name="jobId"/>.</summary>
    public static string For(string jobId, string sinkUid) => $"{jobId}/{sinkUid}";
}
