-- minute_latency: the mergeable latency summary of minute_aggregate, as a long table of
-- log-spaced buckets. Grain: (scenario_id, partner_id, minute, request_type, cloud_environment,
-- latency_bucket). Bucket i holds latencies in [g^i, g^(i+1)) for g = $latency_growth; a latency
-- of 0 goes to bucket $zero_bucket. Merge by summing requests per bucket.
-- Window: minute in [$window_start, $window_end).
select
    scenario_id,
    partner_id,
    minute,
    request_type,
    cloud_environment,
    case
        when latency_ms > 0
            then cast(floor(ln(latency_ms) / ln(cast($latency_growth as double))) as integer)
        else cast($zero_bucket as integer)
    end as latency_bucket,
    count(*) as requests
from filtered_events
where
    latency_ms is not null
    and minute >= cast($window_start as timestamp)
    and minute < cast($window_end as timestamp)
group by all
