-- Hours where more than $max_quarantine_share of the non-blank landing lines were rejected.
-- Window: the hours of the registered partitions (partition_key is the hour's key).
with rejected as (
    select
        cast(concat(left(partition_key, 10), ' ', right(partition_key, 5), ':00') as timestamp)
            as hour,
        count(*) as lines
    from rejected_events
    group by 1
),

accepted as (
    select hour, sum(events) as events
    from event_outcomes
    where hour >= cast($window_start as timestamp) and hour < cast($window_end as timestamp)
    group by hour
)

select
    r.hour,
    r.lines as rejected_lines,
    coalesce(a.events, 0) as events,
    round(100.0 * r.lines / (r.lines + coalesce(a.events, 0)), 2) as rejected_pct
from rejected as r
left join accepted as a on r.hour = a.hour
where r.lines > $max_quarantine_share * (r.lines + coalesce(a.events, 0))
