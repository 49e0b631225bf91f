-- raw_events: one row per non-blank line of the landing files of the window, flattened per SPEC §2.
-- Grain: landing line (file, line_number). reject_reason is null for a valid event; a rejected
-- line goes to quarantine.rejected_events with that reason.
-- Input: landing_lines(file, line_number, line BLOB). Window: the landing folder's hour; an event
-- whose time falls outside it is rejected rather than silently counted in another hour.
-- DuckDB-specific on purpose (JSON parsing); every later stage is portable SQL.
with decoded as (
    select file, line_number, line, try(decode(line)) as text
    from landing_lines
),

nonblank as (
    select * from decoded
    where text is null or trim(replace(replace(text, chr(13), ''), chr(9), '')) <> ''
),

parsed as (
    select
        file,
        line_number,
        line,
        text,
        -- One parse per line: every leaf stays JSON so that its type can be checked below.
        try(json_transform(text, '{
            "id": "JSON", "time": "JSON",
            "data": {
                "baseType": "JSON", "cC": "JSON", "scScenario": "JSON", "scPartner": "JSON",
                "testHeader": "JSON", "quoteIsTest": "JSON", "isTest": "JSON",
                "baseData": {
                    "operationName": "JSON", "callerName": "JSON", "requestType": "JSON",
                    "latencyMs": "JSON", "requestStatus": "JSON"
                }
            },
            "ext": {"cloud": {"environment": "JSON", "roleInstance": "JSON"},
                    "sll": {"libVer": "JSON"}}
        }')) as doc
    from nonblank
),

leaves as (
    select
        file,
        line_number,
        line,
        text,
        doc,
        doc.id as id,
        doc.time as time,
        doc.data.baseType as base_type,
        doc.data.cC as cc,
        doc.data.scScenario as sc_scenario,
        doc.data.scPartner as sc_partner,
        doc.data.testHeader as test_header,
        doc.data.quoteIsTest as quote_is_test,
        doc.data.isTest as is_test,
        doc.data.baseData.operationName as operation_name,
        doc.data.baseData.callerName as caller_name,
        doc.data.baseData.requestType as request_type,
        doc.data.baseData.latencyMs as latency,
        doc.data.baseData.requestStatus as status,
        doc.ext.cloud.environment as environment,
        doc.ext.cloud.roleInstance as role_instance,
        doc.ext.sll.libVer as lib_ver
    from parsed
),

typed as (
    select
        *,
        coalesce(json_type(id), 'NULL') as id_type,
        coalesce(json_type(time), 'NULL') as time_type,
        coalesce(json_type(base_type), 'NULL') as base_type_type,
        coalesce(json_type(latency), 'NULL') as latency_type,
        coalesce(json_type(status), 'NULL') as status_type,
        -- The first optional text field that holds something other than a string or null.
        case
            when coalesce(json_type(cc), 'NULL') not in ('VARCHAR', 'NULL') then 'data.cC'
            when coalesce(json_type(sc_scenario), 'NULL') not in ('VARCHAR', 'NULL')
                then 'data.scScenario'
            when coalesce(json_type(sc_partner), 'NULL') not in ('VARCHAR', 'NULL')
                then 'data.scPartner'
            when coalesce(json_type(test_header), 'NULL') not in ('VARCHAR', 'NULL')
                then 'data.testHeader'
            when coalesce(json_type(quote_is_test), 'NULL') not in ('VARCHAR', 'NULL')
                then 'data.quoteIsTest'
            when coalesce(json_type(is_test), 'NULL') not in ('VARCHAR', 'NULL')
                then 'data.isTest'
            when coalesce(json_type(operation_name), 'NULL') not in ('VARCHAR', 'NULL')
                then 'data.baseData.operationName'
            when coalesce(json_type(caller_name), 'NULL') not in ('VARCHAR', 'NULL')
                then 'data.baseData.callerName'
            when coalesce(json_type(request_type), 'NULL') not in ('VARCHAR', 'NULL')
                then 'data.baseData.requestType'
            when coalesce(json_type(environment), 'NULL') not in ('VARCHAR', 'NULL')
                then 'ext.cloud.environment'
            when coalesce(json_type(role_instance), 'NULL') not in ('VARCHAR', 'NULL')
                then 'ext.cloud.roleInstance'
            when coalesce(json_type(lib_ver), 'NULL') not in ('VARCHAR', 'NULL')
                then 'ext.sll.libVer'
        end as mistyped_text_field
    from leaves
),

valued as (
    select
        *,
        id ->> '$' as event_id,
        case
            when time_type = 'VARCHAR'
                then cast(timezone('UTC', try_cast(time ->> '$' as timestamptz)) as timestamp)
        end as event_time,
        case
            when latency_type in ('UBIGINT', 'BIGINT', 'DOUBLE') then cast(latency as double)
        end as latency_ms,
        case
            when status_type in ('UBIGINT', 'BIGINT', 'DOUBLE') then cast(status as double)
        end as status_number
    from typed
),

classified as (
    select
        *,
        case
            when text is null then 'line is not valid UTF-8'
            when doc is null and not json_valid(text) then 'not valid JSON'
            -- Arrays and scalars parse into an empty document: tell them apart from a missing id.
            when doc is null or (id_type = 'NULL' and json_type(text) <> 'OBJECT')
                then 'JSON value is not an object'
            when id_type = 'NULL' then 'missing required field id'
            when id_type <> 'VARCHAR' then 'id must be a string'
            when trim(event_id) = '' then 'id is empty'
            when time_type = 'NULL' then 'missing required field time'
            when time_type <> 'VARCHAR' then 'time must be a string'
            when event_time is null then 'time is not an ISO-8601 timestamp'
            when base_type_type = 'NULL' then 'missing required field data.baseType'
            when base_type_type <> 'VARCHAR' then 'data.baseType must be a string'
            when mistyped_text_field is not null then mistyped_text_field || ' must be a string'
            when latency_type not in ('UBIGINT', 'BIGINT', 'DOUBLE', 'NULL')
                then 'data.baseData.latencyMs must be a number'
            when latency_ms < 0 then 'data.baseData.latencyMs must not be negative'
            when status_type not in ('UBIGINT', 'BIGINT', 'DOUBLE', 'NULL')
                or status_number <> floor(status_number)
                or abs(status_number) > 2147483647
                then 'data.baseData.requestStatus must be an integer'
            when event_time < cast($window_start as timestamp)
                or event_time >= cast($window_end as timestamp)
                then 'time is outside the hour of its landing folder'
        end as reject_reason
    from valued
)

select
    file as source_file,
    line_number,
    reject_reason,
    coalesce(text, cast(line as varchar)) as raw_line,
    event_id,
    event_time,
    base_type ->> '$' as base_type,
    environment ->> '$' as cloud_environment,
    role_instance ->> '$' as role_instance,
    lib_ver ->> '$' as sll_version,
    try_cast(regexp_extract(lib_ver ->> '$', '^[ ]*([0-9]+)', 1) as integer) as sll_major,
    cc ->> '$' as correlation_context,
    operation_name ->> '$' as operation_name,
    caller_name ->> '$' as caller_name,
    request_type ->> '$' as request_type,
    latency_ms,
    case when reject_reason is null then cast(status_number as integer) end as request_status,
    sc_scenario ->> '$' as sc_scenario,
    sc_partner ->> '$' as sc_partner,
    test_header ->> '$' as test_header,
    quote_is_test ->> '$' as quote_is_test,
    is_test ->> '$' as is_test
from classified
