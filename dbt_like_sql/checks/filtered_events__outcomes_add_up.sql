-- Hours whose events do not add up: every raw event must have exactly one outcome, and the
-- kept outcomes must be exactly the filtered events. Window: hour in [$window_start, $window_end).
with raw as (
    select cast(date_trunc('hour', event_time) as timestamp) as hour, count(*) as events
    from raw_events
    where event_time >= cast($window_start as timestamp) and event_time < cast($window_end as timestamp)
    group by 1
),

outcomes as (
    select
        hour,
        sum(events) as events,
        sum(case when outcome = 'kept' then events else 0 end) as kept
    from event_outcomes
    where hour >= cast($window_start as timestamp) and hour < cast($window_end as timestamp)
    group by hour
),

kept as (
    select cast(date_trunc('hour', event_time) as timestamp) as hour, count(*) as events
    from filtered_events
    where event_time >= cast($window_start as timestamp) and event_time < cast($window_end as timestamp)
    group by 1
)

select
    coalesce(raw.hour, outcomes.hour, kept.hour) as hour,
    coalesce(raw.events, 0) as raw_events,
    coalesce(outcomes.events, 0) as events_with_an_outcome,
    coalesce(outcomes.kept, 0) as kept_outcomes,
    coalesce(kept.events, 0) as filtered_events
from raw
full outer join outcomes on raw.hour = outcomes.hour
full outer join kept on coalesce(raw.hour, outcomes.hour) = kept.hour
where
    coalesce(raw.events, 0) <> coalesce(outcomes.events, 0)
    or coalesce(outcomes.kept, 0) <> coalesce(kept.events, 0)
