{{ config(materialized='incremental', incremental_strategy='append', schema='main') }}
-- layer: mart
-- grain: one row per load x ISO week x kommunekode x status: the number of weekly panel rows in the status the load
-- inserted (+) minus those it replaced (-)
-- keys: load_id, uge_id, kommunekode, status
-- legal basis: the states are the kontaktgruppe spells (§ 15; § 16, stk. 6, nr. 3-5) grouped into panel statuses
-- (fct_person_week); kommunekode is the opholdskommune (§ 16, stk. 5) in the week.
-- The stock twin of mart_overgange_bidrag (the same signed histogram, macro panel_bidrag), so the nightly cost is
-- the panel rows the load rewrote and the stock per week a sum over a small table, not a scan of the panel
-- (national, 1 year: 780 ms p95 for monthly fuldtidspersoner per kommune x status from fct_person_week).
-- Read mart_panel_bestand, which sums it; a rebuild of this table alone is
-- `dbt build --full-refresh --select mart_panel_bestand_bidrag`.
-- status: the panel status in the week (fct_person_week.status).
-- antal: +1 per inserted, -1 per replaced panel row; cells that sum to 0 are left out.
{{ panel_bidrag('status') }}
