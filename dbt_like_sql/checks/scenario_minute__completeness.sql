-- Scenarios busy enough to have traffic every minute (at least $busy_requests_per_minute per
-- minute on average over the day) that still have silent minutes. Window: whole days.
with per_day as (
    select
        cast(minute as date) as date,
        scenario_id,
        count(*) as active_minutes,
        sum(total_requests) as requests
    from scenario_minute
    where minute >= cast($window_start as timestamp) and minute < cast($window_end as timestamp)
    group by 1, 2
)

select
    date,
    scenario_id,
    active_minutes,
    1440 - active_minutes as silent_minutes,
    round(requests / 1440.0, 1) as requests_per_minute
from per_day
where requests >= $busy_requests_per_minute * 1440 and active_minutes < 1440
