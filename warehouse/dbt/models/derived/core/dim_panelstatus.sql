{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per status of the weekly event-history panel fct_person_week
-- keys: status
-- source: data/reference/panel_status.csv.  prioritet: when several states (kontaktgruppe spells, § 15) overlap in
-- a week, the status with the lowest prioritet wins (DST's DOMYD order: pension > a-dagpenge > sygedagpenge >
-- kontanthjælp > revalidering, the other groups placed beside their nearest DOMYD neighbour; see the kilde column).
-- The status with no ydelsesgrupper (selvforsoerget) is the one of weeks without any state.
SELECT
    kode AS status,
    navn,
    CAST(prioritet AS INTEGER) AS prioritet,  -- Lavest vinder, når flere tilstande overlapper i en uge.
    CASE WHEN coalesce(ydelsesgrupper, '') = '' THEN {{ dsdw_empty_strings() }}
         ELSE split(ydelsesgrupper, ';') END AS ydelsesgrupper,  -- Ydelsesgrupperne der giver status.
    coalesce(ydelsesgrupper, '') = '' AS er_uden_tilstand,  -- Sand for status i uger uden tilstand (selvforsørget).
    beskrivelse,
    kilde
FROM {{ reference_csv('panel_status.csv') }}
