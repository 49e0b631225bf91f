-- scenario_partner_daily: availability per scenario, partner and day.
-- Grain: (date, scenario_id, partner_id): the reference's ids where known; an unknown partner
-- keeps its own id and has no partner_name. Window: date in [$window_start, $window_end).
with totals as (
    select
        date,
        scenario_key as scenario_id,
        coalesce(partner_key, partner_id) as partner_id,
        max(partner_name) as partner_name,
        cast(sum(total_requests) as bigint) as total_requests,
        cast(sum(successful_requests) as bigint) as successful_requests,
        cast(sum(failed_requests) as bigint) as failed_requests,
        sum(latency_sum_ms) / nullif(sum(latency_count), 0) as avg_latency_ms
    from validated
    where
        hold_reason is null
        and date >= cast(cast($window_start as timestamp) as date)
        and date < cast(cast($window_end as timestamp) as date)
    group by date, scenario_key, coalesce(partner_key, partner_id)
)

select
    t.date,
    t.scenario_id,
    t.partner_id,
    t.partner_name,
    t.total_requests,
    t.successful_requests,
    t.failed_requests,
    cast(100 as double) * t.successful_requests / nullif(t.total_requests, 0) as availability_pct,
    t.avg_latency_ms,
    p.p95_latency_ms,
    p.p50_latency_ms,
    p.p99_latency_ms
from totals as t
left join latency_percentiles as p
    on
        p.grain = 'scenario_partner'
        and t.date = p.date
        and t.scenario_id = p.scenario_id
        and t.partner_id = p.partner_id
