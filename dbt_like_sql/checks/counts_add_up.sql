-- Generic audit, run on any table with request counts: the audited table's rows of the window
-- (its partitions, registered as `audited`) whose counts are negative or whose successes and
-- failures do not add up to the total.
select *
from audited
where
    successful_requests + failed_requests <> total_requests
    or successful_requests < 0
    or failed_requests < 0
    or total_requests <= 0
