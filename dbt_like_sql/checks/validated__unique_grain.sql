-- Grain keys of validated that appear more than once. Grain: (date, scenario_id, partner_id, request_type, cloud_environment).
select date, scenario_id, partner_id, request_type, cloud_environment, count(*) as copies
from validated
where date >= cast(cast($window_start as timestamp) as date) and date < cast(cast($window_end as timestamp) as date)
group by date, scenario_id, partner_id, request_type, cloud_environment
having count(*) > 1
