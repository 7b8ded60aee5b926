namespace Platform.Hosting;

/// <summary>The Orleans streams the platform uses.</summary>
public static class PlatformStreams
{
    /// <summary>The stream provider of the jobs' control streams.</summary>
    public const string ProviderName = "platform-control";

    /// <summary>The namespace of each job's control stream (the stream key is the job id); carries checkpoint triggers.</summary>
    public const string CheckpointTriggerNamespace = "platform-checkpoint-triggers";

    /// <summary>The grain storage that keeps job managers', coordinators' and the job registry's state.</summary>
    public const string StateStorageName = "platform-state";
}
