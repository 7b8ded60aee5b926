namespace Platform.Silo.Hosting;

/// <summary>The silo's configuration is invalid; <see cref="Problems"/> names every bad setting.</summary>
internal sealed class SiloConfigurationException : Exception
{
    public SiloConfigurationException(IReadOnlyList<string> problems, Exception? innerException = null)
        : base(string.Join(" ", problems), innerException)
    {
        Problems = problems;
    }

    /// <summary>Every problem, one sentence each, each naming its setting.</summary>
    public IReadOnlyList<string> Problems { get; }
}
