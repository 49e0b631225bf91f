-- Rows of latency_percentiles whose latencies are negative or out of order
-- (p50 <= p95 <= p99 must hold), or that have no percentile although requests were measured.
select *
from latency_percentiles
where
    date >= cast(cast($window_start as timestamp) as date)
    and date < cast(cast($window_end as timestamp) as date)
    and (
        p50_latency_ms < 0
        or p50_latency_ms > p95_latency_ms
        or p95_latency_ms > p99_latency_ms
        or (measured_requests > 0 and p99_latency_ms is null)
    )
