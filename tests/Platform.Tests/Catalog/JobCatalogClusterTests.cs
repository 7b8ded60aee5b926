using Platform.Catalog;
using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Catalog;

/// <summary>The job catalog on a real two-silo cluster whose silos registered the demo jobs.</summary>
[Collection(ClusterCollection.Name)]
public sealed class JobCatalogClusterTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task The_catalog_lists_the_demo_jobs_with_their_arguments()
    {
        var catalog = await fixture.Platform.GetCatalogAsync();

        Assert.Equal(["enrichment", "generated-word-count", "large-state", "nexmark-q0", "nexmark-q1", "nexmark-q2", "nexmark-q3", "nexmark-q4", "nexmark-q5", "nexmark-q7", "nexmark-q8", "word-count"], catalog.Select(e => e.Name));
        var wordCount = catalog.Single(e => e.Name == "word-count");
        Assert.Equal(SampleJobs.WordCount.Description, wordCount.Description);
        Assert.Equal(SampleJobs.WordCount.Parallelism, wordCount.Parallelism);
        var input = wordCount.Arguments.Single(a => a.Name == "input");
        Assert.Equal(JobArgumentType.Path, input.Type);
        Assert.Equal("samples/wordcount/input.txt", input.Default);
        Assert.False(input.Required);
        Assert.False(string.IsNullOrWhiteSpace(input.Description));
    }

    [Fact]
    public async Task A_job_started_by_name_runs_with_its_arguments_at_the_requested_parallelism()
    {
        var path = TestData.WriteText(lines: 1500, seed: 51);
        var expected = File.ReadLines(path).SelectMany(Tokenizer.Split).GroupBy(w => w).ToDictionary(g => g.Key, g => (long)g.Count());

        var jobId = await fixture.Platform.RunAsync("word-count", new Dictionary<string, string> { ["input"] = path }, parallelism: 3);
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.StartsWith("word-count-", jobId, StringComparison.Ordinal);
        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}");
        Assert.All(status.Tasks, t => Assert.Equal(3, t.Parallelism));
        var running = await fixture.Platform.GetCollectedAsync<WordCount>(jobId, WordCountJob.CollectSinkUid);
        Assert.Equal(expected.OrderBy(p => p.Key), WordCountJob.FinalCounts(running).OrderBy(p => p.Key));
        Assert.Contains(await fixture.Platform.ListJobsAsync(), j => j.JobId == jobId && j.Name == "word-count");
    }

    [Fact]
    public async Task Bad_arguments_and_parallelism_are_refused_with_every_problem_and_start_nothing()
    {
        var before = await fixture.Platform.ListJobsAsync();

        var error = await Assert.ThrowsAsync<JobArgumentException>(() => fixture.Platform.RunAsync(
            "generated-word-count",
            new Dictionary<string, string> { ["wrods"] = "10", ["rate"] = "fast", ["records"] = "0" },
            parallelism: 0));

        Assert.Equal("generated-word-count", error.JobName);
        Assert.Equal(4, error.Problems.Count);
        Assert.Contains(error.Problems, p => p.Contains("Parallelism 0") && p.Contains("at least 1"));
        Assert.Contains(error.Problems, p => p.Contains("Unknown argument 'wrods'") && p.Contains("did you mean 'words'?"));
        Assert.Contains(error.Problems, p => p.Contains("Argument 'rate' is 'fast'") && p.Contains("double"));
        Assert.Contains(error.Problems, p => p.Contains("Argument 'records' is '0'") && p.Contains("at least 1"));
        Assert.Equal(before.Count, (await fixture.Platform.ListJobsAsync()).Count);
    }

    [Fact]
    public async Task An_unknown_name_is_refused_with_the_names_the_catalog_has()
    {
        var error = await Assert.ThrowsAsync<JobNotInCatalogException>(() => fixture.Platform.RunAsync("wordcount", new Dictionary<string, string>()));

        Assert.Equal("wordcount", error.Name);
        Assert.Contains("did you mean 'word-count'?", error.Message);
        Assert.Contains("large-state", error.Known);
    }

    [Fact]
    public async Task Arguments_that_parse_but_make_an_invalid_job_are_refused_by_job_validation()
    {
        var missing = Path.Combine(TestData.NewDirectory("catalog"), "no-such-file.txt");

        var error = await Assert.ThrowsAsync<JobValidationException>(() => fixture.Platform.RunAsync(
            "word-count", new Dictionary<string, string> { ["input"] = missing }));

        Assert.Contains(error.Problems, p => p.Contains(missing));
    }
}
