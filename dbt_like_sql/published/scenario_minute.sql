-- scenario_minute: availability per scenario and minute of the day, for incident charts.
-- Grain: (minute, scenario_id). Only minutes of validated rows that are not held back.
-- Window: minute in [$window_start, $window_end).
with publishable as (
    select date, scenario_id, scenario_key, partner_id, request_type, cloud_environment
    from validated
    where
        hold_reason is null
        and date >= cast(cast($window_start as timestamp) as date)
        and date < cast(cast($window_end as timestamp) as date)
)

select
    m.minute,
    p.scenario_key as scenario_id,
    cast(sum(m.total_requests) as bigint) as total_requests,
    cast(sum(m.successful_requests) as bigint) as successful_requests,
    cast(sum(m.failed_requests) as bigint) as failed_requests,
    cast(100 as double) * sum(m.successful_requests) / nullif(sum(m.total_requests), 0) as availability_pct,
    sum(m.latency_sum_ms) / nullif(sum(m.latency_count), 0) as avg_latency_ms
from minute_aggregate as m
inner join publishable as p
    on
        cast(m.minute as date) = p.date
        and m.scenario_id = p.scenario_id
        and m.partner_id = p.partner_id
        and m.request_type = p.request_type
        and m.cloud_environment = p.cloud_environment
where
    m.minute >= cast($window_start as timestamp)
    and m.minute < cast($window_end as timestamp)
group by m.minute, p.scenario_key
