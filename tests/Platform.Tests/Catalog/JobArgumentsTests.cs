using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Platform.Catalog;
using Platform.Graph;
using Platform.Samples;

namespace Platform.Tests.Catalog;

/// <summary>Parsing and checking a catalog job's arguments, and checking definitions when they are registered.</summary>
public sealed class JobArgumentsTests
{
    private static readonly JobDefinition Job = new()
    {
        Name = "test-job",
        Arguments =
        [
            new() { Name = "name", Type = JobArgumentType.String, Required = true },
            new() { Name = "count", Type = JobArgumentType.Int, Default = "10", Minimum = 1, Maximum = 100 },
            new() { Name = "records", Type = JobArgumentType.Long },
            new() { Name = "rate", Type = JobArgumentType.Double, Default = "2.5", Minimum = 0 },
            new() { Name = "verbose", Type = JobArgumentType.Bool, Default = "false" },
            new() { Name = "input", Type = JobArgumentType.Path },
            new() { Name = "interval", Type = JobArgumentType.Duration, Default = "1s" },
        ],
        Build = _ => new StreamJobBuilder("test-job"),
    };

    [Fact]
    public void Values_of_every_type_are_parsed()
    {
        var args = JobArguments.Parse(Job, new Dictionary<string, string>
        {
            ["name"] = "hello world",
            ["count"] = "42",
            ["records"] = "-9000000000",
            ["rate"] = "0.125",
            ["verbose"] = "yes",
            ["input"] = "data/words.txt",
            ["interval"] = "250ms",
        });

        Assert.Equal("hello world", args.GetString("name"));
        Assert.Equal(42, args.GetInt32("count"));
        Assert.Equal(-9_000_000_000L, args.GetInt64("records"));
        Assert.Equal(0.125, args.GetDouble("rate"));
        Assert.True(args.GetBoolean("verbose"));
        Assert.Equal(Path.GetFullPath("data/words.txt"), args.GetPath("input"));
        Assert.Equal(TimeSpan.FromMilliseconds(250), args.GetDuration("interval"));
    }

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("10s", 10_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("5m", 300_000)]
    [InlineData("2h", 7_200_000)]
    [InlineData("1d", 86_400_000)]
    [InlineData("00:01:30", 90_000)]
    public void Durations_take_a_unit_or_hh_mm_ss(string text, long milliseconds)
    {
        var args = JobArguments.Parse(Job, new Dictionary<string, string> { ["name"] = "x", ["interval"] = text });

        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), args.GetDuration("interval"));
    }

    [Fact]
    public void Defaults_apply_to_arguments_not_given_and_optional_ones_without_a_default_are_unset()
    {
        var args = JobArguments.Parse(Job, new Dictionary<string, string> { ["name"] = "x" });

        Assert.Equal(10, args.GetInt32("count"));
        Assert.Equal(2.5, args.GetDouble("rate"));
        Assert.False(args.GetBoolean("verbose"));
        Assert.Equal(TimeSpan.FromSeconds(1), args.GetDuration("interval"));
        Assert.False(args.IsSet("records"));
        Assert.Null(args.GetInt64OrNull("records"));
        Assert.Null(args.GetPathOrNull("input"));
        var error = Assert.Throws<InvalidOperationException>(() => args.GetInt64("records"));
        Assert.Contains("'records'", error.Message);
    }

    [Fact]
    public void Every_problem_is_reported_at_once_naming_the_argument_and_what_it_expects()
    {
        var error = Assert.Throws<JobArgumentException>(() => JobArguments.Parse(Job, new Dictionary<string, string>
        {
            ["cuont"] = "3",
            ["count"] = "0",
            ["records"] = "lots",
            ["rate"] = "1,5",
            ["verbose"] = "maybe",
            ["interval"] = "soon",
        }));

        Assert.Equal("test-job", error.JobName);
        Assert.Equal(7, error.Problems.Count);
        Assert.Contains(error.Problems, p => p.Contains("Unknown argument 'cuont'") && p.Contains("did you mean 'count'?"));
        Assert.Contains(error.Problems, p => p.Contains("Argument 'name' is required") && p.Contains("string"));
        Assert.Contains(error.Problems, p => p.Contains("Argument 'count' is '0'") && p.Contains("from 1 to 100"));
        Assert.Contains(error.Problems, p => p.Contains("Argument 'records' is 'lots'") && p.Contains("expected a long"));
        Assert.Contains(error.Problems, p => p.Contains("Argument 'rate' is '1,5'") && p.Contains("expected a double"));
        Assert.Contains(error.Problems, p => p.Contains("Argument 'verbose' is 'maybe'") && p.Contains("expected a bool"));
        Assert.Contains(error.Problems, p => p.Contains("Argument 'interval' is 'soon'") && p.Contains("expected a duration"));
        Assert.Contains("7 problems", error.Message);
    }

    [Fact]
    public void An_unknown_argument_without_a_close_name_lists_the_arguments_the_job_takes()
    {
        var error = Assert.Throws<JobArgumentException>(() => JobArguments.Parse(Job, new Dictionary<string, string> { ["name"] = "x", ["colour"] = "red" }));

        var problem = Assert.Single(error.Problems);
        Assert.Equal("Unknown argument 'colour'. Job 'test-job' takes: name, count, records, rate, verbose, input, interval.", problem);
    }

    [Fact]
    public void Reading_an_argument_with_the_getter_of_another_type_or_an_undeclared_name_is_a_programming_error()
    {
        var args = JobArguments.Parse(Job, new Dictionary<string, string> { ["name"] = "x" });

        var wrongType = Assert.Throws<InvalidOperationException>(() => args.GetInt64("count"));
        Assert.Contains("declared as int", wrongType.Message);
        var undeclared = Assert.Throws<ArgumentException>(() => args.GetString("nope"));
        Assert.Contains("declares no argument 'nope'", undeclared.Message);
    }

    [Fact]
    public void A_definition_with_bad_names_defaults_or_bounds_lists_every_problem()
    {
        var definition = new JobDefinition
        {
            Name = "bad name",
            Parallelism = 0,
            Arguments =
            [
                new() { Name = "n", Type = JobArgumentType.Int, Default = "ten" },
                new() { Name = "n", Type = JobArgumentType.Int },
                new() { Name = "-x", Type = JobArgumentType.String },
                new() { Name = "path", Type = JobArgumentType.Path, Minimum = 1 },
                new() { Name = "range", Type = JobArgumentType.Double, Minimum = 5, Maximum = 1 },
                new() { Name = "must", Type = JobArgumentType.String, Required = true, Default = "x" },
                new() { Name = "small", Type = JobArgumentType.Int, Default = "0", Minimum = 1 },
            ],
            Build = _ => new StreamJobBuilder("bad"),
        };

        var problems = definition.Validate();

        Assert.Equal(9, problems.Count);
        Assert.Contains(problems, p => p.Contains("Job name 'bad name' is not valid"));
        Assert.Contains(problems, p => p.Contains("parallelism 0"));
        Assert.Contains(problems, p => p.Contains("Argument 'n'") && p.Contains("default") && p.Contains("'ten'"));
        Assert.Contains(problems, p => p.Contains("Argument 'n'") && p.Contains("declared twice"));
        Assert.Contains(problems, p => p.Contains("Argument '-x'") && p.Contains("name that is not valid"));
        Assert.Contains(problems, p => p.Contains("Argument 'path'") && p.Contains("only int, long and double"));
        Assert.Contains(problems, p => p.Contains("Argument 'range'") && p.Contains("minimum (5) above its maximum (1)"));
        Assert.Contains(problems, p => p.Contains("Argument 'must'") && p.Contains("required and has a default"));
        Assert.Contains(problems, p => p.Contains("Argument 'small'") && p.Contains("does not fit") && p.Contains("at least 1"));
    }

    [Fact]
    public void Registering_an_unsound_definition_or_a_taken_name_fails_while_the_silo_is_configured()
    {
        var services = new ServiceCollection();
        services.AddJob(Job);

        var taken = Assert.Throws<ArgumentException>(() => services.AddJob(Job with { Description = "another" }));
        Assert.Contains("already in the job catalog", taken.Message);
        var unsound = Assert.Throws<ArgumentException>(() => services.AddJob(Job with { Name = "other", Parallelism = 0 }));
        Assert.Contains("parallelism 0", unsound.Message);
    }

    [Fact]
    public void An_unknown_job_name_suggests_the_closest_and_lists_the_catalog()
    {
        var error = new JobNotInCatalogException("wordcount", ["enrichment", "word-count"]);

        Assert.Equal("No job named 'wordcount' is in the catalog; did you mean 'word-count'? It has: enrichment, word-count.", error.Message);
    }

    [Fact]
    public void The_demo_jobs_are_sound_and_build_with_their_defaults()
    {
        var names = SampleJobs.All.Select(j => j.Name).ToList();

        Assert.Equal(["word-count", "generated-word-count", "enrichment", "large-state", "nexmark-q0", "nexmark-q1", "nexmark-q2", "nexmark-q3", "nexmark-q4", "nexmark-q5", "nexmark-q7", "nexmark-q8"], names);
        foreach (var definition in SampleJobs.All)
        {
            Assert.Empty(definition.Validate());
            var job = definition.Build(JobArguments.Parse(definition, new Dictionary<string, string>()));
            Assert.Equal(definition.Name, job.Name);
            Assert.NotNull(job.Checkpointing);
        }
    }
}
