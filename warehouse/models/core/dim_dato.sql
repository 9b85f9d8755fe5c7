-- model: dim_dato
-- layer: core
-- materialization: table
-- grain: one row per calendar day 1990-01-01 .. 2040-12-31 (dates are Europe/Copenhagen calendar days)
-- keys: dato
-- ISO weeks (uge_id 'YYYY-Www') for weekly measures; a week belongs to the month, quarter and year of its
-- Thursday (uge_maaned), so every ISO week lies in exactly one month for the weekly statistics.
SELECT
    CAST(d AS DATE) AS dato,
    year(d) AS aar,
    quarter(d) AS kvartal,
    month(d) AS maaned_nr,
    CAST(date_trunc('month', d) AS DATE) AS maaned,
    CAST(date_trunc('quarter', d) AS DATE) AS kvartal_start,
    isoyear(d) AS iso_aar,
    week(d) AS iso_uge,
    printf('%04d-W%02d', isoyear(d), week(d)) AS uge_id,
    CAST(date_trunc('week', d) AS DATE) AS uge_start,
    CAST(date_trunc('month', date_trunc('week', d) + INTERVAL 3 DAY) AS DATE) AS uge_maaned,
    isodow(d) AS ugedag,
    isodow(d) >= 6 AS er_weekend
FROM generate_series(TIMESTAMP '1990-01-01', TIMESTAMP '2040-12-31', INTERVAL 1 DAY) AS t(d)
