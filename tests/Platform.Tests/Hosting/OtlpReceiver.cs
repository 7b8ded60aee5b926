using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;

namespace Platform.Tests.Hosting;

/// <summary>
/// A minimal OTLP/HTTP receiver on a free loopback port: it keeps every request's path and (decompressed) protobuf body
/// and answers 200 with an empty body, which is a valid empty Export*ServiceResponse.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentQueue<(string Path, byte[] Body)> _requests = new();
    private readonly Task _loop;

    public OtlpReceiver()
    {
        Port = Ports.Free(1)[0];
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    public int Port { get; }

    /// <summary>The base endpoint to give an exporter (OTEL_EXPORTER_OTLP_ENDPOINT).</summary>
    public string Endpoint => $"http://127.0.0.1:{Port}";

    /// <summary>The bodies received on <paramref name="path"/> (e.g. <c>/v1/traces</c>).</summary>
    public IReadOnlyList<byte[]> Bodies(string path) => [.. _requests.Where(r => r.Path == path).Select(r => r.Body)];

    /// <summary>The paths requested so far.</summary>
    public IReadOnlyCollection<string> Paths => [.. _requests.Select(r => r.Path).Distinct()];

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        try
        {
            await _loop;
        }
        catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
        {
            // Stopping the listener ends the loop's pending GetContextAsync.
        }
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            using var body = new MemoryStream();
            var input = context.Request.Headers["Content-Encoding"] == "gzip"
                ? new GZipStream(context.Request.InputStream, CompressionMode.Decompress)
                : context.Request.InputStream;
            await input.CopyToAsync(body);
            _requests.Enqueue((context.Request.Url!.AbsolutePath, body.ToArray()));
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-protobuf";
            context.Response.ContentLength64 = 0;
            context.Response.Close();
        }
    }
}
