using Platform.Runtime;
using Platform.Samples;
using Platform.Tests.Infrastructure;

namespace Platform.Tests.Jobs;

[Collection(ClusterCollection.Name)]
public sealed class WordCountTests(ClusterFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task Word_count_equals_a_LINQ_count_of_the_same_text(int parallelism)
    {
        var path = TestData.WriteText(lines: 3000, seed: parallelism);
        var expected = File.ReadLines(path)
            .SelectMany(Tokenizer.Split)
            .GroupBy(w => w)
            .ToDictionary(g => g.Key, g => (long)g.Count());

        var jobId = await fixture.Platform.SubmitAsync(WordCountJob.Build(path, parallelism));
        var status = await fixture.Platform.WaitForCompletionAsync(jobId, Timeout);

        Assert.True(status.State == JobState.Finished, $"Job ended {status.State}: {status.Failure}\n{status.Failure?.StackTrace}");
        var running = await fixture.Platform.GetCollectedAsync<WordCount>(jobId, WordCountJob.CollectSinkUid);
        Assert.Equal(expected.Values.Sum(), running.Count);
        var actual = WordCountJob.FinalCounts(running);
        Assert.Equal(expected.OrderBy(p => p.Key), actual.OrderBy(p => p.Key));

        // Each word's running counts are 1..n exactly once: nothing lost, nothing duplicated.
        foreach (var group in running.GroupBy(c => c.Word))
        {
            Assert.Equal(Enumerable.Range(1, group.Count()).Select(i => (long)i), group.Select(c => c.Count).Order());
        }

        var keyed = status.Tasks.Where(t => t.KeyGroupStart is not null).ToList();
        Assert.Equal(parallelism, keyed.Count);
        Assert.Equal(Enumerable.Range(0, 128), keyed.SelectMany(t => Enumerable.Range(t.KeyGroupStart!.Value, t.KeyGroupEnd!.Value - t.KeyGroupStart.Value + 1)).Order());
        if (parallelism > 1)
        {
            Assert.Equal(ClusterFixture.Silos, keyed.Select(t => t.Silo).Distinct().Count());
        }
    }
}
