-- daily_latency: minute_latency merged to the day.
-- Grain: (date, scenario_id, partner_id, request_type, cloud_environment, latency_bucket).
-- latency_ms is the bucket's representative value: for [g^i, g^(i+1)) the point 2g^(i+1)/(1+g),
-- whose relative error to any latency in the bucket is at most (g-1)/(g+1). It rises with the
-- bucket index, so a percentile is the smallest latency_ms whose cumulative count reaches its rank.
-- Window: minute in [$window_start, $window_end).
select
    cast(minute as date) as date,
    scenario_id,
    partner_id,
    request_type,
    cloud_environment,
    latency_bucket,
    case
        when latency_bucket = $zero_bucket then 0.0
        else 2 * power(cast($latency_growth as double), latency_bucket + 1)
            / (1 + cast($latency_growth as double))
    end as latency_ms,
    cast(sum(requests) as bigint) as requests
from minute_latency
where
    minute >= cast($window_start as timestamp)
    and minute < cast($window_end as timestamp)
group by all
