{#- Engine-specific pieces of the warehouse models (adapter.dispatch): `default__` is DuckDB's SQL (the nightly
    warehouse), `spark__` the same result on Spark (`dsdw warehouse rebuild --target spark`).  A model uses only
    portable SQL and these macros; tests/warehouse/test_spark_parity.py builds every model on both engines and
    compares them row for row (transpiled SQL was silently wrong: ISO weekday off by two, date_diff by month/year).

    The Spark session is created by pipelines/warehouse/spark.py before dbt runs (dbt-spark's `session` method
    reuses it); it registers what the SQL must not carry:
    * `dsdw_person(cpr, person_key)`: every CPR of the lake with HMAC-SHA256(pseudonym key, CPR) as hex, hashed in
      the runner's process and cached in memory, so the key never reaches compiled SQL, dbt's logs or run results;
    * `dsdw_lake__<dataset>`: a view of the dataset's lake Parquet typed by its contract (files written before a
      field was added read it as NULL);
    * the session time zone Europe/Copenhagen (also set by the profile), which dsdw_local_date relies on. -#}

{#- The Danish calendar date of an instant (registreringstidspunkt and other datetimes; § 5 deadlines count
    Danish days). -#}
{% macro dsdw_local_date(col) -%}
    {{ return(adapter.dispatch('dsdw_local_date', 'dsdw_warehouse')(col)) }}
{%- endmacro %}
{% macro default__dsdw_local_date(col) -%}
CAST(timezone('Europe/Copenhagen', {{ col }}) AS DATE)
{%- endmacro %}
{% macro spark__dsdw_local_date(col) -%}
CAST({{ col }} AS DATE)
{%- endmacro %}

{#- Every column of a relation but `cols` (a name or a list). -#}
{% macro star_except(cols) -%}
    {{ return(adapter.dispatch('star_except', 'dsdw_warehouse')(cols if cols is not string else [cols])) }}
{%- endmacro %}
{% macro default__star_except(cols) -%}
* EXCLUDE ({{ cols | join(', ') }})
{%- endmacro %}
{% macro spark__star_except(cols) -%}
* EXCEPT ({{ cols | join(', ') }})
{%- endmacro %}

{#- Which load brought a staged row: a nightly build stages one load (meta.current_load); a one-pass rebuild
    (full_lake) stages every load at once and takes each payload's load from meta.load_plan. -#}
{% macro load_of(alias) -%}
    {%- if var('full_lake', false) -%}
JOIN {{ source('meta', 'load_plan') }} l ON l.payload_id = {{ alias }}._payload_id
    {%- else -%}
CROSS JOIN {{ source('meta', 'current_load') }} l
    {%- endif -%}
{%- endmacro %}

{#- A record version sent twice *in one load* is deduplicated; in a rebuild the partition adds the load. -#}
{% macro load_partition() -%}
    {%- if var('full_lake', false) -%}_load_id, {% endif -%}
{%- endmacro %}

{#- Spark: the lake through the runner's typed views (see above). -#}
{% macro spark__lake_rows(src, dataset, typed_empty) -%}
    {%- if var('full_lake', false) -%}
(SELECT l.*, p.load_id AS _load_id FROM dsdw_lake__{{ dataset }} l
 JOIN {{ source('meta', 'load_plan') }} p ON p.payload_id = l._payload_id)
    {%- else -%}
(SELECT * FROM dsdw_lake__{{ dataset }}
 WHERE _payload_id IN (SELECT payload_id FROM {{ source('meta', 'load_increment') }}))
    {%- endif -%}
{%- endmacro %}

{#- Spark: the runner's in-memory person map, broadcast. Aggregated: Spark's scalar subqueries must be (without the
    max, Spark 4 plans a "single join" as a nested loop over the whole map per row). The hint makes the lookup a
    broadcast hash join: without it the map (~40 MB at national scale, above the 10 MB broadcast threshold) was a
    sort-merge join that shuffled and sorted every staged row by CPR before the QUALIFY window shuffled them again. -#}
{% macro spark__pseudonym(col) -%}
(SELECT /*+ BROADCAST(p) */ max(p.person_key) FROM dsdw_person p WHERE p.cpr = {{ col }})
{%- endmacro %}

{#- Birth date, sex and age from a CPR number (the generated default__ versions in cpr.sql are DuckDB's).
    Century from the 7th digit and the birth year (CPR-kontoret's rule, as pipelines.quality.rules.birth_sql). -#}
{% macro dsdw_foedselsdato(cpr) -%}
    {{ return(adapter.dispatch('dsdw_foedselsdato', 'dsdw_warehouse')(cpr)) }}
{%- endmacro %}
{% macro spark__dsdw_foedselsdato(cpr) -%}
(CASE WHEN {{ cpr }} RLIKE '^[0-9]{10}$' THEN try_to_date(concat(CAST(
    (CASE WHEN substr({{ cpr }},7,1) IN ('5','6','7','8') AND CAST(substr({{ cpr }},5,2) AS INT) >= 58 THEN 1800
          WHEN substr({{ cpr }},7,1) IN ('0','1','2','3')
               OR (substr({{ cpr }},7,1) IN ('4','9') AND CAST(substr({{ cpr }},5,2) AS INT) >= 37) THEN 1900
          ELSE 2000 END) + CAST(substr({{ cpr }},5,2) AS INT) AS STRING),
    substr({{ cpr }},3,2), substr({{ cpr }},1,2)), 'yyyyMMdd') END)
{%- endmacro %}

{% macro dsdw_koen(cpr) -%}
    {{ return(adapter.dispatch('dsdw_koen', 'dsdw_warehouse')(cpr)) }}
{%- endmacro %}
{% macro spark__dsdw_koen(cpr) -%}
CASE WHEN {{ cpr }} RLIKE '^[0-9]{10}$' THEN CASE WHEN CAST(right({{ cpr }}, 1) AS INT) % 2 = 1 THEN 'M' ELSE 'K' END END
{%- endmacro %}

{#- Age in whole years on day d of a person born on b (both SQL expressions). -#}
{% macro dsdw_alder(b, d) -%}
    {{ return(adapter.dispatch('dsdw_alder', 'dsdw_warehouse')(b, d)) }}
{%- endmacro %}
{% macro spark__dsdw_alder(b, d) -%}
(year({{ d }}) - year({{ b }}) - CASE WHEN date_format({{ d }}, 'MMdd') < date_format({{ b }}, 'MMdd') THEN 1 ELSE 0 END)
{%- endmacro %}

{#- ISO 8601 calendar: weekday 1 = Monday .. 7 = Sunday, week number, the week's year, the week's Monday
    (fct_person_week and the weekly marts count ISO weeks). Spark's dayofweek is 1 = Sunday. -#}
{% macro dsdw_isodow(d) -%}
    {{ return(adapter.dispatch('dsdw_isodow', 'dsdw_warehouse')(d)) }}
{%- endmacro %}
{% macro default__dsdw_isodow(d) -%}isodow({{ d }}){%- endmacro %}
{% macro spark__dsdw_isodow(d) -%}(((dayofweek({{ d }}) + 5) % 7) + 1){%- endmacro %}

{% macro dsdw_isoweek(d) -%}
    {{ return(adapter.dispatch('dsdw_isoweek', 'dsdw_warehouse')(d)) }}
{%- endmacro %}
{% macro default__dsdw_isoweek(d) -%}weekofyear({{ d }}){%- endmacro %}
{% macro spark__dsdw_isoweek(d) -%}weekofyear({{ d }}){%- endmacro %}

{% macro dsdw_isoyear(d) -%}
    {{ return(adapter.dispatch('dsdw_isoyear', 'dsdw_warehouse')(d)) }}
{%- endmacro %}
{% macro default__dsdw_isoyear(d) -%}isoyear({{ d }}){%- endmacro %}
{% macro spark__dsdw_isoyear(d) -%}extract(YEAROFWEEK FROM {{ d }}){%- endmacro %}

{% macro dsdw_week_start(d) -%}
    {{ return(adapter.dispatch('dsdw_week_start', 'dsdw_warehouse')(d)) }}
{%- endmacro %}
{% macro default__dsdw_week_start(d) -%}CAST(date_trunc('week', {{ d }}) AS DATE){%- endmacro %}
{% macro spark__dsdw_week_start(d) -%}date_sub({{ d }}, ((dayofweek({{ d }}) + 5) % 7)){%- endmacro %}

{#- Calendar boundaries crossed from a to b (DuckDB's date_diff semantics): part 'day', 'month' or 'year'. -#}
{% macro dsdw_date_diff(part, a, b) -%}
    {{ return(adapter.dispatch('dsdw_date_diff', 'dsdw_warehouse')(part, a, b)) }}
{%- endmacro %}
{% macro default__dsdw_date_diff(part, a, b) -%}date_diff('{{ part }}', {{ a }}, {{ b }}){%- endmacro %}
{% macro spark__dsdw_date_diff(part, a, b) -%}
    {%- if part == 'day' -%}datediff({{ b }}, {{ a }})
    {%- elif part == 'month' -%}((year({{ b }}) - year({{ a }})) * 12 + month({{ b }}) - month({{ a }}))
    {%- elif part == 'year' -%}(year({{ b }}) - year({{ a }}))
    {%- else -%}{{ exceptions.raise_compiler_error("dsdw_date_diff: unsupported part " ~ part) }}
    {%- endif -%}
{%- endmacro %}

{#- d plus n days or months (a DATE). -#}
{% macro dsdw_date_add(d, n, part='day') -%}
    {{ return(adapter.dispatch('dsdw_date_add', 'dsdw_warehouse')(d, n, part)) }}
{%- endmacro %}
{% macro default__dsdw_date_add(d, n, part='day') -%}CAST({{ d }} + INTERVAL ({{ n }}) {{ part | upper }} AS DATE){%- endmacro %}
{% macro spark__dsdw_date_add(d, n, part='day') -%}
    {%- if part == 'day' -%}date_add({{ d }}, {{ n }})
    {%- elif part == 'month' -%}add_months({{ d }}, {{ n }})
    {%- else -%}{{ exceptions.raise_compiler_error("dsdw_date_add: unsupported part " ~ part) }}
    {%- endif -%}
{%- endmacro %}

{#- ---------------------------------------------------------------------------------------------------------------
    Engine functions of the models, where DuckDB's and Spark's SQL differ: `{{ dsdw_unnest("x") }}`.  The
    statistics' Python model (mart_ydelser_beregning's nightly delta, pipelines/warehouse/stats.py) calls the same
    functions as DuckDB macros (pipelines.warehouse.generate.macro_sql, the default__ bodies below); a test keeps
    both bodies in step.
    --------------------------------------------------------------------------------------------------------------- -#}

{#- The elements of a list as rows (in a SELECT list; a LATERAL join's table function differs too much). -#}
{% macro dsdw_unnest(l) -%}
    {{ return(adapter.dispatch('dsdw_unnest', 'dsdw_warehouse')(l)) }}
{%- endmacro %}
{% macro default__dsdw_unnest(l) -%}unnest({{ l }}){%- endmacro %}
{% macro spark__dsdw_unnest(l) -%}explode({{ l }}){%- endmacro %}

{#- The dates from a to b (DATEs) by step (an INTERVAL of days or months) as a list; DuckDB's elements are
    TIMESTAMPs at midnight, Spark's DATEs: cast an element to DATE. -#}
{% macro dsdw_date_series(a, b, step) -%}
    {{ return(adapter.dispatch('dsdw_date_series', 'dsdw_warehouse')(a, b, step)) }}
{%- endmacro %}
{% macro default__dsdw_date_series(a, b, step) -%}
generate_series(CAST({{ a }} AS TIMESTAMP), CAST({{ b }} AS TIMESTAMP), {{ step }})
{%- endmacro %}
{% macro spark__dsdw_date_series(a, b, step) -%}sequence(CAST({{ a }} AS DATE), CAST({{ b }} AS DATE), {{ step }}){%- endmacro %}

{#- Aggregate: the values v ordered by k as a list (NULL values kept). -#}
{% macro dsdw_list_ordered(v, k) -%}
    {{ return(adapter.dispatch('dsdw_list_ordered', 'dsdw_warehouse')(v, k)) }}
{%- endmacro %}
{% macro default__dsdw_list_ordered(v, k) -%}list({{ v }} ORDER BY {{ k }}){%- endmacro %}
{% macro spark__dsdw_list_ordered(v, k) -%}
transform(array_sort(collect_list(named_struct('k', {{ k }}, 'v', {{ v }}))), dsdw_e -> dsdw_e.v)
{%- endmacro %}

{#- Aggregate: the distinct non-NULL values sorted as a list; NULL when there are none. -#}
{% macro dsdw_list_distinct_sorted(v) -%}
    {{ return(adapter.dispatch('dsdw_list_distinct_sorted', 'dsdw_warehouse')(v)) }}
{%- endmacro %}
{% macro default__dsdw_list_distinct_sorted(v) -%}
list(DISTINCT {{ v }} ORDER BY {{ v }}) FILTER (WHERE {{ v }} IS NOT NULL)
{%- endmacro %}
{% macro spark__dsdw_list_distinct_sorted(v) -%}
CASE WHEN count({{ v }}) > 0 THEN array_sort(collect_set({{ v }})) END
{%- endmacro %}

{#- Aggregate: the non-NULL values v joined by sep in the order of k. -#}
{% macro dsdw_string_agg_ordered(v, sep, k) -%}
    {{ return(adapter.dispatch('dsdw_string_agg_ordered', 'dsdw_warehouse')(v, sep, k)) }}
{%- endmacro %}
{% macro default__dsdw_string_agg_ordered(v, sep, k) -%}string_agg({{ v }}, {{ sep }} ORDER BY {{ k }}){%- endmacro %}
{% macro spark__dsdw_string_agg_ordered(v, sep, k) -%}listagg({{ v }}, {{ sep }}) WITHIN GROUP (ORDER BY {{ k }}){%- endmacro %}

{#- An empty list of strings. -#}
{% macro dsdw_empty_strings() -%}
    {{ return(adapter.dispatch('dsdw_empty_strings', 'dsdw_warehouse')()) }}
{%- endmacro %}
{% macro default__dsdw_empty_strings() -%}CAST([] AS VARCHAR[]){%- endmacro %}
{% macro spark__dsdw_empty_strings() -%}CAST(array() AS ARRAY<STRING>){%- endmacro %}

{#- Spark: a code list of data/reference through the runner's view (pipelines/warehouse/spark.py reads each CSV with
    every column a string, as DuckDB's read_csv(all_varchar = true)). -#}
{% macro spark__reference_csv(name) -%}
dsdw_ref__{{ name | replace('.csv', '') }}
{%- endmacro %}

{#- Integer division (both operands non-negative). -#}
{% macro dsdw_div(a, b) -%}
    {{ return(adapter.dispatch('dsdw_div', 'dsdw_warehouse')(a, b)) }}
{%- endmacro %}
{% macro default__dsdw_div(a, b) -%}({{ a }} // {{ b }}){%- endmacro %}
{% macro spark__dsdw_div(a, b) -%}({{ a }} div {{ b }}){%- endmacro %}
