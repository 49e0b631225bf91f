-- Rows of minute_aggregate whose counts are negative or whose successes and failures do not add up to the total.
select *
from minute_aggregate
where
    minute >= cast($window_start as timestamp) and minute < cast($window_end as timestamp)
    and (
        successful_requests + failed_requests <> total_requests
        or successful_requests < 0
        or failed_requests < 0
        or total_requests <= 0
    )
