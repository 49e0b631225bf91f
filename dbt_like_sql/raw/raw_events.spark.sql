-- raw_events on Spark (TELEMETRY_ENGINE=spark): the same verdicts, reasons, line numbers and
-- columns as raw_events.sql, which DuckDB runs; tests/spark/test_raw_parity.py holds the two to
-- each other on every reject reason. JSON parsing is the one thing the engines do differently,
-- so this is the one stage written twice: Spark reads each line as a VARIANT, whose leaves
-- carry their JSON type (DuckDB's file reads them as JSON text and looks at the first
-- character).
-- Input: landing_lines(file, line_number, line BINARY) and landing_arrivals(file, arrived_at,
-- window_start, window_end).
-- Window: each file's landing hour, as in raw_events.sql.
with decoded as (
    -- A binary cast to text keeps the bytes as they are: invalid UTF-8 is told apart here.
    select
        file,
        line_number,
        line,
        case when is_valid_utf8(cast(line as string))
            then regexp_replace(cast(line as string), '^\uFEFF+', '')
        end as text
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
        -- Spark's parser stops after the first JSON value and ignores what follows it; DuckDB's
        -- rejects the line. Parsed inside an array that ends with a marker, anything after the
        -- value is either a syntax error or a third element.
        try_parse_json(concat('[', text, '\n, "end of line"]')) as wrapped
    from arrived
    where text is null or not text rlike '^[ \t\r\n]*\\z'
),

whole as (
    select
        *,
        case when try_variant_get(wrapped, '$[1]', 'string') = 'end of line'
            and try_variant_get(wrapped, '$[2]', 'variant') is null
            then try_variant_get(wrapped, '$[0]', 'variant')
        end as doc
    from nonblank
),

leaves as (
    -- The JSON type of each leaf the stage reads: null when missing or JSON null.
    select
        *,
        schema_of_variant(doc) as doc_type,
        nullif(schema_of_variant(doc:id), 'VOID') as id_type,
        nullif(schema_of_variant(doc:time), 'VOID') as time_type,
        nullif(schema_of_variant(doc:data), 'VOID') as data_type,
        nullif(schema_of_variant(doc:data.baseType), 'VOID') as base_type_type,
        nullif(schema_of_variant(doc:data.baseData), 'VOID') as base_data_type,
        nullif(schema_of_variant(doc:data.baseData.latencyMs), 'VOID') as latency_type,
        nullif(schema_of_variant(doc:data.baseData.requestStatus), 'VOID') as status_type,
        nullif(schema_of_variant(doc:ext), 'VOID') as ext_type,
        nullif(schema_of_variant(doc:ext.cloud), 'VOID') as cloud_type,
        nullif(schema_of_variant(doc:ext.sll), 'VOID') as sll_type,
        -- The first optional text field that holds something other than a string or null.
        case
            when nullif(schema_of_variant(doc:data.cC), 'VOID') <> 'STRING' then 'data.cC'
            when nullif(schema_of_variant(doc:data.scScenario), 'VOID') <> 'STRING'
                then 'data.scScenario'
            when nullif(schema_of_variant(doc:data.scPartner), 'VOID') <> 'STRING'
                then 'data.scPartner'
            when nullif(schema_of_variant(doc:data.testHeader), 'VOID') <> 'STRING'
                then 'data.testHeader'
            when nullif(schema_of_variant(doc:data.quoteIsTest), 'VOID') <> 'STRING'
                then 'data.quoteIsTest'
            when nullif(schema_of_variant(doc:data.isTest), 'VOID') <> 'STRING' then 'data.isTest'
            when nullif(schema_of_variant(doc:data.baseData.operationName), 'VOID') <> 'STRING'
                then 'data.baseData.operationName'
            when nullif(schema_of_variant(doc:data.baseData.callerName), 'VOID') <> 'STRING'
                then 'data.baseData.callerName'
            when nullif(schema_of_variant(doc:data.baseData.requestType), 'VOID') <> 'STRING'
                then 'data.baseData.requestType'
            when nullif(schema_of_variant(doc:ext.cloud.environment), 'VOID') <> 'STRING'
                then 'ext.cloud.environment'
            when nullif(schema_of_variant(doc:ext.cloud.roleInstance), 'VOID') <> 'STRING'
                then 'ext.cloud.roleInstance'
            when nullif(schema_of_variant(doc:ext.sll.libVer), 'VOID') <> 'STRING'
                then 'ext.sll.libVer'
        end as mistyped_text_field,
        try_variant_get(doc, '$.id', 'string') as id,
        try_variant_get(doc, '$.time', 'string') as time_text,
        try_variant_get(doc, '$.data.baseData.latencyMs', 'double') as latency,
        try_variant_get(doc, '$.data.baseData.requestStatus', 'double') as status
    from whole
),

kinds as (
    select
        *,
        id_type is not null and id_type <> 'STRING' as id_mistyped,
        latency_type is not null and latency_type not in ('BIGINT', 'DOUBLE', 'FLOAT')
            and latency_type not like 'DECIMAL%' as latency_mistyped,
        status_type is not null and status_type not in ('BIGINT', 'DOUBLE', 'FLOAT')
            and status_type not like 'DECIMAL%' as status_mistyped,
        -- A timestamp has a time of day: a bare date would silently mean midnight. The offset,
        -- if any, is applied by reading it as an instant, then taken as UTC wall time.
        case when time_text rlike '^\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}'
            then cast(try_cast(time_text as timestamp_ltz) as timestamp_ntz)
        end as parsed_time
    from leaves
),

classified as (
    select
        *,
        case
            when text is null then 'line is not valid UTF-8'
            when doc is null then 'not valid JSON'
            when doc_type not like 'OBJECT%' then 'JSON value is not an object'
            when id_type is null then 'missing required field id'
            when id_mistyped then 'id must be a string'
            when regexp_replace(regexp_replace(id, '^[ \t\r\n]+', ''), '[ \t\r\n]+\\z', '') = ''
                then 'id is empty'
            when time_type is null then 'missing required field time'
            when time_type <> 'STRING' then 'time must be a string'
            when parsed_time is null then 'time is not an ISO-8601 timestamp'
            when data_type not like 'OBJECT%' then 'data must be an object'
            when base_type_type is null then 'missing required field data.baseType'
            when base_type_type <> 'STRING' then 'data.baseType must be a string'
            when mistyped_text_field is not null then mistyped_text_field || ' must be a string'
            when base_data_type not like 'OBJECT%' then 'data.baseData must be an object'
            when ext_type not like 'OBJECT%' then 'ext must be an object'
            when cloud_type not like 'OBJECT%' then 'ext.cloud must be an object'
            when sll_type not like 'OBJECT%' then 'ext.sll must be an object'
            when latency_mistyped then 'data.baseData.latencyMs must be a number'
            when latency < 0 then 'data.baseData.latencyMs must not be negative'
            when isnan(latency) or abs(latency) = double('Infinity')
                then 'data.baseData.latencyMs must be a finite number'
            when status_mistyped
                or round(status) <> status
                or abs(status) > 2147483647
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
    case when reject_reason is not null then coalesce(
        regexp_replace(text, '\n\\z', ''),
        -- Invalid UTF-8 shown as DuckDB casts a BLOB to text: printable ASCII as it is, other
        -- bytes (and \ " ') as \xHH.
        regexp_replace(array_join(transform(regexp_extract_all(hex(line), '(..)', 1),
            byte -> case when byte between '20' and '7E' and byte not in ('5C', '22', '27')
                then chr(conv(byte, 16, 10)) else concat('\\x', byte) end), ''), '\\\\x0A\\z', '')
    ) end as raw_line,
    regexp_replace(regexp_replace(id, '^[ \t\r\n]+', ''), '[ \t\r\n]+\\z', '') as event_id,
    parsed_time as event_time,
    try_variant_get(doc, '$.data.baseType', 'string') as base_type,
    try_variant_get(doc, '$.ext.cloud.environment', 'string') as cloud_environment,
    try_variant_get(doc, '$.ext.cloud.roleInstance', 'string') as role_instance,
    try_variant_get(doc, '$.ext.sll.libVer', 'string') as sll_version,
    try_cast(regexp_extract(try_variant_get(doc, '$.ext.sll.libVer', 'string'),
        '^\\s*([0-9]+)', 1) as integer) as sll_major,
    try_variant_get(doc, '$.data.cC', 'string') as correlation_context,
    try_variant_get(doc, '$.data.baseData.operationName', 'string') as operation_name,
    try_variant_get(doc, '$.data.baseData.callerName', 'string') as caller_name,
    try_variant_get(doc, '$.data.baseData.requestType', 'string') as request_type,
    latency as latency_ms,
    try_cast(status as integer) as request_status,
    try_variant_get(doc, '$.data.scScenario', 'string') as sc_scenario,
    try_variant_get(doc, '$.data.scPartner', 'string') as sc_partner,
    try_variant_get(doc, '$.data.testHeader', 'string') as test_header,
    try_variant_get(doc, '$.data.quoteIsTest', 'string') as quote_is_test,
    try_variant_get(doc, '$.data.isTest', 'string') as is_test
from classified
