using System.Runtime.InteropServices;

namespace Platform.AppHost;

/// <summary>
/// Turns the first Ctrl+C, SIGTERM or SIGHUP into a cancellation, so that the AppHost can stop its silos before it
/// exits. A second signal is left to its default behaviour (the process ends; the silos notice and stop themselves).
/// </summary>
internal sealed class ShutdownSignals : IDisposable
{
    private readonly CancellationTokenSource _requested = new();
    private readonly PosixSignalRegistration[] _registrations;
    private readonly ConsoleOutput _console;

    public ShutdownSignals(ConsoleOutput console)
    {
        _console = console;
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle),
            PosixSignalRegistration.Create(PosixSignal.SIGHUP, Handle),
        ];
    }

    /// <summary>Cancelled when a shutdown signal arrives.</summary>
    public CancellationToken Token => _requested.Token;

    /// <summary>The signal that asked for shutdown, if one did.</summary>
    public PosixSignal? Received { get; private set; }

    /// <summary>The conventional exit code after the signal (128 + its number): 130 for SIGINT, 143 for SIGTERM.</summary>
    public int ExitCode => Received switch
    {
        PosixSignal.SIGHUP => 129,
        PosixSignal.SIGTERM => 143,
        _ => 130,
    };

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }

        _requested.Dispose();
    }

    private void Handle(PosixSignalContext context)
    {
        if (Received is not null)
        {
            return;
        }

        Received = context.Signal;
        context.Cancel = true;
        _console.Info($"{context.Signal} received; stopping");
        _requested.Cancel();
    }
}
