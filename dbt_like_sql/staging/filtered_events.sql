-- filtered_events: every raw event of the window, deduplicated on event_id and classified by
-- the rules of SPEC §3. Grain: event (one row per event_id). exclusion_reason is null for a kept
-- event, else one of duplicate, wrong_type, non_prod, test_traffic, unattributed (checked in
-- that order). Window: event_time in [$window_start, $window_end).
with events as (
    select
        *,
        lower(trim(coalesce(cloud_environment, ''))) as environment_key,
        coalesce(correlation_context, '') as context
    from raw_events
    where
        event_time >= cast($window_start as timestamp)
        and event_time < cast($window_end as timestamp)
),

allow_list as (
    select
        lower(trim(operation_name)) as operation_key,
        trim(scenario_id) as scenario_id
    from operation_scenarios
    -- A repeated operation must not multiply events; the reference checks report it.
    qualify row_number() over (partition by lower(trim(operation_name)) order by scenario_id) = 1
),

derived as (
    select
        e.*,
        row_number() over (
            partition by e.event_id order by e.source_file, e.line_number
        ) as copy_number,
        -- Keys are matched case-insensitively and trimmed; values keep their case.
        nullif(trim(regexp_extract(
            e.context, '(?i)(^|[;,])[ ]*ms[.]b[.]tel[.]scenario[ ]*=([^;,]*)', 2
        )), '') as context_scenario,
        nullif(trim(regexp_extract(
            e.context, '(?i)(^|[;,])[ ]*ms[.]b[.]tel[.]partner[ ]*=([^;,]*)', 2
        )), '') as context_partner,
        a.scenario_id as allow_list_scenario
    from events as e
    left join allow_list as a on lower(trim(e.operation_name)) = a.operation_key
),

attributed as (
    select
        *,
        coalesce(
            context_scenario, nullif(trim(sc_scenario), ''), nullif(allow_list_scenario, '')
        ) as scenario_id,
        coalesce(
            context_partner, nullif(trim(sc_partner), ''), nullif(trim(caller_name), ''), 'unknown'
        ) as partner_id,
        environment_key = ''
        or (
            environment_key not in (
                'dev', 'int', 'ppe', 'non-prod', 'nonprod', 'sandbox', 'perf', 'test'
            )
            and environment_key not like '%-dev%'
            and environment_key not like '%-int%'
            and environment_key not like '%-ppe%'
            and environment_key not like '%-sandbox%'
            and environment_key not like '%-perf%'
            and environment_key not like '%-test%'
        )
        or (
            environment_key like '%prod%'
            and environment_key not like '%non-prod%'
            and environment_key not like '%nonprod%'
        ) as is_production,
        trim(coalesce(test_header, '')) <> ''
        or lower(trim(coalesce(quote_is_test, ''))) = 'true'
        or lower(trim(coalesce(is_test, ''))) = 'true' as is_test_traffic
    from derived
)

select
    event_id,
    event_time,
    cast(date_trunc('minute', event_time) as timestamp) as minute,
    scenario_id,
    partner_id,
    trim(coalesce(request_type, '')) as request_type,
    trim(coalesce(cloud_environment, '')) as cloud_environment,
    operation_name,
    role_instance,
    sll_major,
    latency_ms,
    request_status,
    coalesce(request_status < 5, false) as is_success,
    case
        when copy_number > 1 then 'duplicate'
        when lower(trim(coalesce(base_type, ''))) not in (
            'ms.qos.incomingservicerequest', 'incomingservicerequest'
        ) then 'wrong_type'
        when not is_production then 'non_prod'
        when is_test_traffic then 'test_traffic'
        when scenario_id is null then 'unattributed'
    end as exclusion_reason
from attributed
