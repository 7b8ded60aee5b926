using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Platform.Connectors;
using Platform.Graph;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

[Collection(ClusterCollection.Name)]
public sealed class JobValidationTests(ClusterFixture fixture)
{
    private Serializer Serializer => fixture.Cluster.Client.ServiceProvider.GetRequiredService<Serializer>();

    private static StreamJobBuilder ValidJob(int maxParallelism = 128)
    {
        var job = new StreamJobBuilder("valid") { MaxParallelism = maxParallelism };
        job.AddSource(new SequenceSource { Count = 10 }, "numbers").Uid("numbers")
            .Map(new Identity<long>(), "identity").Uid("identity")
            .KeyBy(new LongKey())
            .Process(new SumPerKey(), "sum").Uid("sum")
            .SinkTo(new DiscardingSink<KeyValuePair<long, long>>(), "discard").Uid("discard");
        return job;
    }

    private async Task<JobValidationException> Refused(JobGraph graph) =>
        await Assert.ThrowsAsync<JobValidationException>(() => fixture.Platform.SubmitAsync(graph));

    [Fact]
    public async Task A_valid_graph_is_accepted()
    {
        var jobId = await fixture.Platform.SubmitAsync(ValidJob());
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, TimeSpan.FromMinutes(1));
        Assert.Equal(JobState.Finished, status.State);
    }

    [Fact]
    public async Task Unknown_record_and_function_types_are_refused()
    {
        var graph = ValidJob().ToJobGraph(Serializer);
        var identity = graph.Vertices.Single(v => v.Uid == "identity");
        identity.OutputType = "No.Such.Record, No.Such.Assembly";
        identity.Function = new FunctionSpec { TypeName = "No.Such.Function, No.Such.Assembly", Payload = [1, 2, 3] };

        var error = await Refused(graph);

        Assert.Contains(error.Problems, p => p.Contains("'No.Such.Record, No.Such.Assembly'") && p.Contains("not known on the silo"));
        Assert.Contains(error.Problems, p => p.Contains("'No.Such.Function, No.Such.Assembly'") && p.Contains("not known on the silo"));
    }

    [Fact]
    public async Task Mismatched_types_between_operators_are_refused()
    {
        var graph = ValidJob().ToJobGraph(Serializer);
        graph.Vertices.Single(v => v.Uid == "identity").InputTypes = [StreamJobBuilder.FormatType(typeof(string))];

        var error = await Refused(graph);

        Assert.Contains(error.Problems, p => p.StartsWith("Mismatched types") && p.Contains("'numbers'") && p.Contains("Int64") && p.Contains("String"));
        // The function no longer matches the declared input type either.
        Assert.Contains(error.Problems, p => p.Contains("'identity'") && p.Contains("not IMapFunction<String, Int64>"));
    }

    [Fact]
    public async Task A_keyed_function_without_KeyBy_is_refused()
    {
        var graph = ValidJob().ToJobGraph(Serializer);
        var intoSum = graph.Edges.Single(e => e.TargetId == graph.Vertices.Single(v => v.Uid == "sum").Id);
        intoSum.Partitioning = Partitioning.Forward;
        intoSum.KeySelector = null;
        intoSum.KeyType = null;

        var error = await Refused(graph);

        Assert.Contains(error.Problems, p => p.Contains("'sum'") && p.Contains("keyed function") && p.Contains("KeyBy"));
    }

    [Fact]
    public async Task Duplicate_uids_are_refused()
    {
        var job = new StreamJobBuilder("duplicates");
        job.AddSource(new SequenceSource { Count = 10 }, "numbers").Uid("same")
            .Map(new Identity<long>(), "identity").Uid("same")
            .SinkTo(new DiscardingSink<long>(), "discard");

        var error = await Assert.ThrowsAsync<JobValidationException>(() => fixture.Platform.SubmitAsync(job));

        Assert.Contains(error.Problems, p => p.Contains("Uid 'same'") && p.Contains("'numbers'") && p.Contains("'identity'"));
    }

    [Fact]
    public async Task Parallelism_above_max_parallelism_is_refused()
    {
        var job = ValidJob(maxParallelism: 8);
        var graph = job.ToJobGraph(Serializer);
        graph.Vertices.Single(v => v.Uid == "sum").Parallelism = 9;
        graph.Vertices.Single(v => v.Uid == "discard").Parallelism = 9;

        var error = await Refused(graph);

        Assert.Contains(error.Problems, p => p.Contains("'sum'") && p.Contains("parallelism 9") && p.Contains("max parallelism 8"));
    }

    [Fact]
    public async Task A_cycle_is_refused()
    {
        var graph = ValidJob().ToJobGraph(Serializer);
        var identity = graph.Vertices.Single(v => v.Uid == "identity");
        var sum = graph.Vertices.Single(v => v.Uid == "sum");
        identity.InputTypes = [StreamJobBuilder.FormatType(typeof(long))];
        graph.Edges.Add(new JobEdge { SourceId = sum.Id, TargetId = identity.Id, Partitioning = Partitioning.Rebalance });

        var error = await Refused(graph);

        Assert.Contains(error.Problems, p => p.StartsWith("The job graph has a cycle") && p.Contains("'identity'") && p.Contains("'sum'"));
    }

    [Fact]
    public async Task One_error_lists_every_problem_found()
    {
        var job = new StreamJobBuilder("many-problems") { MaxParallelism = 4 };
        var missing = Path.Combine(TestData.Root, "no-such-dir", "input.txt");
        job.AddSource(new TextFileSource(missing), "lines").Uid("x")
            .FlatMap(new Tokenizer(), "tokenize").Uid("x").SetParallelism(5)
            .SinkTo(new DiscardingSink<string>(), "discard").SetParallelism(5);

        var error = await Assert.ThrowsAsync<JobValidationException>(() => fixture.Platform.SubmitAsync(job));

        Assert.Contains(error.Problems, p => p.Contains("Uid 'x'"));
        Assert.Contains(error.Problems, p => p.Contains("'tokenize'") && p.Contains("parallelism 5"));
        Assert.Contains(error.Problems, p => p.Contains($"'{missing}'") && p.Contains("does not exist"));
        Assert.Equal(error.Problems.Count, error.Message.Split('\n').Length - 1);
        Assert.Contains("many-problems", error.Message);
    }

    [Fact]
    public async Task Files_outside_the_silos_data_roots_are_refused_symbolic_links_resolved_and_nothing_is_created_there()
    {
        // The test silos' data roots are the tests' temp folder and the repository (Platform:DataRoots).
        var outside = Path.Combine(Path.GetTempPath(), $"platform-outside-roots-{Guid.NewGuid():N}");
        Directory.CreateDirectory(outside);
        try
        {
            var secret = Path.Combine(outside, "secret.txt");
            await File.WriteAllTextAsync(secret, "not for jobs");
            var link = Path.Combine(TestData.NewDirectory("data-roots"), "leads-out");
            Directory.CreateSymbolicLink(link, outside);
            var deadLetters = Path.Combine(outside, "dead-letters");

            var job = new StreamJobBuilder("outside-roots")
            {
                PoisonRecords = new PoisonRecordPolicy { Action = PoisonRecordAction.Skip, DeadLetterDirectory = deadLetters },
            };
            job.AddSource(new TextFileSource(secret), "read outside").Uid("read-outside").SinkTo(new DiscardingSink<string>(), "discard").Uid("discard");
            job.AddSource(new TextFileSource(Path.Combine(link, "secret.txt")), "read through a link").Uid("read-link")
                .SinkTo(new FileSink<string>(Path.Combine(link, "out")), "write through a link").Uid("write-link");
            var error = await Refused(job.ToJobGraph(Serializer));

            Assert.Contains(error.Problems, p => p.Contains("'read outside'") && p.Contains($"'{secret}'") && p.Contains("outside the silo's data roots") && p.Contains("Platform:DataRoots"));
            Assert.Contains(error.Problems, p => p.Contains("'read through a link'") && p.Contains($"leads to '{secret}'"));
            Assert.Contains(error.Problems, p => p.Contains("'write through a link'") && p.Contains("outside the silo's data roots"));
            Assert.Contains(error.Problems, p => p.StartsWith("PoisonRecords.DeadLetterDirectory", StringComparison.Ordinal) && p.Contains("Platform:AllowAnyDataPath"));
            Assert.False(Directory.Exists(deadLetters), "the dead-letter directory outside the roots was created");
            Assert.False(Directory.Exists(Path.Combine(outside, "out")), "the sink's directory outside the roots was created");

            // Inside the roots, the same job is accepted.
            var inside = TestData.NewDirectory("data-roots-inside");
            var input = Path.Combine(inside, "input.txt");
            await File.WriteAllTextAsync(input, "a b c\n");
            var accepted = new StreamJobBuilder("inside-roots");
            accepted.AddSource(new TextFileSource(input), "read").Uid("read").SinkTo(new FileSink<string>(Path.Combine(inside, "out")), "write").Uid("write");
            var jobId = await fixture.Platform.SubmitAsync(accepted);
            Assert.Equal(JobState.Finished, (await fixture.Platform.WaitForCompletionAsync(jobId, TimeSpan.FromMinutes(1))).State);
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [Fact]
    public async Task Bad_checkpointing_and_restart_settings_are_refused()
    {
        var file = Path.Combine(TestData.NewDirectory("settings"), "a-file");
        await File.WriteAllTextAsync(file, "x");
        var job = ValidJob();
        job.Checkpointing = new Platform.Checkpointing.CheckpointingSettings
        {
            Interval = TimeSpan.FromMilliseconds(1),
            RetainedCheckpoints = 0,
            MaxConcurrentCheckpoints = 0,
            Directory = Path.Combine(file, "checkpoints"),
        };
        job.RestartStrategy = Platform.Checkpointing.RestartStrategy.ExponentialDelayRestart(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(1));

        var error = await Assert.ThrowsAsync<JobValidationException>(() => fixture.Platform.SubmitAsync(job));

        Assert.Contains(error.Problems, p => p.Contains("interval") && p.Contains("too short"));
        Assert.Contains(error.Problems, p => p.Contains("Retained checkpoints is 0"));
        Assert.Contains(error.Problems, p => p.Contains("Max concurrent checkpoints is 0"));
        Assert.Contains(error.Problems, p => p.Contains(Path.Combine(file, "checkpoints")));
        Assert.Contains(error.Problems, p => p.Contains("Restart strategy ExponentialDelay"));
    }

    [Fact]
    public async Task A_missing_input_file_is_an_error_that_names_the_path()
    {
        var missing = Path.Combine(TestData.NewDirectory("missing"), "nope.txt");

        var error = await Assert.ThrowsAsync<JobValidationException>(() => fixture.Platform.SubmitAsync(WordCountJob.Build(missing, 2)));

        var problem = Assert.Single(error.Problems);
        Assert.Contains(missing, problem);
        Assert.Contains("'lines'", problem);
    }

    [Fact]
    public async Task An_unwritable_output_path_is_an_error_that_names_the_path()
    {
        var file = Path.Combine(TestData.NewDirectory("output"), "a-file");
        await File.WriteAllTextAsync(file, "not a directory");
        var input = TestData.WriteText(10, seed: 7);

        var error = await Assert.ThrowsAsync<JobValidationException>(
            () => fixture.Platform.SubmitAsync(WordCountJob.Build(input, 1, outputDirectory: file)));

        Assert.Contains(error.Problems, p => p.Contains(file) && p.Contains("is a file"));
    }
}
