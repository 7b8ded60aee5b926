using System.Buffers;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using Platform.Checkpointing;

namespace Platform.Storage;

/// <summary>
/// The <c>_metadata</c> file: JSON <c>{"format":..., "version":1, "checksum":"&lt;xxh64 hex&gt;", "checkpoint":{...}}</c>,
/// where the checksum covers the exact bytes of the <c>checkpoint</c> value, so a truncated or edited file is detected.
/// </summary>
internal static class MetadataFormat
{
    public const string FileName = "_metadata";
    private const string FormatName = "platform-checkpoint-metadata";

    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = false,
    };

    public static byte[] Serialize(CheckpointMetadata metadata)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(metadata, Options);
        var checksum = XxHash64.HashToUInt64(body);
        var buffer = new ArrayBufferWriter<byte>(body.Length + 128);
        buffer.Write(Encoding.UTF8.GetBytes($"{{\"format\":\"{FormatName}\",\"version\":{CheckpointMetadata.CurrentVersion},\"checksum\":\"{checksum:x16}\",\"checkpoint\":"));
        buffer.Write(body);
        buffer.Write("}\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    public static CheckpointMetadata Deserialize(byte[] content, string path)
    {
        try
        {
            using var document = JsonDocument.Parse(content);
            var root = document.RootElement;
            if (!root.TryGetProperty("format", out var format) || format.GetString() != FormatName)
            {
                throw new CorruptCheckpointException(path, $"it is not a checkpoint metadata file (no \"format\": \"{FormatName}\").");
            }

            var version = root.GetProperty("version").GetInt32();
            if (version != CheckpointMetadata.CurrentVersion)
            {
                throw new CorruptCheckpointException(path, $"its format version {version} is not supported (this silo reads version {CheckpointMetadata.CurrentVersion}).");
            }

            var expected = root.GetProperty("checksum").GetString();
            var body = root.GetProperty("checkpoint");
            var raw = Encoding.UTF8.GetBytes(body.GetRawText());
            var actual = XxHash64.HashToUInt64(raw).ToString("x16");
            if (!string.Equals(expected, actual, StringComparison.Ordinal))
            {
                throw new CorruptCheckpointException(path, $"its checksum is {actual} but the file says {expected}; it was altered or partly written.");
            }

            return body.Deserialize<CheckpointMetadata>(Options)
                ?? throw new CorruptCheckpointException(path, "its checkpoint record is null.");
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new CorruptCheckpointException(path, $"it is not valid checkpoint metadata JSON ({ex.Message}); it may be truncated.");
        }
    }

    public static ulong Checksum(ReadOnlySpan<byte> content) => XxHash64.HashToUInt64(content);

    public static string CheckpointDirectoryName(long checkpointId) => $"chk-{checkpointId}";

    public static bool TryParseCheckpointDirectory(string name, out long checkpointId) =>
        long.TryParse(name.StartsWith("chk-", StringComparison.Ordinal) ? name[4..] : "", out checkpointId);
}
