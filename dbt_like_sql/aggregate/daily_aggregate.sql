-- daily_aggregate: minute_aggregate summed to the day, never from raw events.
-- Grain: (date, scenario_id, partner_id, request_type, cloud_environment).
-- avg_latency_ms is request-weighted; p50/p95/p99 are nearest-rank values read from the merged
-- latency buckets of daily_latency.
-- Window: minute in [$window_start, $window_end).
with totals as (
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
        cast(sum(latency_count) as bigint) as latency_count
    from minute_aggregate
    where
        minute >= cast($window_start as timestamp)
        and minute < cast($window_end as timestamp)
    group by all
),

cumulative as (
    select
        date,
        scenario_id,
        partner_id,
        request_type,
        cloud_environment,
        latency_ms,
        sum(requests) over (
            partition by date, scenario_id, partner_id, request_type, cloud_environment
            order by latency_bucket
            rows between unbounded preceding and current row
        ) as requests_up_to_bucket,
        sum(requests) over (
            partition by date, scenario_id, partner_id, request_type, cloud_environment
        ) as measured_requests
    from daily_latency
),

percentiles as (
    select
        date,
        scenario_id,
        partner_id,
        request_type,
        cloud_environment,
        min(case when requests_up_to_bucket >= ceil(50 * measured_requests / 100.0)
            then latency_ms end) as p50_latency_ms,
        min(case when requests_up_to_bucket >= ceil(95 * measured_requests / 100.0)
            then latency_ms end) as p95_latency_ms,
        min(case when requests_up_to_bucket >= ceil(99 * measured_requests / 100.0)
            then latency_ms end) as p99_latency_ms
    from cumulative
    group by all
)

select
    t.date,
    t.scenario_id,
    t.partner_id,
    t.request_type,
    t.cloud_environment,
    t.total_requests,
    t.successful_requests,
    t.failed_requests,
    t.latency_sum_ms,
    t.latency_count,
    t.latency_sum_ms / nullif(t.latency_count, 0) as avg_latency_ms,
    p.p50_latency_ms,
    p.p95_latency_ms,
    p.p99_latency_ms
from totals as t
left join percentiles as p
    on
        t.date = p.date
        and t.scenario_id = p.scenario_id
        and t.partner_id = p.partner_id
        and t.request_type = p.request_type
        and t.cloud_environment = p.cloud_environment
