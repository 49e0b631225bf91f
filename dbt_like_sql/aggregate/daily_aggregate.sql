-- daily_aggregate: minute_aggregate summed to the day, never from raw events.
-- Grain: (date, scenario_id, partner_id, request_type, cloud_environment).
-- avg_latency_ms is request-weighted; p50/p95/p99 at this grain are in latency_percentiles,
-- merged from the same minutes' latency buckets (daily_latency).
-- Window: minute in [$window_start, $window_end).
select
    cast(minute as date) as date,
    scenario_id,
    partner_id,
    request_type,
    cloud_environment,
    cast(sum(total_requests) as bigint) as total_requests,
    cast(sum(successful_requests) as bigint) as successful_requests,
    cast(sum(failed_requests) as bigint) as failed_requests,
    sum(latency_sum_ms) as latency_sum_ms,
    cast(sum(latency_count) as bigint) as latency_count,
    sum(latency_sum_ms) / nullif(sum(latency_count), 0) as avg_latency_ms
from minute_aggregate
where
    minute >= cast($window_start as timestamp)
    and minute < cast($window_end as timestamp)
group by all
