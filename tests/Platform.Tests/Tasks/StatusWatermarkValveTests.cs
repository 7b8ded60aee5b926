using Platform.Tasks.EventTime;

namespace Platform.Tests.Tasks;

/// <summary>The watermark valve alone: per-channel minimum, idleness, two-input minimum, outputs that only advance.</summary>
public sealed class StatusWatermarkValveTests
{
    [Fact]
    public void The_watermark_is_the_minimum_over_the_channels_and_is_forwarded_only_when_it_advances()
    {
        var valve = new StatusWatermarkValve([0, 0]);

        Assert.Null(valve.OnWatermark(0, 10).Watermark);
        Assert.Equal(long.MinValue, valve.CurrentWatermark);

        Assert.Equal(5, valve.OnWatermark(1, 5).Watermark);
        Assert.Null(valve.OnWatermark(1, 5).Watermark);
        Assert.Null(valve.OnWatermark(1, 4).Watermark);
        Assert.Equal(10, valve.OnWatermark(1, 12).Watermark);
        Assert.Equal(10, valve.CurrentWatermark);
    }

    [Fact]
    public void An_idle_channel_holds_back_nothing_and_without_idleness_the_watermark_waits()
    {
        var withoutIdleness = new StatusWatermarkValve([0, 0]);
        Assert.Null(withoutIdleness.OnWatermark(0, 100).Watermark);
        Assert.Equal(long.MinValue, withoutIdleness.CurrentWatermark);

        var valve = new StatusWatermarkValve([0, 0]);
        valve.OnWatermark(0, 100);
        var idle = valve.OnStatus(1, idle: true);

        Assert.Equal(100, idle.Watermark);
        Assert.Null(idle.Status);
        Assert.False(valve.Idle);
        Assert.Equal(200, valve.OnWatermark(0, 200).Watermark);
    }

    [Fact]
    public void A_channel_back_from_idleness_behind_the_watermark_rejoins_once_it_caught_up_and_never_moves_it_back()
    {
        var valve = new StatusWatermarkValve([0, 0]);
        valve.OnWatermark(1, 10);
        valve.OnStatus(1, idle: true);
        valve.OnWatermark(0, 100);
        Assert.Equal(100, valve.CurrentWatermark);

        Assert.Null(valve.OnStatus(1, idle: false).Watermark);
        Assert.Null(valve.OnWatermark(1, 50).Watermark);
        Assert.Equal(150, valve.OnWatermark(0, 150).Watermark);
        Assert.Equal(150, valve.CurrentWatermark);

        // Channel 1 caught up (>= 150): it holds the watermark back again.
        Assert.Null(valve.OnWatermark(1, 160).Watermark);
        Assert.Equal(160, valve.OnWatermark(0, 300).Watermark);
        Assert.Equal(300, valve.OnWatermark(1, 400).Watermark);
    }

    [Fact]
    public void All_channels_idle_makes_the_subtask_idle_and_one_active_channel_makes_it_active_again()
    {
        var valve = new StatusWatermarkValve([0, 0]);
        Assert.Null(valve.OnStatus(0, idle: true).Status);
        Assert.True(valve.OnStatus(1, idle: true).Status);
        Assert.True(valve.Idle);
        Assert.Null(valve.OnWatermark(0, 10).Watermark);

        Assert.False(valve.OnStatus(0, idle: false).Status);
        Assert.False(valve.Idle);
        Assert.Equal(10, valve.OnWatermark(0, 10).Watermark);
    }

    [Fact]
    public void Two_inputs_take_the_minimum_of_each_inputs_watermark_and_an_idle_input_is_excluded()
    {
        // Channels 0 and 1 feed input (gate) 0, channel 2 feeds input 1.
        var valve = new StatusWatermarkValve([0, 0, 1]);
        valve.OnWatermark(0, 30);
        valve.OnWatermark(1, 20);
        Assert.Equal(long.MinValue, valve.CurrentWatermark);

        Assert.Equal(15, valve.OnWatermark(2, 15).Watermark);
        Assert.Equal(20, valve.OnWatermark(2, 25).Watermark);
        Assert.Equal(25, valve.OnWatermark(1, 40).Watermark);

        var idle = valve.OnStatus(2, idle: true);
        Assert.Equal(30, idle.Watermark);
        Assert.Null(idle.Status);
        Assert.Equal(40, valve.OnWatermark(0, 50).Watermark);
    }
}
