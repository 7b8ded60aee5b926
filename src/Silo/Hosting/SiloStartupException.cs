namespace Platform.Silo.Hosting;

/// <summary>The silo cannot start because something it depends on is not there (for example its Redis server); the message names the setting that leads to it.</summary>
internal sealed class SiloStartupException(string message, Exception? innerException = null) : Exception(message, innerException);
