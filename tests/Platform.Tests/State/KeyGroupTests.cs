using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Platform.State;

namespace Platform.Tests.State;

public sealed class KeyGroupTests
{
    [Theory]
    [InlineData(128, 1)]
    [InlineData(128, 3)]
    [InlineData(128, 4)]
    [InlineData(128, 128)]
    [InlineData(7, 3)]
    [InlineData(32768, 10)]
    public void Subtask_ranges_partition_all_key_groups_and_agree_with_the_owner_of_each_group(int maxParallelism, int parallelism)
    {
        var ranges = Enumerable.Range(0, parallelism).Select(i => KeyGroupAssignment.RangeForOperator(maxParallelism, parallelism, i)).ToList();

        Assert.Equal(0, ranges[0].Start);
        Assert.Equal(maxParallelism - 1, ranges[^1].End);
        for (var i = 1; i < ranges.Count; i++)
        {
            Assert.Equal(ranges[i - 1].End + 1, ranges[i].Start);
        }

        for (var group = 0; group < maxParallelism; group++)
        {
            var owner = KeyGroupAssignment.OperatorIndexForKeyGroup(maxParallelism, parallelism, group);
            Assert.True(ranges[owner].Contains(group), $"group {group} owned by {owner} but not in {ranges[owner]}");
        }

        Assert.InRange(ranges.Max(r => r.Count) - ranges.Min(r => r.Count), 0, 1);
    }

    [Fact]
    public void Key_hashes_are_stable_across_processes()
    {
        var serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();

        // Pinned values: string.GetHashCode is randomized per process, and key groups are stored in checkpoints,
        // so a change of these values would scatter restored state over the wrong key groups.
        Assert.Equal(KeyHashers.Create<string>(serializer).Hash("stream"), KeyHashers.Create<string>(serializer).Hash(new string("stream".ToCharArray())));
        Assert.Equal(-1730837963, KeyHashers.Create<string>(serializer).Hash("stream"));
        Assert.Equal(42, KeyHashers.Create<long>(serializer).Hash(42L));
        Assert.Equal(KeyGroupAssignment.AssignToKeyGroup(42, 128), KeyGroupAssignment.AssignToKeyGroup(42, 128));
    }

    [Fact]
    public void Equal_tuple_keys_hash_equally_whether_or_not_they_share_string_instances()
    {
        var serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();
        var hasher = KeyHashers.Create<(string, string)>(serializer);
        var shared = "key";
        var copy = new string("key".ToCharArray());

        Assert.Equal(hasher.Hash((shared, shared)), hasher.Hash((shared, copy)));
        Assert.NotEqual(hasher.Hash(("a", "b")), hasher.Hash(("b", "a")));
        Assert.Equal(KeyHashers.Create<Tuple<string, long>>(serializer).Hash(Tuple.Create(shared, 5L)), KeyHashers.Create<Tuple<string, long>>(serializer).Hash(Tuple.Create(copy, 5L)));
    }

    [Fact]
    public void Small_integer_keys_spread_over_key_groups()
    {
        var counts = new int[128];
        for (var key = 0; key < 128_000; key++)
        {
            counts[KeyGroupAssignment.AssignToKeyGroup(key, 128)]++;
        }

        Assert.All(counts, c => Assert.InRange(c, 800, 1200));
    }
}
