-- Hours with much less traffic than the same hour a week earlier (an empty or thin hour where
-- traffic was expected): fewer raw events than $min_share_of_week_before of that hour's,
-- when that hour had at least $min_events_to_compare. Window: hour in [$window_start, $window_end).
with this_week as (
    select hour, sum(events) as events
    from event_outcomes
    where hour >= cast($window_start as timestamp) and hour < cast($window_end as timestamp)
    group by hour
),

week_before as (
    select hour + interval 7 day as hour, sum(events) as events
    from event_outcomes_week_before
    group by hour
)

select
    w.hour,
    coalesce(t.events, 0) as events,
    w.events as events_week_before,
    round(100.0 * coalesce(t.events, 0) / w.events, 1) as pct_of_week_before
from week_before as w
left join this_week as t on w.hour = t.hour
where
    w.hour >= cast($window_start as timestamp)
    and w.hour < cast($window_end as timestamp)
    and w.events >= $min_events_to_compare
    and coalesce(t.events, 0) < $min_share_of_week_before * w.events
