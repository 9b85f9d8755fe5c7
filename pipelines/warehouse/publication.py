"""The publication log: every published vintage of the statistics, append-only, and its schedule.

Why: the nightly mart keeps one computation per period, and a later correction or deletion overwrites
it, so "what did we publish on day D" could not be answered.  Each run of the publication hook
(:func:`publish`, called as :func:`pipelines.warehouse.suppression.publish_suppressed`) that republishes
anything is a *vintage*:
``meta.publikation`` logs it with its load, and ``meta.publikation_celler`` keeps the cells it
published (after suppression), never updated or deleted; ``meta.publikation_grundlag`` (internal, not
served by the API) keeps the true figures behind them, so that a later vintage of the same periods is
audited together with what this one published (an attacker compares vintages).  A vintage's figures are, per period, the cells
of the latest vintage up to it that published the period (:func:`vintage_sql`).

Which periods a load republishes (:func:`schedule`): only those whose true figures moved since their last
vintage -- an unchanged period keeps its vintage even when its computation was redone -- and a preliminary
period's moved figures once per ISO week of the load date (:data:`KADENCE_FORELOEBIG`).  Why: every vintage
of a period is one more view for an attacker who compares vintages, so each is audited together with all
earlier ones (suppression.with_context) and the audit grew night by night with a nightly republished open
month (issue 12: the 14-day demo's warehouse runs took 34, 51, 158 s on nights 10-12).

Revisions of closed years (issue 13, docs/statistics.md "Revisioner"): a year is *open* while it is the load's
calendar year or later, or the year before it in the new year's first month (:data:`AABEN_MAANEDER`), or one of its
covered periods is preliminary now, was preliminary in its last vintage or
was never published (its final figures are not out yet); else *closed*.  Moved periods of an open year are
republished as above.  Those of a closed year are a *pending revision* (``Plan.afventer``): an ordinary load
leaves the year's published cells as they are, and a *revision run* republishes it -- the loads from the first
load of each calendar month (:data:`KADENCE_REVISION`) on, at most :data:`MAX_AAR_PR_NAT` closed years per load,
oldest first, until the years pending when the month's first load ran are done.  Why: one national year's
suppression costs CPU hours; a night whose corrections touch three old years would republish all three.  With
the cadence a night republishes at most one closed year besides the open ones, and a corrected old year waits
at most a month plus the backlog (Jobindsats, too, revises on a schedule, not as corrections come in).
``meta.publikation_koersel`` records every run of the hook (the cadence needs the loads that published nothing)
with the years still pending; ``meta.publikation_afventer`` says which years have a revision pending and since
when (the API shows it per table).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import duckdb

HISTORIK = "meta.publikation_celler"
# internal, never served: each vintage's true figures and flags, the context the next vintages are audited with
GRUNDLAG = "meta.publikation_grundlag"
LOG = "meta.publikation"
# one row per run of the hook: the cadence of revisions needs the loads that published nothing, and the API the
# years pending after the latest run
KOERSEL = "meta.publikation_koersel"
AFVENTER = "meta.publikation_afventer"
# the pending revisions as the CLI and the API read them (oldest first)
AFVENTER_SQL = f"SELECT aar, afventer_siden, gaeldende_vintage FROM {AFVENTER}"
log = logging.getLogger(__name__)
# "maaned": a revision run starts with the first load of each calendar month and goes on with the next loads until
# the closed years pending at its start are republished; "nat": every load revises (still MAX_AAR_PR_NAT at most).
# Why monthly: the month is the statistics' own publication rhythm, a revision then reaches analysts on a known day
# with the month's new figures, and at most 12 revision runs a year bound the CPU corrections of old years cost.
KADENCE_REVISION = "maaned"
# closed years a load republishes at most (oldest pending first): one national year's suppression is the night's
# budget besides the open years (docs/statistics.md "Revisioner")
MAX_AAR_PR_NAT = 1
# months into a new year the previous year stays open: its last months' late registrations and corrections (the
# reporting deadlines run days to weeks past a period) come in January and are republished as they come, not a
# month later by the revision run (a correction of November on 6 January is part of finishing the year)
AABEN_MAANEDER = 1
# "uge": a preliminary period whose figures moved is republished by the first load of a new ISO week (then its
# weeks begun, uger_i_perioden, move too), when it becomes final, or when its year is republished anyway; "dag":
# by every load that moves it.  Final periods (corrections) are republished by the load that moves them.
KADENCE_FORELOEBIG = "uge"
METODE = ("LP-revideret diskretionering (HiGHS), graense 5, revideret sammen med tidligere vintager og naboaar; "
          "kun daekkede perioder")


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The log and the history table (created empty on first use; their columns follow the published mart)."""
    from pipelines.warehouse.suppression import PUBLISHED_COLUMNS, _empty_published

    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {LOG} (
        vintage INTEGER PRIMARY KEY, load_id VARCHAR, indlaest_dato DATE, publiceret_tid TIMESTAMPTZ,
        aar INTEGER[], perioder INTEGER, celler BIGINT, celler_diskretioneret BIGINT, metode VARCHAR)""")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {GRUNDLAG} (vintage INTEGER, periode_type VARCHAR, periode_start DATE,
        geo_niveau VARCHAR, geo_kode VARCHAR, ydelsesgruppe VARCHAR, overordnet_geo_kode VARCHAR,
        uger_i_perioden BIGINT, antal_personer BIGINT, tilgang BIGINT, afgang BIGINT, ydelsesuger BIGINT,
        h0 BOOLEAN, h1 BOOLEAN, h2 BOOLEAN)""")
    con.execute(f"CREATE TABLE IF NOT EXISTS {HISTORIK} AS SELECT {PUBLISHED_COLUMNS}, "
                f"CAST(NULL AS INTEGER) AS vintage FROM ({_empty_published()}) LIMIT 0")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {KOERSEL} (koersel INTEGER PRIMARY KEY, load_id VARCHAR,
        indlaest_dato DATE, koersel_tid TIMESTAMPTZ, vintage INTEGER, revideret INTEGER[], afventer INTEGER[])""")
    # per year with a revision pending after the latest run: since which load day it has been pending without a
    # break, and the latest vintage that published it (whose figures stay in force until the revision)
    con.execute(f"""CREATE OR REPLACE VIEW {AFVENTER} AS
        WITH sidste AS (SELECT afventer FROM {KOERSEL} ORDER BY koersel DESC LIMIT 1),
        aar AS (SELECT unnest(afventer) AS aar FROM sidste)
        SELECT a.aar,
               (SELECT min(k.indlaest_dato) FROM {KOERSEL} k WHERE list_contains(k.afventer, a.aar)
                  AND k.koersel > coalesce((SELECT max(k2.koersel) FROM {KOERSEL} k2
                                            WHERE NOT list_contains(k2.afventer, a.aar)), 0)) AS afventer_siden,
               (SELECT max(p.vintage) FROM {LOG} p WHERE list_contains(p.aar, a.aar)) AS gaeldende_vintage
        FROM aar a ORDER BY a.aar""")


def next_vintage(con: duckdb.DuckDBPyConnection) -> int:
    """The number the next publication gets (1, 2, ...)."""
    return int(con.execute(f"SELECT coalesce(max(vintage), 0) + 1 FROM {LOG}").fetchone()[0])


def record(con: duckdb.DuckDBPyConnection, vintage: int, result: Any, years: list[int],
           grundlag: str | None = None) -> None:
    """Append vintage ``vintage``: its log row, the cells it published (from the published mart) and, from
    the temp table ``grundlag``, their true figures and flags."""
    from pipelines.warehouse.suppression import PUBLISHED

    load_id = getattr(result, "load_id", None)
    day = getattr(result, "indlaest_dato", None)
    if day is None:
        day = con.execute("SELECT max(horisont) FROM mart_ydelser_publiceret").fetchone()[0]
    n = con.execute(f"INSERT INTO {HISTORIK} BY NAME SELECT * FROM {PUBLISHED} WHERE vintage = ?",
                    [vintage]).fetchone()[0]
    if grundlag:
        con.execute(f"INSERT INTO {GRUNDLAG} BY NAME SELECT {int(vintage)} AS vintage, * FROM {grundlag}")
    per, hid = con.execute(
        f"SELECT count(DISTINCT (periode_type, periode_start)), count(*) FILTER (WHERE antal_personer_diskretioneret "
        f"OR tilgang_diskretioneret OR afgang_diskretioneret) FROM {PUBLISHED} WHERE vintage = ?", [vintage]).fetchone()
    con.execute(f"INSERT INTO {LOG} VALUES (?, ?, ?, now(), ?, ?, ?, ?, ?)",
                [vintage, load_id, day, sorted(years), per, n, hid, METODE])


def vintage_sql(vintage: int | None = None) -> str:
    """SELECT of the published cells as of vintage ``vintage`` (None: the latest), same columns as the mart.

    Per period, the cells of the latest vintage <= ``vintage`` that published the period.
    """
    cond = "" if vintage is None else f"WHERE vintage <= {int(vintage)}"
    return (f"SELECT h.* FROM {HISTORIK} h JOIN (SELECT periode_type, periode_start, max(vintage) AS v FROM {HISTORIK} "
            f"{cond} GROUP BY ALL) s ON s.periode_type = h.periode_type AND s.periode_start = h.periode_start "
            "AND s.v = h.vintage")


def vintage_on(con: duckdb.DuckDBPyConnection, day: dt.date) -> int | None:
    """The vintage in force after the loads of ``day`` (the last one published on or before it)."""
    return con.execute(f"SELECT max(vintage) FROM {LOG} WHERE indlaest_dato <= ?", [day]).fetchone()[0]


def vintages(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The log, newest first."""
    cur = con.execute(f"SELECT vintage, load_id, indlaest_dato, publiceret_tid, aar, perioder, celler, "
                      f"celler_diskretioneret, metode FROM {LOG} ORDER BY vintage DESC")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


Period = tuple[str, dt.date]


@dataclass
class Plan:
    """What one load republishes (:func:`schedule`).

    ``years``: the calendar years whose grid is suppressed (a year's months, quarters and the year are linked);
    ``due``: the periods that get a new vintage (new, or figures moved); ``kept``: the other covered periods of
    those years, which keep their last vintage and join the audit with its published flags (``flags``, per
    row key); ``deferred``: preliminary periods whose moved figures wait for the next week (KADENCE_FORELOEBIG).
    """

    years: list[int] = field(default_factory=list)
    due: list[Period] = field(default_factory=list)
    kept: list[Period] = field(default_factory=list)
    deferred: list[Period] = field(default_factory=list)
    flags: dict[tuple, tuple[bool, bool, bool]] = field(default_factory=dict)
    # closed years this load republishes (a revision run), and those still pending a revision after it
    revideret: list[int] = field(default_factory=list)
    afventer: list[int] = field(default_factory=list)

    @property
    def moved_years(self) -> list[int]:
        """Years with moved periods this load does not republish: their published cells are no longer their
        true figures (the audit of a neighbouring year must not take them as such: suppression.context_layers)."""
        return sorted({s.year for _, s in self.deferred})


def _state_sql(full_grid: str, published: str) -> str:
    # per covered period: moved (a cell's true figure, its weeks or a row differ from its last vintage's
    # grundlag), preliminary now, its last vintage (NULL: never published, or not in the published table: a
    # table made anew), preliminary then, that vintage's day
    key = "periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe"
    return f"""
    WITH cur AS (SELECT {key}, antal_personer, tilgang, afgang, ydelsesuger, uger_i_perioden, er_foreloebig
                 FROM {full_grid} WHERE daekket),
    per AS (SELECT DISTINCT periode_type, periode_start, er_foreloebig FROM cur),
    lastv AS (SELECT periode_type, periode_start, max(vintage) AS v FROM {GRUNDLAG}
              SEMI JOIN (SELECT DISTINCT periode_type, periode_start FROM {published}) USING (periode_type, periode_start)
              GROUP BY ALL),
    g AS (SELECT g.* FROM {GRUNDLAG} g JOIN lastv l ON g.periode_type = l.periode_type
            AND g.periode_start = l.periode_start AND g.vintage = l.v
          SEMI JOIN per p ON g.periode_type = p.periode_type AND g.periode_start = p.periode_start),
    moved AS (
        SELECT coalesce(c.periode_type, g.periode_type) AS periode_type,
               coalesce(c.periode_start, g.periode_start) AS periode_start,
               bool_or(c.periode_type IS NULL OR g.periode_type IS NULL
                       OR c.antal_personer IS DISTINCT FROM g.antal_personer OR c.tilgang IS DISTINCT FROM g.tilgang
                       OR c.afgang IS DISTINCT FROM g.afgang OR c.ydelsesuger IS DISTINCT FROM g.ydelsesuger
                       OR c.uger_i_perioden IS DISTINCT FROM g.uger_i_perioden) AS moved
        FROM cur c FULL JOIN g ON c.periode_type = g.periode_type AND c.periode_start = g.periode_start
            AND c.geo_niveau = g.geo_niveau AND c.geo_kode = g.geo_kode AND c.ydelsesgruppe = g.ydelsesgruppe
        GROUP BY ALL),
    was AS (SELECT h.periode_type, h.periode_start, bool_or(h.er_foreloebig) AS foreloebig FROM {HISTORIK} h
            JOIN lastv l ON h.periode_type = l.periode_type AND h.periode_start = l.periode_start AND h.vintage = l.v
            GROUP BY ALL)
    SELECT p.periode_type, p.periode_start, m.moved, p.er_foreloebig, l.v, w.foreloebig, lg.indlaest_dato
    FROM per p JOIN moved m USING (periode_type, periode_start)
    LEFT JOIN lastv l USING (periode_type, periode_start) LEFT JOIN was w USING (periode_type, periode_start)
    LEFT JOIN {LOG} lg ON lg.vintage = l.v
    ORDER BY p.periode_start, p.periode_type"""


def schedule(con: duckdb.DuckDBPyConnection, day: dt.date, full_grid: str = "mart_ydelser_fuld",
             kadence: str | None = None, published: str = "mart_ydelser_publiceret",
             revidere: list[int] | None = None) -> Plan:
    """Which covered periods of ``full_grid`` the load of ``day`` republishes (see the module's docstring).

    A period is *moved* when a cell's true figure (antal_personer, tilgang, afgang, ydelsesuger), its weeks
    (uger_i_perioden) or its preliminary flag differ from its last vintage.  A load triggers a year when one of
    its periods is new, final and moved, or preliminary and moved in a new ISO week (``kadence`` "uge") or at
    all ("dag"); every moved period of a triggered year is then due (the grid holds current figures only) and
    the unchanged ones are kept with their flags.  A triggered *closed* year is a pending revision instead, unless
    this load is a revision run that takes it (:func:`revision_years`) or ``revidere`` names it (a forced revision).
    """
    kadence = kadence or KADENCE_FORELOEBIG
    if kadence not in ("uge", "dag"):
        raise ValueError(f"kadence {kadence!r}: 'uge' or 'dag'")
    plan = Plan()
    state = con.execute(_state_sql(full_grid, published)).fetchall()
    moved: list[Period] = []
    unchanged: list[Period] = []
    trigger: set[int] = set()
    aaben: set[int] = set()  # open years: see the module's docstring
    for pt, ps, mv, foreloebig, v, was_foreloebig, v_day in state:
        p = (pt, ps)
        if (ps.year >= day.year or (ps.year == day.year - 1 and day.month <= AABEN_MAANEDER) or foreloebig
                or was_foreloebig or v is None):
            aaben.add(ps.year)
        if v is None:
            moved.append(p)
            trigger.add(ps.year)
            continue
        if not mv and bool(foreloebig) == bool(was_foreloebig):
            unchanged.append(p)
            continue
        moved.append(p)
        if not foreloebig or kadence == "dag" or v_day is None or day.isocalendar()[:2] != v_day.isocalendar()[:2]:
            trigger.add(ps.year)
    pending = sorted(trigger - aaben)
    revise = revision_years(con, day, pending, revidere)
    trigger = (trigger & aaben) | set(revise)
    plan.revideret = revise
    plan.afventer = [y for y in pending if y not in revise]
    plan.years = sorted(trigger)
    plan.due = [p for p in moved if p[1].year in trigger]
    plan.deferred = [p for p in moved if p[1].year not in trigger]
    plan.kept = [p for p in unchanged if p[1].year in trigger]
    if plan.kept:
        rows = con.execute(f"""SELECT g.periode_type, g.periode_start, g.geo_niveau, g.geo_kode, g.ydelsesgruppe,
                g.h0, g.h1, g.h2 FROM {GRUNDLAG} g JOIN (SELECT periode_type, periode_start, max(vintage) AS v
                FROM {GRUNDLAG} GROUP BY ALL) l ON g.periode_type = l.periode_type AND g.periode_start = l.periode_start
                AND g.vintage = l.v WHERE {_in(plan.kept, "g")}""").fetchall()
        plan.flags = {r[:5]: (bool(r[5]), bool(r[6]), bool(r[7])) for r in rows}
    return plan


def revision_years(con: duckdb.DuckDBPyConnection, day: dt.date, pending: list[int],
                   revidere: list[int] | None = None, kadence: str | None = None,
                   max_aar: int | None = None) -> list[int]:
    """The closed years of ``pending`` (moved since their last vintage) the load of ``day`` republishes.

    ``kadence`` "maaned" (:data:`KADENCE_REVISION`): the month's first run of the hook (none earlier in
    ``meta.publikation_koersel`` this calendar month) opens a revision run; it and the following loads each take
    at most ``max_aar`` (:data:`MAX_AAR_PR_NAT`) of the years pending when it opened and not revised since,
    oldest first; a year that becomes pending later (or again) waits for the next month.  "nat": every load takes ``max_aar`` of those pending.
    ``revidere``: years revised now whatever the cadence (``dsdw warehouse revise``), if pending.
    """
    kadence = kadence or KADENCE_REVISION
    max_aar = MAX_AAR_PR_NAT if max_aar is None else max_aar
    if kadence not in ("maaned", "nat"):
        raise ValueError(f"kadence {kadence!r}: 'maaned' or 'nat'")
    forced = sorted(set(revidere or []) & set(pending))
    backlog = list(pending)
    if kadence == "maaned" and pending:
        ensure_tables(con)
        runs = con.execute(f"SELECT revideret, afventer FROM {KOERSEL} WHERE indlaest_dato >= ? AND "
                           "indlaest_dato <= ? ORDER BY koersel", [day.replace(day=1), day]).fetchall()
        if runs:  # the run is open since the month's first load: the years pending then, not revised since
            at_start = set(runs[0][0] or []) | set(runs[0][1] or [])
            done = {y for r in runs for y in r[0] or []}
            backlog = [y for y in pending if y in at_start - done]
    chosen = [y for y in sorted(backlog) if y not in forced][:max(0, max_aar)]
    return sorted(set(chosen) | set(forced))


def _in(periods: list[Period], alias: str = "") -> str:
    """SQL condition: the row's period is one of ``periods``."""
    a = f"{alias}." if alias else ""
    return "(" + " OR ".join(f"({a}periode_type = '{t}' AND {a}periode_start = DATE '{s.isoformat()}')"
                             for t, s in periods) + ")"


def publish(con: duckdb.DuckDBPyConnection, result: Any = None, revidere: list[int] | None = None) -> int:
    """The load hook's work: bring ``mart_ydelser_publiceret`` in step with :func:`schedule`'s plan, log the vintage.

    Deletes superseded computations from ``mart_ydelser_beregning``, suppresses the triggered years' grid (the
    due periods free, the kept ones with their published flags, every earlier vintage of those years and the
    neighbouring years' published cells as context; a neighbour with moved periods not republished now, e.g. a
    pending revision, by its current figures: suppression.context_layers) and appends the due periods' cells as a
    new vintage.  Records the run and the years pending a revision in ``meta.publikation_koersel``.
    ``revidere``: closed years to revise now whatever the cadence.  Returns the rows published.
    """
    from pipelines.warehouse.suppression import (
        FULL_GRID,
        PUBLISHED,
        PUBLISHED_COLUMNS,
        _empty_published,
        _exists,
        _view_exists,
        context_layers,
        suppress,
    )

    empty = (f"CREATE TABLE {PUBLISHED} AS SELECT {PUBLISHED_COLUMNS}, CAST(NULL AS INTEGER) AS vintage "
             f"FROM ({_empty_published()}) LIMIT 0")
    if not _exists(con, "mart_ydelser_beregning") or not _view_exists(con, FULL_GRID):
        ensure_tables(con)
        if not _exists(con, PUBLISHED):
            con.execute(empty)
        return 0
    con.execute("""DELETE FROM mart_ydelser_beregning b USING (
            SELECT periode_type, periode_start, max(indlaesning_nr) AS nr FROM mart_ydelser_beregning GROUP BY ALL
        ) s WHERE b.periode_type = s.periode_type AND b.periode_start = s.periode_start AND b.indlaesning_nr < s.nr""")
    have = _exists(con, PUBLISHED) and "vintage" in {
        r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
                                  "AND schema_name = 'main' AND table_name = ?", [PUBLISHED]).fetchall()}
    if not have:
        con.execute(f"DROP TABLE IF EXISTS {PUBLISHED}")
        con.execute(empty)
    ensure_tables(con)
    day = getattr(result, "indlaest_dato", None) or \
        con.execute(f"SELECT max(horisont) FROM {FULL_GRID}").fetchone()[0] or dt.date.today()
    plan = schedule(con, day, FULL_GRID, published=PUBLISHED, revidere=revidere)
    if plan.deferred:
        log.info("publication: %d moved periods not republished now (preliminary: the next week's first load; "
                 "closed years %s: a revision run): %s", len(plan.deferred), plan.afventer or "none",
                 ", ".join(f"{t} {s}" for t, s in plan.deferred))
    vintage, rows = None, 0
    if plan.due:
        years = ", ".join(map(str, plan.years))
        src = f"SELECT * FROM {FULL_GRID} WHERE daekket AND year(periode_start) IN ({years})"
        suppress(con, src, target="_sup_resultat", grundlag="_sup_alle", fixed=plan.flags,
                 layers=context_layers(con, plan.years, moved=plan.moved_years, full_grid=FULL_GRID))
        due = _in(plan.due)
        try:
            con.execute("CREATE OR REPLACE TEMP TABLE _sup_grundlag AS SELECT * FROM _sup_alle "
                        f"WHERE {due}")
            vintage = next_vintage(con)
            sel = (f"SELECT {PUBLISHED_COLUMNS}, {vintage} AS vintage FROM _sup_resultat "
                   f"WHERE {due}")
            con.execute(f"DELETE FROM {PUBLISHED} WHERE {due}")
            rows = con.execute(f"INSERT INTO {PUBLISHED} BY NAME {sel}").fetchone()[0]
            record(con, vintage, result, sorted({s.year for _, s in plan.due}), "_sup_grundlag")
        finally:
            for t in ("_sup_resultat", "_sup_alle", "_sup_grundlag"):
                con.execute(f"DROP TABLE IF EXISTS {t}")
    con.execute(f"INSERT INTO {KOERSEL} SELECT coalesce(max(koersel), 0) + 1, ?, ?, now(), ?, ?, ? FROM {KOERSEL}",
                [getattr(result, "load_id", None), day, vintage, plan.revideret, plan.afventer])
    if plan.afventer:
        log.info("publication: revision pending for %s (published figures stay those of their latest vintage)",
                 ", ".join(map(str, plan.afventer)))
    return int(rows)


def pending_revisions(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The years with a revision pending after the latest run (``meta.publikation_afventer``), oldest first."""
    ensure_tables(con)
    cur = con.execute(AFVENTER_SQL)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
