{{ config(materialized='view', schema='main') }}
-- layer: mart
-- grain: one row per ISO week x kommunekode x fra_status x til_status with at least one person whose panel status
-- changed from fra_status (the week before) to til_status (the week): the week-to-week flows of the panel
-- keys: uge_id, kommunekode, fra_status, til_status
-- legal basis: the states are the kontaktgruppe spells (§ 15; § 16, stk. 6, nr. 3-5) grouped into panel statuses
-- (fct_person_week, dim_panelstatus); kommunekode is the opholdskommune (§ 16, stk. 5) in the week of the change.
-- Only changes are rows (fra_status <> til_status): persons who stay in a status are the panel's person-weeks,
-- not flows; a person's first panel week (no week before) is no flow either.  'selvforsoerget' (no state) is a
-- status, so a flow out of or into benefits shows as a change to or from it.  Equals the flows computed with
-- lag(status) over the whole panel (fct_person_week.forrige_status), at the cost of summing a small table.
-- uge_maaned: the month of the week's Thursday (per month: GROUP BY uge_maaned).
-- antal_personer: persons whose status changed from fra_status to til_status in the week (one panel row each).
{{ panel_sum('mart_overgange_bidrag', 'fra_status, til_status') }}
