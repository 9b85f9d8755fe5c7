{{ config(materialized='view', schema='main') }}
-- layer: mart
-- grain: one row per ISO week x kommunekode x status with at least one person in the status that week: the
-- weekly panel's stock
-- keys: uge_id, kommunekode, status
-- legal basis: the states are the kontaktgruppe spells (§ 15; § 16, stk. 6, nr. 3-5) grouped into panel statuses
-- (fct_person_week, dim_panelstatus); kommunekode is the opholdskommune (§ 16, stk. 5) in the week.
-- Equals count(*) over fct_person_week per week x kommunekode x status (tests/warehouse/test_warehouse_flows.py)
-- at the cost of summing a small table.  Monthly fuldtidspersoner: sum(antal_personer) per uge_maaned divided by
-- the month's ISO weeks (dim_dato), as from the panel.
-- uge_maaned: the month of the week's Thursday (per month: GROUP BY uge_maaned).
-- antal_personer: persons in the status in the week (one panel row each).
{{ panel_sum('mart_panel_bestand_bidrag', 'status') }}
