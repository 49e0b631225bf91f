-- Rows of daily_aggregate whose latencies are negative or whose percentiles are out of order
-- (p50 <= p95 <= p99 must hold).
select *
from daily_aggregate
where
    date >= cast(cast($window_start as timestamp) as date)
    and date < cast(cast($window_end as timestamp) as date)
    and (
        p50_latency_ms < 0
        or avg_latency_ms < 0
        or p50_latency_ms > p95_latency_ms
        or p95_latency_ms > p99_latency_ms
    )
