using Microsoft.Extensions.Options;

namespace Platform.Silo.Hosting;

/// <summary>Turns an exception that stopped the silo from starting into one paragraph on stderr and an exit code.</summary>
internal static class StartupFailure
{
    /// <summary>The exit code when a setting is invalid.</summary>
    public const int ConfigurationErrorExitCode = 2;

    /// <summary>The exit code when the silo failed to start for another reason.</summary>
    public const int StartupErrorExitCode = 1;

    /// <summary>
    /// Writes the error to <paramref name="error"/> and returns the process exit code; the stack trace only when the host
    /// has not <paramref name="alreadyLogged"/> the exception.
    /// </summary>
    public static int Report(Exception exception, TextWriter error, bool alreadyLogged)
    {
        var problems = ConfigurationProblems(exception);
        if (problems.Count > 0)
        {
            error.WriteLine(
                $"Platform.Silo did not start because its configuration is invalid. {string.Join(" ", problems.Select(EndWithPeriod))} " +
                "Settings come from appsettings.json, environment variables (':' becomes '__', as in Orleans__Endpoints__SiloPort) " +
                "and command-line arguments (--Orleans:Endpoints:SiloPort=11111).");
            return ConfigurationErrorExitCode;
        }

        if (Flatten(exception).OfType<SiloStartupException>().FirstOrDefault() is { } startup)
        {
            // Says what is wrong and which setting leads there; the stack trace adds nothing.
            error.WriteLine($"Platform.Silo did not start: {EndWithPeriod(startup.Message)}");
            return StartupErrorExitCode;
        }

        var root = Innermost(exception);
        var hint = Flatten(exception).Any(e => e is Microsoft.AspNetCore.Connections.AddressInUseException)
            ? $" The HTTP address comes from --urls, ASPNETCORE_URLS or the Urls setting (default {SiloConfiguration.DefaultUrl})."
            : "";
        error.WriteLine($"Platform.Silo did not start: {root.GetType().Name}: {EndWithPeriod(root.Message)}{hint}");
        if (!alreadyLogged)
        {
            error.WriteLine(exception);
        }

        return StartupErrorExitCode;
    }

    private static List<string> ConfigurationProblems(Exception exception)
    {
        var problems = new List<string>();
        foreach (var ex in Flatten(exception))
        {
            switch (ex)
            {
                case SiloConfigurationException silo:
                    problems.AddRange(silo.Problems);
                    break;
                case OptionsValidationException options:
                    problems.AddRange(options.Failures);
                    break;
                case OrleansConfigurationException orleans:
                    problems.Add($"Orleans: {orleans.Message}");
                    break;
            }
        }

        return [.. problems.Distinct()];
    }

    private static IEnumerable<Exception> Flatten(Exception exception)
    {
        yield return exception;
        var inner = exception is AggregateException aggregate ? aggregate.InnerExceptions : (IEnumerable<Exception>)(exception.InnerException is { } i ? [i] : []);
        foreach (var child in inner)
        {
            foreach (var descendant in Flatten(child))
            {
                yield return descendant;
            }
        }
    }

    private static Exception Innermost(Exception exception)
    {
        while (exception is AggregateException { InnerExceptions.Count: 1 } or System.Reflection.TargetInvocationException { InnerException: not null })
        {
            exception = exception.InnerException!;
        }

        return exception;
    }

    private static string EndWithPeriod(string sentence) => sentence.TrimEnd().EndsWith('.') ? sentence.TrimEnd() : sentence.TrimEnd() + ".";
}
