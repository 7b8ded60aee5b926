using Orleans.Concurrency;
using Platform.Storage;

namespace Platform.Checkpointing;

/// <summary>Deletes savepoints under the silos' savepoint root, a directory or the blob savepoint root (Flink's <c>savepoint --dispose</c>).</summary>
[StatelessWorker]
internal sealed class SavepointAdminGrain(SavepointLocations locations) : Grain, ISavepointAdminGrain
{
    public Task Dispose(string path) => locations.DisposeAsync(path);
}
