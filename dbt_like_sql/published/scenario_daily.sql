-- scenario_daily: availability per scenario and day, for the dashboard and alerts.
-- Grain: (date, scenario_id), scenario_id being the reference's id. Only validated rows that are
-- not held back; percentiles from latency_percentiles. Window: date in [$window_start, $window_end).
with totals as (
    select
        date,
        scenario_key as scenario_id,
        max(scenario_name) as scenario_name,
        max(slo_target_pct) as slo_target_pct,
        cast(sum(total_requests) as bigint) as total_requests,
        cast(sum(successful_requests) as bigint) as successful_requests,
        cast(sum(failed_requests) as bigint) as failed_requests,
        sum(latency_sum_ms) / nullif(sum(latency_count), 0) as avg_latency_ms
    from validated
    where
        hold_reason is null
        and date >= cast(cast($window_start as timestamp) as date)
        and date < cast(cast($window_end as timestamp) as date)
    group by date, scenario_key
)

select
    t.date,
    t.scenario_id,
    t.scenario_name,
    t.slo_target_pct,
    t.total_requests,
    t.successful_requests,
    t.failed_requests,
    cast(100 as double) * t.successful_requests / nullif(t.total_requests, 0) as availability_pct,
    t.avg_latency_ms,
    p.p95_latency_ms,
    cast(100 as double) * t.successful_requests / nullif(t.total_requests, 0) >= t.slo_target_pct as slo_met,
    p.p50_latency_ms,
    p.p99_latency_ms
from totals as t
left join latency_percentiles as p
    on p.grain = 'scenario' and t.date = p.date and t.scenario_id = p.scenario_id
