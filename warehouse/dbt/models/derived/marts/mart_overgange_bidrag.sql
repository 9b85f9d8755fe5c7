{{ config(materialized='incremental', incremental_strategy='append', schema='main') }}
-- layer: mart
-- grain: one row per load x ISO week x kommunekode x fra_status x til_status: the number of weekly panel rows with a
-- change of status (forrige_status <> status) the load inserted (+) minus those it replaced (-)
-- keys: load_id, uge_id, kommunekode, fra_status, til_status
-- legal basis: the states are the kontaktgruppe spells (§ 15; § 16, stk. 6, nr. 3-5) grouped into panel statuses
-- (fct_person_week); kommunekode is the opholdskommune (§ 16, stk. 5) in the week of the change.
-- An additive signed histogram of the flows, so the nightly cost is the panel rows the load rewrote, not the
-- panel: read mart_overgange, which sums it.  The panel rows a load inserts and those it replaces are the scope
-- models int_person_week_ny and int_person_week_erstattet (read before fct_person_week deletes them).  On the
-- model's first build (first_run()) every panel row is counted, so a rebuild of this table alone is
-- `dbt build --full-refresh --select mart_overgange_bidrag`.
-- fra_status: the status in the week before (forrige_status); til_status: the status in the week (status).
-- antal: +1 per inserted, -1 per replaced row with a change of status; cells that sum to 0 are left out.
{{ panel_bidrag('forrige_status AS fra_status, status AS til_status', 'forrige_status <> status') }}
