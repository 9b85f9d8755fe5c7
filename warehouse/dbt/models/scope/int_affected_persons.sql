{{ config(materialized='table', schema='staging') }}
-- The load's affected persons: a new or retracted version of a registration that shapes a person's derived
-- rows (kontaktgruppe spells, § 15-16; tilmelding/afmelding; a-kasse tilmelding/afmelding, § 17, stk. 6-7;
-- § 53).  dim_person and fct_person_week delete and recompute exactly these persons' rows.  Read from the
-- facts by this load's load_id (not from staging), so a build that skips a dataset with nothing new never
-- reads a stale staging table.  A one-pass rebuild (var full_lake) computes every person at once: all are
-- affected.
{%- set facts = ['fct_kontaktgruppe', 'fct_akasse_tilmelding', 'fct_akasse_afmelding', 'fct_tilmelding',
                 'fct_afmelding'] %}
SELECT DISTINCT person_key FROM (
{%- for f in facts %}
    SELECT person_key FROM {{ ref(f) }}{% if not var('full_lake', false) %} WHERE load_id = {{ load_id() }}{% endif %}
    UNION ALL
    -- persons only in a payload this load retracts lose rows without a new version
    SELECT person_key FROM {{ ref(f) }}
    WHERE _payload_id IN (SELECT payload_id FROM {{ source('meta', 'retracted_payload') }} WHERE load_id = {{ load_id() }})
    {{ 'UNION ALL' if not loop.last }}
{%- endfor %}
) p
WHERE person_key IS NOT NULL
