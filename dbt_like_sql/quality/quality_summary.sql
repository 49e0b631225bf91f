-- quality_summary: what happened to the day's input, one row per day: landing lines read,
-- events, rejected lines, each exclusion reason, kept events, and requests held back from
-- publication. Window: one day, [$window_start, $window_end); a day without traffic still has
-- its row, of zeros.
with day as (
    select cast(cast($window_start as timestamp) as date) as date
),

outcomes as (
    select
        cast(hour as date) as date,
        cast(sum(events) as bigint) as events,
        cast(sum(case when outcome = 'kept' then events else 0 end) as bigint) as kept,
        cast(sum(case when outcome = 'duplicate' then events else 0 end) as bigint)
            as excluded_duplicate,
        cast(sum(case when outcome = 'wrong_type' then events else 0 end) as bigint)
            as excluded_wrong_type,
        cast(sum(case when outcome = 'non_prod' then events else 0 end) as bigint)
            as excluded_non_prod,
        cast(sum(case when outcome = 'test_traffic' then events else 0 end) as bigint)
            as excluded_test_traffic,
        cast(sum(case when outcome = 'unattributed' then events else 0 end) as bigint)
            as excluded_unattributed
    from event_outcomes
    where hour >= cast($window_start as timestamp) and hour < cast($window_end as timestamp)
    group by 1
),

rejected as (
    select
        cast(left(partition_key, 10) as date) as date,
        count(*) as rejected_lines
    from rejected_events
    group by 1
),

held as (
    select
        date,
        cast(sum(case when hold_reason is not null then total_requests else 0 end) as bigint)
            as held_back_requests,
        cast(sum(total_requests) as bigint) as aggregated_requests
    from validated
    where
        date >= cast(cast($window_start as timestamp) as date)
        and date < cast(cast($window_end as timestamp) as date)
    group by date
)

select
    d.date,
    coalesce(o.events, 0) + coalesce(r.rejected_lines, 0) as lines_read,
    coalesce(o.events, 0) as events,
    coalesce(r.rejected_lines, 0) as rejected_lines,
    coalesce(o.excluded_duplicate, 0) as excluded_duplicate,
    coalesce(o.excluded_wrong_type, 0) as excluded_wrong_type,
    coalesce(o.excluded_non_prod, 0) as excluded_non_prod,
    coalesce(o.excluded_test_traffic, 0) as excluded_test_traffic,
    coalesce(o.excluded_unattributed, 0) as excluded_unattributed,
    coalesce(o.kept, 0) as kept,
    coalesce(h.aggregated_requests, 0) as aggregated_requests,
    coalesce(h.held_back_requests, 0) as held_back_requests
from day as d
left join outcomes as o on d.date = o.date
left join rejected as r on d.date = r.date
left join held as h on d.date = h.date
