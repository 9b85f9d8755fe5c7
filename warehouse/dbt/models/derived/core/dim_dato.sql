{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per calendar day 1990-01-01 .. 2040-12-31 (dates are Europe/Copenhagen calendar days)
-- keys: dato
-- ISO weeks (uge_id 'YYYY-Www') for weekly measures; a week belongs to the month, quarter and year of its
-- Thursday (uge_maaned), so every ISO week lies in exactly one month for the weekly statistics.
SELECT
    d AS dato,
    year(d) AS aar,
    quarter(d) AS kvartal,
    month(d) AS maaned_nr,
    CAST(date_trunc('month', d) AS DATE) AS maaned,
    CAST(date_trunc('quarter', d) AS DATE) AS kvartal_start,
    {{ dsdw_isoyear("d") }} AS iso_aar,
    weekofyear(d) AS iso_uge,
    CAST({{ dsdw_isoyear("d") }} AS STRING) || '-W' || lpad(CAST(weekofyear(d) AS STRING), 2, '0') AS uge_id,
    CAST(date_trunc('week', d) AS DATE) AS uge_start,
    CAST(date_trunc('month', CAST(date_trunc('week', d) AS DATE) + 3) AS DATE) AS uge_maaned,
    {{ dsdw_isodow("d") }} AS ugedag,
    {{ dsdw_isodow("d") }} >= 6 AS er_weekend
-- the days as rows (a generator is not nested in an expression: Spark's rule)
FROM (SELECT CAST(u AS DATE) AS d
      FROM (SELECT {{ dsdw_unnest((dsdw_date_series("DATE '1990-01-01'", "DATE '2040-12-31'", "INTERVAL 1 DAY"))) }} AS u) s) t
