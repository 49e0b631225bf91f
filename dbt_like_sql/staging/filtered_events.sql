-- filtered_events: every raw event of the window, deduplicated on event_id and classified by
-- the rules of SPEC §3. Grain: event (one row per event_id). exclusion_reason is null for a kept
-- event, else one of duplicate, wrong_type, non_prod, test_traffic, unattributed (checked in
-- that order). Window: event_time in [$window_start, $window_end).
--
-- Duplicates (SPEC §2): a copy is a duplicate when the same id was seen earlier within the
-- horizon ($dedupe_horizon_hours): in an earlier hour (of the window, or of earlier_raw_events:
-- the raw events of the horizon before the window, whichever hours are there), or earlier in its
-- own hour's landing order (the file that landed first, then the line). Every earlier copy
-- counts, kept or not, so each hour's verdict depends only on the raw events: a window of many
-- hours, a range run and a run per hour agree.
--
-- SPEC §3 compares values trimmed of all whitespace (spaces, tabs, CR, LF), and a bare trim()
-- strips only spaces. The standard `trim(both <characters> from s)`, with the characters spelled
-- by chr() (a '\t' literal is a tab to Spark and two characters to DuckDB), trims alike on both
-- engines, at half the cost of two anchored regexp_replace calls.
with events as (
    select
        *,
        -- Keys are matched case-insensitively and trimmed; values keep their case.
        regexp_extract(
            coalesce(correlation_context, ''),
            '(?i)(^|[;,])[ \t\r\n]*ms[.]b[.]tel[.]scenario[ \t\r\n]*=([^;,]*)', 2
        ) as cc_scenario,
        regexp_extract(
            coalesce(correlation_context, ''),
            '(?i)(^|[;,])[ \t\r\n]*ms[.]b[.]tel[.]partner[ \t\r\n]*=([^;,]*)', 2
        ) as cc_partner,
        cast(date_trunc('hour', event_time) as timestamp) as event_hour
    from raw_events
    where
        event_time >= cast($window_start as timestamp)
        and event_time < cast($window_end as timestamp)
),

earlier_copies as (
    -- Per event, the latest copy of its id from an earlier hour; only it can be within the
    -- horizon.
    select e.source_file, e.line_number, max(c.event_time) as latest_earlier_time
    from events as e
    inner join (
        select event_id, event_time from earlier_raw_events
        union all
        select event_id, event_time from events
    ) as c on e.event_id = c.event_id and c.event_time < e.event_hour
    group by e.source_file, e.line_number
),

trimmed as (
    select
        *,
        trim(both ' ' || chr(9) || chr(10) || chr(13) from base_type)
            as base_type_trimmed,
        trim(both ' ' || chr(9) || chr(10) || chr(13) from cloud_environment)
            as cloud_environment_trimmed,
        trim(both ' ' || chr(9) || chr(10) || chr(13) from operation_name)
            as operation_name_trimmed,
        trim(both ' ' || chr(9) || chr(10) || chr(13) from request_type)
            as request_type_trimmed,
        trim(both ' ' || chr(9) || chr(10) || chr(13) from caller_name)
            as caller_name_trimmed,
        trim(both ' ' || chr(9) || chr(10) || chr(13) from sc_scenario)
            as sc_scenario_trimmed,
        trim(both ' ' || chr(9) || chr(10) || chr(13) from sc_partner)
            as sc_partner_trimmed,
        trim(both ' ' || chr(9) || chr(10) || chr(13) from test_header)
            as test_header_trimmed,
        trim(both ' ' || chr(9) || chr(10) || chr(13) from quote_is_test)
            as quote_is_test_trimmed,
        trim(both ' ' || chr(9) || chr(10) || chr(13) from is_test)
            as is_test_trimmed,
        trim(both ' ' || chr(9) || chr(10) || chr(13) from cc_scenario)
            as cc_scenario_trimmed,
        trim(both ' ' || chr(9) || chr(10) || chr(13) from cc_partner)
            as cc_partner_trimmed
    from events
),

allow_list_entries as (
    select
        lower(trim(both ' ' || chr(9) || chr(10) || chr(13) from operation_name)) as operation_key,
        trim(both ' ' || chr(9) || chr(10) || chr(13) from scenario_id)
            as scenario_id
    from operation_scenarios
),

allow_list as (
    select operation_key, scenario_id
    from allow_list_entries
    -- A repeated operation must not multiply events; the reference checks report it.
    qualify row_number() over (partition by operation_key order by scenario_id) = 1
),

repeated_ids as (
    -- Ids with more than one copy in an hour: few, so only their copies are ordered.
    select event_id from events group by event_id, event_hour having count(*) > 1
),

later_copies as (
    select source_file, line_number
    from (
        select
            source_file,
            line_number,
            row_number() over (
                partition by event_id, event_hour
                order by arrived_at, source_file, line_number
            ) as copy_number
        from events
        where event_id in (select event_id from repeated_ids)
    ) as copies
    where copy_number > 1
),

derived as (
    select
        e.*,
        l.line_number is not null as is_later_copy,
        coalesce(
            c.latest_earlier_time
            >= e.event_time - cast($dedupe_horizon_hours as integer) * interval 1 hour,
            false
        ) as seen_earlier,
        lower(coalesce(e.cloud_environment_trimmed, '')) as environment_key,
        nullif(e.cc_scenario_trimmed, '') as context_scenario,
        nullif(e.cc_partner_trimmed, '') as context_partner,
        a.scenario_id as allow_list_scenario
    from trimmed as e
    left join allow_list as a on lower(e.operation_name_trimmed) = a.operation_key
    left join earlier_copies as c
        on e.source_file = c.source_file and e.line_number = c.line_number
    left join later_copies as l
        on e.source_file = l.source_file and e.line_number = l.line_number
),

attributed as (
    select
        *,
        coalesce(
            context_scenario, nullif(sc_scenario_trimmed, ''), nullif(allow_list_scenario, '')
        ) as scenario_id,
        coalesce(
            context_partner, nullif(sc_partner_trimmed, ''), nullif(caller_name_trimmed, ''),
            'unknown'
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
        coalesce(test_header_trimmed, '') <> ''
        or lower(coalesce(quote_is_test_trimmed, '')) = 'true'
        or lower(coalesce(is_test_trimmed, '')) = 'true' as is_test_traffic
    from derived
)

select
    event_id,
    event_time,
    cast(date_trunc('minute', event_time) as timestamp) as minute,
    scenario_id,
    partner_id,
    coalesce(request_type_trimmed, '') as request_type,
    coalesce(cloud_environment_trimmed, '') as cloud_environment,
    operation_name,
    role_instance,
    sll_major,
    latency_ms,
    request_status,
    coalesce(request_status < 5, false) as is_success,
    case
        when is_later_copy or seen_earlier then 'duplicate'
        when lower(coalesce(base_type_trimmed, '')) not in (
            'ms.qos.incomingservicerequest', 'incomingservicerequest'
        ) then 'wrong_type'
        when not is_production then 'non_prod'
        when is_test_traffic then 'test_traffic'
        when scenario_id is null then 'unattributed'
    end as exclusion_reason
from attributed
