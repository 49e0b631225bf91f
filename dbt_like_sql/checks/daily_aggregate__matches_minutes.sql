-- Daily rows whose counts (requests, successes, failures, latency samples) differ from the sum
-- of their minutes, or minutes without a daily row.
-- Grain: (date, scenario_id, partner_id, request_type, cloud_environment).
with minutes as (
    select
        cast(minute as date) as date,
        scenario_id, partner_id, request_type, cloud_environment,
        cast(sum(total_requests) as bigint) as total_requests,
        cast(sum(successful_requests) as bigint) as successful_requests,
        cast(sum(failed_requests) as bigint) as failed_requests,
        cast(sum(latency_count) as bigint) as latency_count
    from minute_aggregate
    where minute >= cast($window_start as timestamp) and minute < cast($window_end as timestamp)
    group by 1, 2, 3, 4, 5
),

days as (
    select date, scenario_id, partner_id, request_type, cloud_environment,
        total_requests, successful_requests, failed_requests, latency_count
    from daily_aggregate
    where
        date >= cast(cast($window_start as timestamp) as date)
        and date < cast(cast($window_end as timestamp) as date)
)

select
    coalesce(d.date, m.date) as date,
    coalesce(d.scenario_id, m.scenario_id) as scenario_id,
    coalesce(d.partner_id, m.partner_id) as partner_id,
    coalesce(d.request_type, m.request_type) as request_type,
    coalesce(d.cloud_environment, m.cloud_environment) as cloud_environment,
    d.total_requests as daily_total,
    m.total_requests as minutes_total,
    d.successful_requests as daily_successful,
    m.successful_requests as minutes_successful
from days as d
full outer join minutes as m
    on
        d.date = m.date
        and d.scenario_id = m.scenario_id
        and d.partner_id = m.partner_id
        and d.request_type = m.request_type
        and d.cloud_environment = m.cloud_environment
where
    d.total_requests is null
    or m.total_requests is null
    or d.total_requests <> m.total_requests
    or d.successful_requests <> m.successful_requests
    or d.failed_requests <> m.failed_requests
    or d.latency_count <> m.latency_count
