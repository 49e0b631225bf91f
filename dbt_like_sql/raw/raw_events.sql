-- raw_events: one row per non-blank line of the landing files of the window, flattened per SPEC §2.
-- Grain: landing line (file, line_number). reject_reason is null for a valid event; a rejected
-- line goes to quarantine.rejected_events with that reason.
-- Input: landing_lines(file, line_number, line BLOB) and landing_arrivals(file, arrived_at,
-- window_start, window_end): when each file landed (its modification time), which decides the
-- first copy of a repeated event id, and the hour of the landing folder it was read from.
-- Window: each file's landing hour (lines from no file: [$window_start, $window_end)); an event
-- whose time falls outside it is rejected rather than silently counted in another hour.
-- DuckDB-specific on purpose (JSON parsing); every later stage is portable SQL.
with decoded as (
    -- A byte-order mark may open a file written by some editors; it is not part of the event.
    -- A line may end with its newline, which JSON reads as white space; only a rejected line's
    -- text is trimmed of it (rtrim costs as much as the whole parse, on every line).
    select file, line_number, line, ltrim(try(decode(line)), chr(65279)) as text
    from landing_lines
),

arrived as (
    select
        lines.*,
        arrivals.arrived_at,
        -- Several hours' files may be judged in one statement, each against its own hour.
        coalesce(arrivals.window_start, cast($window_start as timestamp)) as line_window_start,
        coalesce(arrivals.window_end, cast($window_end as timestamp)) as line_window_end
    from decoded as lines
    left join landing_arrivals as arrivals on lines.file = arrivals.file
),

nonblank as (
    select
        *,
        -- try() would fall back to row-at-a-time for every vector holding one bad line.
        json_valid(text) and left(ltrim(text, ' ' || chr(9) || chr(10) || chr(13)), 1) = '{'
            as is_object
    from arrived
    where text is null or not regexp_full_match(text, '[ \t\r\n]*')
),

parsed as (
    select
        file,
        line_number,
        arrived_at,
        line_window_start,
        line_window_end,
        line,
        text,
        is_object,
        -- Leaves kept as JSON text, only to tell their types apart (first character).
        case when is_object then json_transform(text, '{
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
        }') end as doc,
        -- The values, cast leniently; a value is used only once its leaf has the right type.
        case when is_object then json_transform(text, '{
            "id": "VARCHAR", "time": "VARCHAR",
            "data": {
                "baseType": "VARCHAR", "cC": "VARCHAR", "scScenario": "VARCHAR",
                "scPartner": "VARCHAR", "testHeader": "VARCHAR", "quoteIsTest": "VARCHAR",
                "isTest": "VARCHAR",
                "baseData": {
                    "operationName": "VARCHAR", "callerName": "VARCHAR", "requestType": "VARCHAR",
                    "latencyMs": "DOUBLE", "requestStatus": "DOUBLE"
                }
            },
            "ext": {"cloud": {"environment": "VARCHAR", "roleInstance": "VARCHAR"},
                    "sll": {"libVer": "VARCHAR"}}
        }') end as val
    from nonblank
),

kinds as (
    -- The kind of each leaf: s string, n number, x anything else, null when missing or null.
    select
        *,
        case left(doc.id, 1) when '"' then 's' else 'x' end as id_kind,
        case left(doc.time, 1) when '"' then 's' else 'x' end as time_kind,
        case left(doc.data.baseType, 1) when '"' then 's' else 'x' end as base_type_kind,
        case
            when doc.data.baseData.latencyMs is null then null
            when regexp_matches(left(doc.data.baseData.latencyMs, 1), '[-0-9]') then 'n'
            else 'x'
        end as latency_kind,
        case
            when doc.data.baseData.requestStatus is null then null
            when regexp_matches(left(doc.data.baseData.requestStatus, 1), '[-0-9]') then 'n'
            else 'x'
        end as status_kind,
        -- The first optional text field that holds something other than a string or null.
        case
            when left(doc.data.cC, 1) <> '"' then 'data.cC'
            when left(doc.data.scScenario, 1) <> '"' then 'data.scScenario'
            when left(doc.data.scPartner, 1) <> '"' then 'data.scPartner'
            when left(doc.data.testHeader, 1) <> '"' then 'data.testHeader'
            when left(doc.data.quoteIsTest, 1) <> '"' then 'data.quoteIsTest'
            when left(doc.data.isTest, 1) <> '"' then 'data.isTest'
            when left(doc.data.baseData.operationName, 1) <> '"'
                then 'data.baseData.operationName'
            when left(doc.data.baseData.callerName, 1) <> '"' then 'data.baseData.callerName'
            when left(doc.data.baseData.requestType, 1) <> '"' then 'data.baseData.requestType'
            when left(doc.ext.cloud.environment, 1) <> '"' then 'ext.cloud.environment'
            when left(doc.ext.cloud.roleInstance, 1) <> '"' then 'ext.cloud.roleInstance'
            when left(doc.ext.sll.libVer, 1) <> '"' then 'ext.sll.libVer'
        end as mistyped_text_field,
        -- A timestamp has a time of day: a bare date would silently mean midnight.
        case when regexp_matches(val.time, '^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}')
            then cast(timezone('UTC', try_cast(val.time as timestamptz)) as timestamp)
        end as parsed_time
    from parsed
),

classified as (
    select
        *,
        case
            when text is null then 'line is not valid UTF-8'
            when not is_object and not json_valid(text) then 'not valid JSON'
            when not is_object then 'JSON value is not an object'
            when doc.id is null then 'missing required field id'
            when id_kind <> 's' then 'id must be a string'
            when trim(val.id, ' ' || chr(9) || chr(10) || chr(13)) = '' then 'id is empty'
            when doc.time is null then 'missing required field time'
            when time_kind <> 's' then 'time must be a string'
            when parsed_time is null then 'time is not an ISO-8601 timestamp'
            -- A container that is not an object parses like an empty one, so its type is
            -- checked (one more parse) only when none of its fields came through.
            when doc.data.baseType is null and doc.data.cC is null
                and coalesce(json_type(text, '$.data'), 'NULL') not in ('OBJECT', 'NULL')
                then 'data must be an object'
            when doc.data.baseType is null then 'missing required field data.baseType'
            when base_type_kind <> 's' then 'data.baseType must be a string'
            when mistyped_text_field is not null then mistyped_text_field || ' must be a string'
            when doc.data.baseData.operationName is null and doc.data.baseData.callerName is null
                and doc.data.baseData.requestType is null and doc.data.baseData.latencyMs is null
                and doc.data.baseData.requestStatus is null
                and coalesce(json_type(text, '$.data.baseData'), 'NULL') not in ('OBJECT', 'NULL')
                then 'data.baseData must be an object'
            when doc.ext.cloud.environment is null and doc.ext.cloud.roleInstance is null
                and doc.ext.sll.libVer is null
                and coalesce(json_type(text, '$.ext'), 'NULL') not in ('OBJECT', 'NULL')
                then 'ext must be an object'
            when doc.ext.cloud.environment is null and doc.ext.cloud.roleInstance is null
                and coalesce(json_type(text, '$.ext.cloud'), 'NULL') not in ('OBJECT', 'NULL')
                then 'ext.cloud must be an object'
            when doc.ext.sll.libVer is null
                and coalesce(json_type(text, '$.ext.sll'), 'NULL') not in ('OBJECT', 'NULL')
                then 'ext.sll must be an object'
            when latency_kind = 'x' then 'data.baseData.latencyMs must be a number'
            when val.data.baseData.latencyMs < 0 then 'data.baseData.latencyMs must not be negative'
            when not isfinite(val.data.baseData.latencyMs)
                then 'data.baseData.latencyMs must be a finite number'
            when status_kind = 'x'
                or val.data.baseData.requestStatus <> floor(val.data.baseData.requestStatus)
                or abs(val.data.baseData.requestStatus) > 2147483647
                then 'data.baseData.requestStatus must be an integer'
            when parsed_time < line_window_start or parsed_time >= line_window_end
                then 'time is outside the hour of its landing folder'
        end as reject_reason
    from kinds
)

select
    file as source_file,
    line_number,
    arrived_at,
    reject_reason,
    case when reject_reason is not null
        then coalesce(rtrim(text, chr(10)), regexp_replace(cast(line as varchar), '\\x0A$', ''))
    end as raw_line,
    -- Trimmed of all whitespace (SPEC §3): a padded copy is the same event.
    trim(val.id, ' ' || chr(9) || chr(10) || chr(13)) as event_id,
    parsed_time as event_time,
    val.data.baseType as base_type,
    val.ext.cloud.environment as cloud_environment,
    val.ext.cloud.roleInstance as role_instance,
    val.ext.sll.libVer as sll_version,
    try_cast(regexp_extract(val.ext.sll.libVer, '^\s*([0-9]+)', 1) as integer) as sll_major,
    val.data.cC as correlation_context,
    val.data.baseData.operationName as operation_name,
    val.data.baseData.callerName as caller_name,
    val.data.baseData.requestType as request_type,
    val.data.baseData.latencyMs as latency_ms,
    -- try_cast: the cast may run before the rejection of an out-of-range status takes effect.
    try_cast(val.data.baseData.requestStatus as integer) as request_status,
    val.data.scScenario as sc_scenario,
    val.data.scPartner as sc_partner,
    val.data.testHeader as test_header,
    val.data.quoteIsTest as quote_is_test,
    val.data.isTest as is_test
from classified
