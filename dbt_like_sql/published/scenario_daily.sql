-- scenario_daily: availability per scenario and day, for the dashboard and alerts.
-- Grain: (date, scenario_id), scenario_id being the reference's id. Only validated rows that are
-- not held back; p95 from the merged latency buckets. Window: date in [$window_start, $window_end).
with publishable as (
    select * from validated
    where
        hold_reason is null
        and date >= cast(cast($window_start as timestamp) as date)
        and date < cast(cast($window_end as timestamp) as date)
),

totals as (
    select
        date,
        scenario_key as scenario_id,
        max(scenario_name) as scenario_name,
        max(slo_target_pct) as slo_target_pct,
        cast(sum(total_requests) as bigint) as total_requests,
        cast(sum(successful_requests) as bigint) as successful_requests,
        cast(sum(failed_requests) as bigint) as failed_requests,
        sum(latency_sum_ms) / nullif(sum(latency_count), 0) as avg_latency_ms
    from publishable
    group by date, scenario_key
),

buckets as (
    select
        p.date,
        p.scenario_key as scenario_id,
        l.latency_bucket,
        max(l.latency_ms) as latency_ms,
        sum(l.requests) as requests
    from daily_latency as l
    inner join publishable as p
        on
            l.date = p.date
            and l.scenario_id = p.scenario_id
            and l.partner_id = p.partner_id
            and l.request_type = p.request_type
            and l.cloud_environment = p.cloud_environment
    group by p.date, p.scenario_key, l.latency_bucket
),

cumulative as (
    select
        date,
        scenario_id,
        latency_ms,
        sum(requests) over (
            partition by date, scenario_id
            order by latency_bucket
            rows between unbounded preceding and current row
        ) as requests_up_to_bucket,
        sum(requests) over (partition by date, scenario_id) as measured_requests
    from buckets
),

p95 as (
    select
        date,
        scenario_id,
        min(case when requests_up_to_bucket >= ceil(95 * measured_requests / 100.0)
            then latency_ms end) as p95_latency_ms
    from cumulative
    group by date, scenario_id
)

select
    t.date,
    t.scenario_id,
    t.scenario_name,
    t.slo_target_pct,
    t.total_requests,
    t.successful_requests,
    t.failed_requests,
    100.0 * t.successful_requests / nullif(t.total_requests, 0) as availability_pct,
    t.avg_latency_ms,
    p95.p95_latency_ms,
    100.0 * t.successful_requests / nullif(t.total_requests, 0) >= t.slo_target_pct as slo_met
from totals as t
left join p95 on t.date = p95.date and t.scenario_id = p95.scenario_id
