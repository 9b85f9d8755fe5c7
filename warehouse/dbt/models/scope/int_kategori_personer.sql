{{ config(materialized='table', schema='staging') }}
-- Persons whose § 2, nr. 3-5 category spells (fct_kategori_forloeb) this load can change: a new or retracted
-- version of a samtale, foerste_henvendelse, kontaktgruppe or sdp_opfoelgning record.  A one-pass rebuild
-- (var full_lake): every person.
{%- set facts = ['fct_foerste_henvendelse', 'fct_samtale', 'fct_kontaktgruppe', 'fct_sdp_opfoelgning'] %}
SELECT DISTINCT person_key FROM (
{%- for f in facts %}
    SELECT person_key FROM {{ ref(f) }}
    {%- if not var('full_lake', false) %}
    WHERE load_id = {{ load_id() }} OR _payload_id IN (SELECT payload_id FROM {{ source('meta', 'retracted_payload') }}
                                                       WHERE load_id = {{ load_id() }})
    {%- endif %}
    {{ 'UNION ALL' if not loop.last }}
{%- endfor %}
) p
WHERE person_key IS NOT NULL
