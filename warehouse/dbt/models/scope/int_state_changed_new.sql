{{ config(materialized='table', schema='staging') }}
-- The changed spells' current version after this load (deleted spells have none).
{{ current_versions(ref('fct_kontaktgruppe'), ['kontaktgruppe_id'], source('meta', 'retracted_payload'),
                    "r.payload_id IS NULL AND f.kontaktgruppe_id IN (SELECT kontaktgruppe_id FROM "
                    ~ ref('int_state_changed_keys') ~ ")") }}
