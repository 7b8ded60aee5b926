using System.Globalization;
using Platform.Connectors;

namespace Platform.Tests.Infrastructure;

/// <summary>
/// A minimal two-phase-commit sink over real files, for tests of the runtime's commit protocol (the connectors have
/// their own tests): a transaction is a list of numbers in memory; pre-commit writes it to <c>staged/</c>; commit
/// renames it into <c>committed/</c> (idempotent) and appends a line to <c>commits.log</c>; lingering staged files of
/// the subtask are deleted on start. <see cref="ReadCommitted"/> is what a reader of the output sees.
/// </summary>
[GenerateSerializer, Alias("tests.LedgerSink")]
public sealed class LedgerSink : ITwoPhaseCommittingSink<long, LedgerCommittable>
{
    private static readonly Lock LogLock = new();

    [Id(0)] public string Directory { get; set; } = "";

    /// <summary>Every number in a committed file (of one job, when given), in no particular order.</summary>
    public static List<long> ReadCommitted(string directory, string? jobId = null) => !System.IO.Directory.Exists(Path.Combine(directory, "committed")) ? [] :
        [.. System.IO.Directory.EnumerateFiles(Path.Combine(directory, "committed"), jobId is null ? "*" : jobId.Replace('/', '_') + ".*").SelectMany(File.ReadAllLines).Where(l => l.Length > 0).Select(l => long.Parse(l, CultureInfo.InvariantCulture))];

    /// <summary>The staged files left (pre-committed, never committed nor aborted).</summary>
    public static string[] Staged(string directory) => System.IO.Directory.Exists(Path.Combine(directory, "staged")) ? System.IO.Directory.GetFiles(Path.Combine(directory, "staged")) : [];

    /// <summary>The commits made, one line each: checkpoint id, subtask, attempt, file.</summary>
    public static string[] Commits(string directory) =>
        File.Exists(Path.Combine(directory, "commits.log")) ? File.ReadAllLines(Path.Combine(directory, "commits.log")) : [];

    public IPrecommittingSinkWriter<long, LedgerCommittable> CreatePrecommittingWriter(SinkWriterContext context) => new Writer(Directory, context);

    public ISinkCommitter<LedgerCommittable> CreateCommitter(SinkWriterContext context) => new Committer(Directory, context);

    private static string Prefix(SinkWriterContext context) => $"{context.JobId.Replace('/', '_')}.{context.OperatorUid}.{context.SubtaskIndex}.";

    private sealed class Writer(string directory, SinkWriterContext context) : IPrecommittingSinkWriter<long, LedgerCommittable>
    {
        private readonly List<long> _open = [];
        private int _sequence;

        public void Write(long record) => _open.Add(record);

        public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask FinishAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public async ValueTask<IReadOnlyList<LedgerCommittable>> PrepareCommitAsync(long checkpointId, CancellationToken cancellationToken)
        {
            if (_open.Count == 0)
            {
                return [];
            }

            var name = $"{Prefix(context)}a{context.Attempt}.{_sequence++}";
            var staged = Path.Combine(directory, "staged", name);
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(staged)!);
            await File.WriteAllLinesAsync(staged + ".tmp", _open.Select(n => n.ToString(CultureInfo.InvariantCulture)), cancellationToken);
            File.Move(staged + ".tmp", staged);
            _open.Clear();
            return [new LedgerCommittable { Name = name }];
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private sealed class Committer(string directory, SinkWriterContext context) : ISinkCommitter<LedgerCommittable>
    {
        public Task CommitAsync(long checkpointId, IReadOnlyList<LedgerCommittable> committables, CancellationToken cancellationToken)
        {
            var committedDirectory = Path.Combine(directory, "committed");
            System.IO.Directory.CreateDirectory(committedDirectory);
            foreach (var committable in committables)
            {
                var staged = Path.Combine(directory, "staged", committable.Name);
                var committed = Path.Combine(committedDirectory, committable.Name);
                if (File.Exists(committed))
                {
                    continue; // Committed before: a commit is idempotent.
                }

                if (!File.Exists(staged))
                {
                    throw new InvalidOperationException($"Staged file '{staged}' is gone and was never committed: output lost.");
                }

                File.Move(staged, committed);
                lock (LogLock)
                {
                    File.AppendAllText(Path.Combine(directory, "commits.log"), $"{checkpointId} {context.SubtaskIndex} {context.Attempt} {committable.Name}\n");
                }
            }

            return Task.CompletedTask;
        }

        public Task AbortLingeringTransactionsAsync(IReadOnlyCollection<LedgerCommittable> recovered, CancellationToken cancellationToken)
        {
            var stagedDirectory = Path.Combine(directory, "staged");
            if (!System.IO.Directory.Exists(stagedDirectory))
            {
                return Task.CompletedTask;
            }

            var keep = recovered.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var file in System.IO.Directory.GetFiles(stagedDirectory, Prefix(context) + "*"))
            {
                if (!keep.Contains(Path.GetFileName(file)))
                {
                    File.Delete(file);
                }
            }

            return Task.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>A staged file of a <see cref="LedgerSink"/>.</summary>
[GenerateSerializer, Immutable, Alias("tests.LedgerCommittable")]
public sealed record LedgerCommittable
{
    [Id(0)] public required string Name { get; init; }
}
