{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per ydelsesgruppe (the statistics' benefit groups, Jobindsats-style), with its kontaktgrupper
-- keys: ydelsesgruppe
-- source: the ydelsesgruppe column of data/reference/kontaktgrupper.csv (dsdw's mapping of the § 15 kontaktgrupper);
-- the Danish labels are dsdw's (below); panel_status: the weekly panel's status the group maps to
-- (data/reference/panel_status.csv).  A ydelsesgruppe without a label or panel status fails the load.
WITH kg AS (
    SELECT ydelsesgruppe, kode, paragraf
    FROM {{ reference_csv('kontaktgrupper.csv') }}
), navne(ydelsesgruppe, navn) AS (
    VALUES
        ('dagpenge', 'A-dagpenge og MAY'),
        ('kontanthjaelp', 'Kontanthjælp'),
        ('uddannelseshjaelp', 'Uddannelseshjælp'),
        ('revalidering', 'Revalidering og forrevalidering'),
        ('sygedagpenge', 'Sygedagpenge'),
        ('ledighedsydelse', 'Ledighedsydelse'),
        ('fleksjob', 'Fleksjob'),
        ('ressourceforloeb', 'Ressourceforløb'),
        ('jobafklaring', 'Jobafklaringsforløb'),
        ('foertidspension', 'Førtidspension'),
        ('integration', 'Integrationsprogram uden kontanthjælp'),
        ('beskaeftiget_med_indsats', 'Beskæftiget med indsats'),
        ('seniorjob', 'Seniorjob'),
        ('uden_ydelse', 'Tilmeldt uden ydelse')
), status AS (
    SELECT {{ dsdw_unnest("ydelsesgrupper") }} AS ydelsesgruppe, status, prioritet FROM {{ ref('dim_panelstatus') }}
)
SELECT
    kg.ydelsesgruppe,
    coalesce(any_value(n.navn), {{ raise_error_fn() }}('ydelsesgruppe ' || kg.ydelsesgruppe || ' has no label in dim_ydelsesgruppe.sql')) AS navn,
    {{ dsdw_list_ordered("kg.kode", "CAST(kg.kode AS INTEGER)") }} AS kontaktgrupper,  -- Kontaktgrupperne (§ 15) i ydelsesgruppen.
    {{ dsdw_string_agg_ordered("kg.paragraf", "'; '", "CAST(kg.kode AS INTEGER)") }} AS paragraffer,  -- Kontaktgruppernes § 15-numre.
    coalesce(any_value(s.status), {{ raise_error_fn() }}('ydelsesgruppe ' || kg.ydelsesgruppe || ' has no status in panel_status.csv'))
        AS panel_status,  -- Status i ugepanelet fct_person_week (dim_panelstatus).
    any_value(s.prioritet) AS panel_prioritet  -- Statussens prioritet i ugepanelet.
FROM kg
LEFT JOIN navne n ON n.ydelsesgruppe = kg.ydelsesgruppe
LEFT JOIN status s ON s.ydelsesgruppe = kg.ydelsesgruppe
GROUP BY kg.ydelsesgruppe
