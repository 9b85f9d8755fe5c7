{{ config(materialized='table', schema='staging') }}
-- The changed spells' current version before this load: its own rows left out, the payloads it retracts still
-- in ("before" is by load_id, so two loads on one day are two steps).
{{ current_versions(ref('fct_kontaktgruppe'), ['kontaktgruppe_id'], source('meta', 'retracted_payload'),
                    "f.load_id IS DISTINCT FROM " ~ load_id() ~ " AND (r.payload_id IS NULL OR r.load_id = "
                    ~ load_id() ~ ") AND f.kontaktgruppe_id IN (SELECT kontaktgruppe_id FROM "
                    ~ ref('int_state_changed_keys') ~ ")") }}
