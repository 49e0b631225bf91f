-- Grain keys of minute_aggregate that appear more than once. Grain: (scenario_id, partner_id, minute, request_type, cloud_environment).
select scenario_id, partner_id, minute, request_type, cloud_environment, count(*) as copies
from minute_aggregate
where minute >= cast($window_start as timestamp) and minute < cast($window_end as timestamp)
group by scenario_id, partner_id, minute, request_type, cloud_environment
having count(*) > 1
