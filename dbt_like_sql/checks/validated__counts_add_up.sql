-- Rows of validated whose counts are negative or whose successes and failures do not add up to the total.
select *
from validated
where
    date >= cast(cast($window_start as timestamp) as date) and date < cast(cast($window_end as timestamp) as date)
    and (
        successful_requests + failed_requests <> total_requests
        or successful_requests < 0
        or failed_requests < 0
        or total_requests <= 0
    )
