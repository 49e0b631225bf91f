-- Rows of minute_aggregate with a negative latency, or more latency samples than requests.
select *
from minute_aggregate
where
    minute >= cast($window_start as timestamp) and minute < cast($window_end as timestamp)
    and (avg_latency_ms < 0 or latency_sum_ms < 0 or latency_count > total_requests)
