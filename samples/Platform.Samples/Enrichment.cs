using Platform.Connectors;
using Platform.Functions;
using Platform.Graph;
using Platform.State;

namespace Platform.Samples;

/// <summary>A user's profile: the side input of the enrichment job.</summary>
[GenerateSerializer, Immutable, Alias("samples.Profile")]
public sealed record Profile([property: Id(0)] long UserId, [property: Id(1)] string Country, [property: Id(2)] int Version);

/// <summary>Something a user did.</summary>
[GenerateSerializer, Immutable, Alias("samples.ClickEvent")]
public sealed record ClickEvent([property: Id(0)] long UserId, [property: Id(1)] long Sequence, [property: Id(2)] int Amount);

/// <summary>An event with the profile that was current for its user when it was processed.</summary>
[GenerateSerializer, Immutable, Alias("samples.EnrichedEvent")]
public sealed record EnrichedEvent(
    [property: Id(0)] long UserId,
    [property: Id(1)] long Sequence,
    [property: Id(2)] string Country,
    [property: Id(3)] int ProfileVersion,
    [property: Id(4)] long TotalAmount);

/// <summary>Keys profiles by user.</summary>
[GenerateSerializer, Alias("samples.ProfileKey")]
public sealed class ProfileKey : IKeySelector<Profile, long>
{
    /// <inheritdoc />
    public long GetKey(Profile value) => value.UserId;
}

/// <summary>Keys events by user.</summary>
[GenerateSerializer, Alias("samples.EventKey")]
public sealed class EventKey : IKeySelector<ClickEvent, long>
{
    /// <inheritdoc />
    public long GetKey(ClickEvent value) => value.UserId;
}

/// <summary>
/// Enriches events with the user's latest profile (a two-input keyed co-process function). Events that arrive
/// before their user's profile wait in a <see cref="IListState{T}"/> and are emitted when it arrives; a running
/// total per user lives in a <see cref="IReducingState{T}"/>; the profile in a <see cref="IValueState{T}"/>.
/// </summary>
[GenerateSerializer, Alias("samples.EnrichWithProfile")]
public sealed class EnrichWithProfile : KeyedCoProcessFunction<long, ClickEvent, Profile, EnrichedEvent>
{
    [NonSerialized] private IValueState<Profile?>? _profile;
    [NonSerialized] private IListState<ClickEvent>? _waiting;
    [NonSerialized] private IReducingState<long>? _total;

    /// <inheritdoc />
    public override void Open(IRuntimeContext context)
    {
        _profile = context.GetState(new ValueStateDescriptor<Profile?>("profile"));
        _waiting = context.GetListState(new ListStateDescriptor<ClickEvent>("waiting-events"));
        _total = context.GetReducingState(new ReducingStateDescriptor<long>("total-amount", new Sum()));
    }

    /// <inheritdoc />
    public override void ProcessElement1(ClickEvent value, IKeyedContext<long> context, ICollector<EnrichedEvent> output)
    {
        if (_profile!.Value is { } profile)
        {
            Emit(value, profile, output);
        }
        else
        {
            _waiting!.Add(value);
        }
    }

    /// <inheritdoc />
    public override void ProcessElement2(Profile value, IKeyedContext<long> context, ICollector<EnrichedEvent> output)
    {
        var current = _profile!.Value;
        if (current is null || value.Version > current.Version)
        {
            _profile.Update(value);
        }

        foreach (var waiting in _waiting!.Get())
        {
            Emit(waiting, _profile.Value!, output);
        }

        _waiting.Clear();
    }

    private void Emit(ClickEvent value, Profile profile, ICollector<EnrichedEvent> output)
    {
        _total!.Add(value.Amount);
        output.Collect(new EnrichedEvent(value.UserId, value.Sequence, profile.Country, profile.Version, _total.Get()));
    }

    [GenerateSerializer, Alias("samples.EnrichWithProfile.Sum")]
    internal sealed class Sum : IReduceFunction<long>
    {
        public long Reduce(long accumulated, long value) => accumulated + value;
    }
}

/// <summary>Generates click events: user <c>s mod users</c>, amount <c>s mod 7 + 1</c>.</summary>
[GenerateSerializer, Alias("samples.ClickEventGenerator")]
public sealed class ClickEventGenerator : GeneratorSource<ClickEvent>
{
    /// <summary>How many distinct users.</summary>
    [Id(0)] public int Users { get; set; } = 100;

    /// <inheritdoc />
    public override ClickEvent Generate(long sequence) => new(sequence % Users, sequence, (int)(sequence % 7) + 1);
}

/// <summary>Builds the enrichment job: events and profiles, both keyed by user, connected into <see cref="EnrichWithProfile"/>.</summary>
public static class EnrichmentJob
{
    /// <summary>The uid of the collect sink.</summary>
    public const string CollectSinkUid = "enriched";

    /// <summary>Builds the job over generated events and the given profiles.</summary>
    public static StreamJobBuilder Build(long events, int users, IEnumerable<Profile> profiles, int parallelism)
    {
        var job = new StreamJobBuilder("enrichment") { DefaultParallelism = parallelism };
        var clicks = job.AddSource(new ClickEventGenerator { Count = events, Users = users }, "clicks").Uid("clicks")
            .KeyBy(new EventKey());
        var profileStream = job.AddSource(new CollectionSource<Profile>(profiles), "profiles").Uid("profiles").SetParallelism(1)
            .KeyBy(new ProfileKey());
        clicks.Connect(profileStream)
            .Process(new EnrichWithProfile(), "enrich").Uid("enrich")
            .SinkTo(new CollectSink<EnrichedEvent>(), "collect").Uid(CollectSinkUid);
        return job;
    }
}
