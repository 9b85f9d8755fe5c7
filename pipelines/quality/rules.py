"""The contracts' own rules (the order's §§) as DuckDB SQL over the lake.

Generic field checks (required, code lists, CPR/CVR) come from the GX suites
(:mod:`pipelines.quality.gx_sql`); this module evaluates what each contract's
``rules`` add: deadlines, date windows, conditional requirements, allowed and
fixed values, references to known records, version order, overlapping spells,
'report only when changed', and the rules that need the person's state on the
event date (personkreds, Bilag 1, age) from the kontaktgruppe spells and the
reported visitations-/matchgrupper.

Each rule yields, per record of the day's partition, whether it applies and
whether it fails (with a detail naming the values). Records with an invalid
CPR are not evaluated for person-state rules: the identity check reports them.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.contracts import REFERENCE_DIR, Contract, Rule, load_contracts

# CPR -> birth date, with the century from digit 7 exactly as python-stdnum's get_birth_date
_BIRTH = """cast(try_strptime(cast(
    (CASE WHEN substr({c},7,1) IN ('5','6','7','8') AND cast(substr({c},5,2) AS INT) >= 58 THEN 1800
          WHEN substr({c},7,1) IN ('0','1','2','3')
               OR (substr({c},7,1) IN ('4','9') AND cast(substr({c},5,2) AS INT) >= 37) THEN 1900
          ELSE 2000 END) + cast(substr({c},5,2) AS INT) AS VARCHAR)
    || substr({c},3,2) || substr({c},1,2), '%Y%m%d') AS DATE)"""


def birth_sql(col: str) -> str:
    return f"(CASE WHEN regexp_full_match({col}, '[0-9]{{10}}') THEN {_BIRTH.format(c=col)} END)"


@dataclass(frozen=True)
class RuleCheck:
    """SQL for one rule over relation ``r``: when it applies, when it fails, and why."""

    rule: Rule
    applies: str
    fails: str
    detail: str


def _q(v: object) -> str:
    return "'" + str(v).replace("'", "''") + "'"


def _when(params: dict, alias: str = "r") -> str:
    conds = []
    for k, vals in (params.get("when") or {}).items():
        vals = vals if isinstance(vals, list) else [vals]
        conds.append(f"lower(cast({alias}.{k} AS VARCHAR)) IN ({', '.join(_q(str(v).lower()) for v in vals)})")
    return " AND ".join(conds) if conds else "TRUE"


def _ct(params: dict) -> str:
    ct = params.get("change_type")
    return f"r.aendringstype = {_q({'create': '1', 'update': '2', 'delete': '3'}[ct])}" if ct else "TRUE"


def event_date_sql(c: Contract, alias: str = "r") -> str:
    f = c.field(c.event_time)
    if f.type == "date":
        return f"coalesce({alias}.{c.event_time}, cast({alias}.haendelsestidspunkt AS DATE))"
    return f"cast({alias}.haendelsestidspunkt AS DATE)"


def registration_date_sql(c: Contract, alias: str = "r") -> str:
    """The record's registration date (the contract's registration_time), else the envelope's timestamp."""
    f = c.field(c.registration_time) if c.registration_time else None
    if f is not None and f.type == "date":
        return f"coalesce({alias}.{c.registration_time}, cast({alias}.registreringstidspunkt AS DATE))"
    return f"cast({alias}.registreringstidspunkt AS DATE)"


def latest_sql(c: Contract, rel: str) -> str:
    """The latest version of each record of ``rel`` (by version, then registration time), deletes left out."""
    key = c.record_key[0]
    return (f"(SELECT * FROM {rel} QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY version DESC, "
            f"registreringstidspunkt DESC) = 1 AND aendringstype <> '3')")


# § 2, nr. 3-5 as per-person spells: one row per (person, kategori, value) from its gyldig_fra (the registration
# date, § 25, stk. 2) to the day before the next registered other value of the same kategori (open: gyldig_til
# NULL); ``rid`` is the record key of the registration that started the spell.
# Two values registered the same day: the larger record key wins (deterministic; the order names no tie rule).
KATEGORI_FORLOEB_SQL = """
WITH reg AS (
    SELECT {person}, kategori, vaerdi, dato AS gyldig_fra, rid FROM (
        SELECT {person}, 'matchgruppe' AS kategori, mat AS vaerdi, dato, rid FROM {groups} WHERE mat IS NOT NULL
        UNION ALL SELECT {person}, 'visitationsgruppe', vis, dato, rid FROM {groups} WHERE vis IS NOT NULL
        UNION ALL SELECT {person}, 'sygedagpengekategori', sdp, dato, rid FROM {groups} WHERE sdp IS NOT NULL)
    WHERE dato IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY {person}, kategori, dato ORDER BY rid DESC) = 1
), skift AS (  -- a registration repeating the value in force continues the spell (it starts none)
    SELECT * FROM reg
    QUALIFY vaerdi IS DISTINCT FROM lag(vaerdi) OVER (PARTITION BY {person}, kategori ORDER BY gyldig_fra)
)
SELECT {person}, kategori, vaerdi, gyldig_fra,
       lead(gyldig_fra) OVER (PARTITION BY {person}, kategori ORDER BY gyldig_fra) - 1 AS gyldig_til, rid
FROM skift
"""


# the sources of the § 2, nr. 3-5 categories; one definition for the rule engine (lake, cpr) and the warehouse
# (fct_kategori_forloeb, person_key): pipelines/warehouse/kategori.py
KATEGORI_KILDER = ("foerste_henvendelse", "samtale", "kontaktgruppe", "sdp_opfoelgning")


def kategori_kilder_sql(contracts: dict[str, Contract], current: Callable[[str], str | None], person: str,
                        kg_visitationsgruppe: bool = True) -> str:
    """SQL of the registered category values (``person``, dato, vis, mat, sdp, rid) from ``current(dataset)``, a
    relation of each source's current records (latest version, deletes left out; None: no data).

    § 2, nr. 3-5: match-, visitations- and sygedagpengekategori as registered values, each valid from its
    registration date (§ 25, stk. 2: "Matchgruppen gælder fra registreringsdatoen. Visitationsgruppen har
    virkning fra registreringsdatoen")."""
    parts = []
    for ds in ("foerste_henvendelse", "samtale"):
        rel = current(ds)
        if rel:
            parts.append(f"SELECT {person}, {registration_date_sql(contracts[ds], 'g')} AS dato, "
                         f"cast(visitationsgruppe AS VARCHAR) vis, cast(matchgruppe AS VARCHAR) mat, "
                         f"NULL::VARCHAR sdp, cast({contracts[ds].record_key[0]} AS VARCHAR) rid "
                         f"FROM {rel} g WHERE visitationsgruppe IS NOT NULL OR matchgruppe IS NOT NULL")
    rel = current("kontaktgruppe")
    if rel and kg_visitationsgruppe:
        # § 17, stk. 8-9: UO and KY are registered in kontaktgruppe 2 "med visitationsgruppe 1"
        parts.append(f"SELECT {person}, {registration_date_sql(contracts['kontaktgruppe'], 'g')} AS dato, "
                     f"cast(visitationsgruppe AS VARCHAR) vis, NULL::VARCHAR mat, NULL::VARCHAR sdp, "
                     f"cast(kontaktgruppe_id AS VARCHAR) rid FROM {rel} g WHERE visitationsgruppe IS NOT NULL")
    rel = current("sdp_opfoelgning")  # the sygedagpengekategori (§ 35, stk. 1, nr. 5) for § 48, nr. 6-7
    if rel:
        # the order dates no sygedagpengekategori from its registration: it holds from the opfølgning (§ 35)
        ev = event_date_sql(contracts["sdp_opfoelgning"], "g")
        parts.append(f"SELECT {person}, {ev} AS dato, NULL::VARCHAR vis, NULL::VARCHAR mat, "
                     f"cast(sygedagpengekategori AS VARCHAR) sdp, cast(opfoelgning_id AS VARCHAR) rid "
                     f"FROM {rel} g WHERE sygedagpengekategori IS NOT NULL")
    return " UNION ALL ".join(parts) or (f"SELECT NULL::VARCHAR {person}, NULL::DATE dato, NULL::VARCHAR vis, "
                                         "NULL::VARCHAR mat, NULL::VARCHAR sdp, NULL::VARCHAR rid WHERE FALSE")


def _kategori_paa(kategori: str, day: str, extra: str = "TRUE") -> str:
    """SQL: the person's (``r.cpr``) value of a § 2 category valid on ``day`` (registered on or before it)."""
    return (f"(SELECT k.vaerdi FROM dq_kategori_forloeb k WHERE k.cpr = r.cpr AND k.kategori = '{kategori}' "
            f"AND k.gyldig_fra <= {day} AND (k.gyldig_til IS NULL OR {day} <= k.gyldig_til) AND {extra})")


def compile_rule(c: Contract, r: Rule) -> RuleCheck | None:
    """SQL fragments for one rule, or None for kinds evaluated elsewhere."""
    p = r.params
    base = f"{_ct(p)} AND {_when(p)}" if r.kind != "required_when" else _ct(p)
    if r.kind == "deadline":
        ev, rg, mx = p["event_field"], p["registration_field"], int(p.get("max_lag_days", 0))
        lag = f"date_diff('day', cast(r.{ev} AS DATE), cast(r.{rg} AS DATE))"
        return RuleCheck(r, f"{base} AND r.{ev} IS NOT NULL AND r.{rg} IS NOT NULL", f"{lag} > {mx}",
                         f"'registered ' || {lag} || ' days after {ev} (max {mx})'")
    if r.kind == "date_window":
        f, rel = p["field"], p["relative_to"]
        lo, hi = int(p.get("min_days", 0)), int(p.get("max_days", 0))
        d = f"date_diff('day', cast(r.{rel} AS DATE), cast(r.{f} AS DATE))"
        return RuleCheck(r, f"{base} AND r.{f} IS NOT NULL AND r.{rel} IS NOT NULL", f"{d} NOT BETWEEN {lo} AND {hi}",
                         f"'{f} is ' || {d} || ' days from {rel} (allowed {lo}..{hi})'")
    if r.kind == "start_before_end":
        s, e = p["start_field"], p["end_field"]
        return RuleCheck(r, f"{base} AND r.{s} IS NOT NULL AND r.{e} IS NOT NULL", f"r.{e} < r.{s}",
                         f"'{e} ' || r.{e} || ' before {s} ' || r.{s}")
    if r.kind == "required_when":
        f = p["field"]
        empty = f"r.{f} IS NULL" + (f" OR len(r.{f}) = 0" if c.field(f).multi else "")
        return RuleCheck(r, f"{base} AND {_when(p)}", empty, f"'{f} is required here'")
    if r.kind == "allowed_values":
        f = p["field"]
        conds = []
        if p.get("values"):
            conds.append(f"cast(r.{f} AS VARCHAR) NOT IN ({', '.join(_q(v) for v in p['values'])})")
        if p.get("exclude"):
            conds.append(f"cast(r.{f} AS VARCHAR) IN ({', '.join(_q(v) for v in p['exclude'])})")
        return RuleCheck(r, f"{base} AND r.{f} IS NOT NULL", " OR ".join(conds) or "FALSE",
                         f"'{f} ' || cast(r.{f} AS VARCHAR) || ' not allowed here'")
    if r.kind == "fixed_values":
        # each given value must be the fixed one; a missing one is required_when's business (e.g. KG-007), so a
        # record missing one of two fixed fields is still checked on the other (KG-005: kontaktgruppe 3 for UO)
        conds = [f"(r.{k} IS NOT NULL AND lower(cast(r.{k} AS VARCHAR)) <> {_q(str(v).lower())})"
                 for k, v in (p.get("then") or {}).items()]
        nonnull = " OR ".join(f"r.{k} IS NOT NULL" for k in (p.get("then") or {}))
        return RuleCheck(r, f"{base} AND ({nonnull or 'TRUE'})", " OR ".join(conds) or "FALSE",
                         "'must be ' || " + _q(", ".join(f"{k}={v}" for k, v in (p.get('then') or {}).items())))
    return None


_SHARED: dict[str, RuleEngine] = {}


#: A partition directory modified less than this long ago is listed again even if its mtime looks unchanged.
RACY_NS = 2_000_000_000


class RuleEngine:
    """Evaluates every contract rule for one delivery day over the lake (all history known now)."""

    def __init__(self, lake: Path, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.lake = Path(lake)
        self.con = con or duckdb.connect()
        self.contracts = load_contracts()
        self._state_ready = False
        self._hist: dict[str, str | None] = {}
        self._hist_files: dict[str, dict[str, tuple[int, int]]] = {}  # history -> {file: (size, mtime)}
        self._dir_files: dict[str, tuple[int, dict[str, tuple[int, int]]]] = {}  # partition dir -> (mtime, files)
        self._day: tuple[str, dt.date] | None = None

    @classmethod
    def shared(cls, lake: Path) -> RuleEngine:
        """One engine per lake and process, its histories refreshed from the lake on every use.

        A nightly run checks each dataset's partition in its own asset step (and again in dq_results):
        a new engine per call re-read every history (thousands of small Parquet files) each time, the
        refresh reads only the files added since (a changed or removed file rebuilds that history).
        """
        key = str(Path(lake).resolve())
        eng = _SHARED.get(key)
        if eng is None:
            eng = _SHARED[key] = cls(lake)
        eng.refresh()
        return eng

    def _files(self, dataset: str) -> dict[str, tuple[int, int]]:
        """``{file: (size, mtime)}`` of the dataset's Parquet files (``*/*.parquet``).

        Every check of a night asks this for every cached history, and the lake grows by thousands of files
        a night: a partition directory whose mtime has not moved is not listed again.  The lake only adds,
        replaces (rename) or removes files, each of which moves its directory's mtime; a directory changed
        within ``RACY_NS`` of now is always listed (a second change in the same timestamp tick would not
        move it again)."""
        out: dict[str, tuple[int, int]] = {}
        try:
            parts = [e for e in os.scandir(self.lake / dataset) if e.is_dir()]
        except FileNotFoundError:
            return out
        now = time.time_ns()
        for part in parts:
            try:
                mtime = part.stat().st_mtime_ns
            except FileNotFoundError:
                continue
            cached = self._dir_files.get(part.path)
            if cached is None or cached[0] != mtime or now - mtime < RACY_NS:
                files: dict[str, tuple[int, int]] = {}
                try:
                    entries = list(os.scandir(part.path))
                except FileNotFoundError:
                    entries = []
                for f in entries:
                    if not f.name.endswith(".parquet"):
                        continue
                    try:
                        st = f.stat()
                    except FileNotFoundError:
                        continue
                    files[f.path] = (st.st_size, st.st_mtime_ns)
                cached = self._dir_files[part.path] = (mtime, files)
            out.update(cached[1])
        return out

    def refresh(self) -> None:
        """Bring the cached histories up to the lake's files now (appending new files where possible)."""
        self._day = None
        for name, table in list(self._hist.items()):
            dataset = name.removeprefix("dq_hist_")
            old, now = self._hist_files.get(name, {}), self._files(dataset)
            if now == old:
                continue
            added = [f for f in now if f not in old]
            if table is not None and all(now.get(f) == v for f, v in old.items()) and added:
                try:
                    files = ", ".join("'" + f.replace("'", "''") + "'" for f in sorted(added))
                    self.con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet([{files}], "
                                     f"union_by_name=true)")
                    self._hist_files[name] = now
                except duckdb.Error:  # a new column: read the whole history again
                    del self._hist[name]
            else:
                del self._hist[name]
            if dataset in KATEGORI_KILDER:
                self._state_ready = False

    def relation(self, dataset: str, day: dt.date | None = None) -> str | None:
        part = f"leveringsdato={day.isoformat()}" if day else "*"
        files = list((self.lake / dataset).glob(f"{part}/*.parquet"))
        if not files:
            return None
        glob = str(self.lake / dataset / part / "*.parquet")
        return f"read_parquet('{glob}', union_by_name=true)"

    def _state(self) -> None:
        """Spells and groups as the lake knows them now (latest version of each record)."""
        if self._state_ready:
            return
        kg = self.history("kontaktgruppe")
        empty_spells = ("SELECT NULL::VARCHAR cpr, NULL::INT kontaktgruppe, NULL::DATE startdato, NULL::DATE slutdato, "
                        "NULL::VARCHAR persongruppe, NULL::VARCHAR kontaktgruppe_id WHERE FALSE")
        spells = empty_spells if kg is None else f"""
            SELECT cpr, cast(kontaktgruppe AS INT) kontaktgruppe, startdato, slutdato, persongruppe, kontaktgruppe_id
            FROM (SELECT *, row_number() OVER (PARTITION BY kontaktgruppe_id
                                               ORDER BY version DESC, registreringstidspunkt DESC) rn FROM {kg})
            WHERE rn = 1 AND aendringstype <> '3'"""
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE dq_spells AS {spells}")

        def current(ds: str) -> str | None:
            rel = self.history(ds)
            return latest_sql(self.contracts[ds], rel) if rel else None

        kg_vis = kg is not None and "visitationsgruppe" in self._columns(kg)
        groups = kategori_kilder_sql(self.contracts, current, "cpr", kg_visitationsgruppe=kg_vis)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE dq_groups AS {groups}")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE dq_kategori_forloeb AS {KATEGORI_FORLOEB_SQL.format(groups='dq_groups', person='cpr')}")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE dq_bilag1 AS SELECT * FROM read_csv("
                         f"'{REFERENCE_DIR / 'bilag1_fravaer.csv'}', all_varchar=true)")
        self._state_ready = True

    def _columns(self, table: str) -> set[str]:
        return {r[0] for r in self.con.execute(f"DESCRIBE {table}").fetchall()}

    def kategori_forloeb(self) -> list[tuple]:
        """The § 2, nr. 3-5 category spells as the lake knows them now: (cpr, kategori, vaerdi, gyldig_fra,
        gyldig_til, record key), each value valid from its registration date (§ 25, stk. 2)."""
        self._state()
        return self.con.execute("SELECT cpr, kategori, vaerdi, gyldig_fra, gyldig_til, rid FROM dq_kategori_forloeb "
                                "ORDER BY ALL").fetchall()

    def history(self, dataset: str) -> str | None:
        """The dataset's whole lake history as a temp table (read once per engine, not per rule)."""
        name = f"dq_hist_{dataset}"
        if name not in self._hist:
            files = self._files(dataset)
            if not files:
                self._hist[name] = None
            else:
                listed = ", ".join("'" + f.replace("'", "''") + "'" for f in sorted(files))
                self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM read_parquet([{listed}], "
                                 f"union_by_name=true)")
                self._hist[name] = name
            self._hist_files[name] = files
        return self._hist[name]

    def _person_rule(self, c: Contract, r: Rule) -> RuleCheck | None:
        """personkreds / bilag1 / age_range: the person's state on the event date (a personkreds rule's
        ``at_field`` names another date, e.g. the grant date of a sick report, § 34, stk. 4-6)."""
        self._state()
        ev = event_date_sql(c)
        if r.kind == "personkreds" and r.params.get("at_field"):
            ev = f"coalesce(cast(r.{r.params['at_field']} AS DATE), {ev})"
        valid_cpr = f"{birth_sql('r.cpr')} IS NOT NULL"
        on_day = f"s.cpr = r.cpr AND s.startdato <= {ev} AND (s.slutdato IS NULL OR {ev} <= s.slutdato)"
        held = (f"coalesce((SELECT string_agg(DISTINCT cast(s.kontaktgruppe AS VARCHAR), ',') FROM dq_spells s "
                f"WHERE {on_day}), 'none')")
        pk = c.personkreds
        if r.kind == "personkreds" and r.params.get("field"):
            # a field the order gives only for some kontaktgrupper (e.g. § 25, stk. 1, nr. 9: the
            # visitationsgruppe for kontaktgruppe 2, 3 and 12): reported for anyone else, it is wrong
            fld, kgs = r.params["field"], ", ".join(str(k) for k in r.params["kontaktgrupper"])
            inside = f"EXISTS (SELECT 1 FROM dq_spells s WHERE {on_day} AND s.kontaktgruppe IN ({kgs}))"
            return RuleCheck(r, f"{valid_cpr} AND r.{fld} IS NOT NULL", f"NOT {inside}",
                             f"'{fld} reported for kontaktgruppe ' || {held}")
        if r.kind == "personkreds":
            if not pk.kontaktgrupper:
                return None
            groups = ", ".join(_q(g) for g in pk.person_groups) or "NULL"
            # "dele af" a kontaktgruppe (§ 29, nr. 1; § 48, nr. 4, 6, 7): the group only with a qualifier,
            # the latest visitations-/sygedagpengekategori reported on or before the event date; unknown
            # (never reported) is not held against the record
            quals = {str(k): v for k, v in (r.params.get("kvalifikatorer") or {}).items()}
            plain = [k for k in pk.kontaktgrupper if str(k) not in quals]
            conds = [f"s.kontaktgruppe IN ({', '.join(str(k) for k in plain)})"] if plain else []
            for kg, q in quals.items():
                for name, vals in q.items():
                    last = _kategori_paa(name, ev)
                    ok = ", ".join(_q(v) for v in vals)
                    conds.append(f"(s.kontaktgruppe = {int(kg)} AND coalesce({last} IN ({ok}), TRUE))")
            inside = (f"EXISTS (SELECT 1 FROM dq_spells s WHERE {on_day} AND ({' OR '.join(conds) or 'FALSE'} "
                      f"OR s.persongruppe IN ({groups})))")
            return RuleCheck(r, valid_cpr, f"NOT {inside}", f"'kontaktgruppe on ' || {ev} || ': ' || {held}")
        if r.kind == "age_range":
            lo, hi = r.params.get("min_age", pk.min_age), r.params.get("max_age", pk.max_age)
            at = r.params.get("at_field")
            when = f"cast(r.{at} AS DATE)" if at else ev
            b = birth_sql("r.cpr")
            age = (f"(date_diff('year', {b}, {when}) - CASE WHEN strftime({when}, '%m%d') < strftime({b}, '%m%d') "
                   f"THEN 1 ELSE 0 END)")
            return RuleCheck(r, f"{valid_cpr} AND {when} IS NOT NULL", f"{age} NOT BETWEEN {lo} AND {hi}",
                             f"'age ' || {age} || ' on ' || {when}")
        if r.kind == "sygemelding_kontaktgruppe":
            return self._sygemelding_rule(r, valid_cpr)
        if r.kind == "bilag1":
            reason = r.params.get("reason_field", "fravaersaarsag")
            allowed = r.params.get("allowed_reasons")
            vis = _kategori_paa("visitationsgruppe", ev, "k.gyldig_fra >= s.startdato")
            mat = _kategori_paa("matchgruppe", ev, "k.gyldig_fra >= s.startdato")
            ok = (f"EXISTS (SELECT 1 FROM dq_spells s JOIN dq_bilag1 b ON cast(b.kontaktgruppe AS INT) = s.kontaktgruppe "
                  f"WHERE {on_day} AND b.aarsag_kode = cast(r.{reason} AS VARCHAR) AND (coalesce(b.kvalifikator_type, "
                  f"'none') IN ('', 'none') OR (b.kvalifikator_type = 'visitationsgruppe' AND b.kvalifikator_vaerdi = "
                  f"{vis}) OR (b.kvalifikator_type = 'matchgruppe' AND b.kvalifikator_vaerdi = {mat})))")
            if allowed:
                names = ", ".join(_q(a) for a in allowed)
                ok = (f"({ok} AND cast(r.{reason} AS VARCHAR) IN (SELECT kode FROM read_csv('"
                      f"{REFERENCE_DIR / 'fravaersaarsager.csv'}', all_varchar=true) WHERE navn IN ({names}) "
                      f"OR kode IN ({names})))")
            return RuleCheck(r, f"{valid_cpr} AND r.{reason} IS NOT NULL", f"NOT {ok}",
                             f"'reason ' || r.{reason} || ' for kontaktgruppe ' || {held}")
        return None

    def _sygemelding_rule(self, r: Rule, valid_cpr: str) -> RuleCheck:
        """§ 34, stk. 3-6: the kontaktgruppe spells around a sick report (syge_raskmelding).

        ``bliver`` (stk. 4-6): a person in a fra-group the day before the first sick day stays there until the
        grant, so no sygedagpenge spell (24/25) starts between the first sick day and the bevillingsdato.
        ``ustoettet`` (stk. 3): a person in no kontaktgruppe the day before the first sick day (from unsupported
        employment; supported employment has its own groups 10, 20-23) whose sick report reached the kommune
        before the grant is in kontaktgruppe 8 (or already 24) on the anmeldelsesdato.
        """
        p = r.params
        first, grant, anm = ("cast(r.foerste_sygedag AS DATE)", "cast(r.bevillingsdato AS DATE)",
                             "cast(r.anmeldelsesdato AS DATE)")
        sick = (f"{valid_cpr} AND r.aendringstype = '1' AND lower(cast(r.meldingstype AS VARCHAR)) = 'sygemelding' "
                f"AND {first} IS NOT NULL AND {grant} IS NOT NULL")
        before = (f"s.cpr = r.cpr AND s.startdato <= {first} - 1 "
                  f"AND (s.slutdato IS NULL OR {first} - 1 <= s.slutdato)")
        if p.get("tilfaelde") == "bliver":
            fra = ", ".join(str(int(k)) for k in p["fra_kontaktgrupper"])
            sdp = ", ".join(str(int(k)) for k in p["sygedagpenge_kontaktgrupper"])
            applies = f"{sick} AND EXISTS (SELECT 1 FROM dq_spells s WHERE {before} AND s.kontaktgruppe IN ({fra}))"
            early = (f"FROM dq_spells s WHERE s.cpr = r.cpr AND s.kontaktgruppe IN ({sdp}) AND s.startdato < {grant} "
                     f"AND coalesce(s.slutdato, DATE '9999-12-31') >= {first}")
            detail = (f"(SELECT string_agg('kontaktgruppe ' || s.kontaktgruppe || ' from ' || s.startdato, ', ') "
                      f"{early}) || ' before the grant on ' || {grant}")
            return RuleCheck(r, applies, f"EXISTS (SELECT 1 {early})", detail)
        kgs = ", ".join(str(int(k)) for k in p["kontaktgrupper"])
        on_anm = f"s.cpr = r.cpr AND s.startdato <= {anm} AND (s.slutdato IS NULL OR {anm} <= s.slutdato)"
        applies = (f"{sick} AND {anm} IS NOT NULL AND {anm} < {grant} "
                   f"AND NOT EXISTS (SELECT 1 FROM dq_spells s WHERE {before})")
        held = f"coalesce((SELECT string_agg(DISTINCT cast(s.kontaktgruppe AS VARCHAR), ',') FROM dq_spells s WHERE {on_anm}), 'none')"
        return RuleCheck(r, applies, f"NOT EXISTS (SELECT 1 FROM dq_spells s WHERE {on_anm} AND s.kontaktgruppe IN ({kgs}))",
                         f"'from no kontaktgruppe; on the anmeldelsesdato ' || {anm} || ': ' || {held}")

    def _history_rule(self, c: Contract, r: Rule) -> RuleCheck | None:
        """reference_exists / version_increases / only_when_changed / no_overlap: other records."""
        p = r.params
        if r.kind == "reference_exists" and p.get("dataset") in self.contracts:
            target, key, fld = p["dataset"], p.get("key"), p["field"]
            rel = self.history(target)
            own = target == c.dataset and fld in c.record_key
            applies = "r.aendringstype IN ('2', '3')" if own else f"r.{fld} IS NOT NULL"
            if rel is None:
                return RuleCheck(r, applies, "TRUE", f"'{fld} ' || r.{fld} || ' refers to no known {target}'")
            known = f"r.{fld} IN (SELECT {key} FROM {rel} WHERE aendringstype = '1')"
            return RuleCheck(r, applies, f"NOT ({known})", f"'{fld} ' || r.{fld} || ' refers to no known {target}'")
        if r.kind == "version_increases":
            fld = p["field"]
            key = c.record_key[0]
            rel = self.history(c.dataset)
            prev = (f"(SELECT max(h.{fld}) FROM {rel} h WHERE h.{key} = r.{key} "
                    f"AND h.registreringstidspunkt < r.registreringstidspunkt)")
            return RuleCheck(r, f"r.aendringstype = '2' AND r.{fld} IS NOT NULL", f"r.{fld} <= coalesce({prev}, -1)",
                             f"'{fld} ' || r.{fld} || ' not above the previous ' || {prev}")
        if r.kind == "only_when_changed":
            fld = p["field"]
            self._state()
            col = {"visitationsgruppe": "vis", "matchgruppe": "mat"}.get(fld)
            if col is None:
                return None
            # the latest value registered before this record's own registration (§ 25, stk. 1, nr. 8-9: "en anden
            # ... end den senest registrerede"), not counting the record itself
            own = registration_date_sql(c)
            prev = (f"(SELECT g.{col} FROM dq_groups g WHERE g.cpr = r.cpr AND g.{col} IS NOT NULL AND "
                    f"g.dato <= {own} AND g.rid <> cast(r.{c.record_key[0]} AS VARCHAR) "
                    f"ORDER BY g.dato DESC, g.rid DESC LIMIT 1)")
            return RuleCheck(r, f"r.aendringstype = '1' AND r.{fld} IS NOT NULL",
                             f"cast(r.{fld} AS VARCHAR) = {prev}", f"'{fld} ' || r.{fld} || ' unchanged'")
        if r.kind == "no_overlap":
            self._state()
            s, e = p["start_field"], p["end_field"]
            if c.dataset != "kontaktgruppe":
                return None
            # the spell as now known (its latest version), not this record's snapshot: a create
            # has no end date yet, the update that ends it comes later
            other = (f"EXISTS (SELECT 1 FROM dq_spells x JOIN dq_spells o ON o.cpr = x.cpr "
                     f"AND o.kontaktgruppe_id <> x.kontaktgruppe_id WHERE x.kontaktgruppe_id = r.kontaktgruppe_id "
                     f"AND o.startdato <= coalesce(x.{e}, DATE '9999-12-31') "
                     f"AND x.{s} <= coalesce(o.slutdato, DATE '9999-12-31'))")
            return RuleCheck(r, f"r.aendringstype <> '3' AND r.{s} IS NOT NULL", other,
                             "'overlaps another kontaktgruppe spell of the person'")
        return None

    def _for_persons(self, c: Contract, r: Rule, chk: RuleCheck) -> RuleCheck:
        """A rule that applies only to persons in ``kontaktgrupper`` on the event date, or whose record
        names one of ``persongrupper`` (e.g. § 33, stk. 4, nr. 9: kontaktgruppe 1, MAY and dimittender)."""
        self._state()
        ev = event_date_sql(c)
        kgs = ", ".join(str(k) for k in r.params.get("kontaktgrupper") or []) or "NULL"
        held = (f"EXISTS (SELECT 1 FROM dq_spells s WHERE s.cpr = r.cpr AND s.startdato <= {ev} "
                f"AND (s.slutdato IS NULL OR {ev} <= s.slutdato) AND s.kontaktgruppe IN ({kgs}))")
        pgs = r.params.get("persongrupper")
        if pgs:
            held = f"({held} OR lower(cast(r.persongruppe AS VARCHAR)) IN ({', '.join(_q(g) for g in pgs)}))"
        return RuleCheck(r, f"({chk.applies}) AND {held}", chk.fails, chk.detail)

    def checks(self, c: Contract, kinds: set[str] | None = None) -> list[RuleCheck]:
        out = []
        for r in c.rules:
            if kinds is not None and r.kind not in kinds:
                continue
            chk = compile_rule(c, r)
            if chk is not None and r.kind != "personkreds" and (r.params.get("kontaktgrupper")
                                                                 or r.params.get("persongrupper")):
                chk = self._for_persons(c, r, chk)
            if chk is None and r.kind in ("personkreds", "bilag1", "age_range", "sygemelding_kontaktgruppe"):
                chk = self._person_rule(c, r)
            if chk is None:
                chk = self._history_rule(c, r)
            if chk is not None:
                out.append(chk)
        return out

    def load_day(self, dataset: str, day: dt.date) -> str | None:
        """The day's partition as temp table ``dq_day`` (one read for suites and rules)."""
        rel = self.relation(dataset, day)
        if rel is None:
            return None
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE dq_day AS SELECT * FROM {rel}")
        self._day = (dataset, day)
        return "dq_day"

    def evaluate(self, dataset: str, day: dt.date, kinds: set[str] | None = None) -> list[dict]:
        """Per record and rule of the day's partition: rows (rule_id, besked_id, key, ..., failed, detail).

        One scan of the partition for all of the dataset's rules: each rule is three
        columns (applies, fails, detail) of the same query.
        """
        c = self.contracts[dataset]
        rel = self.relation(dataset, day)
        if rel is None:
            return []
        key = c.record_key[0] if c.record_key else "besked_id"
        checks = self.checks(c, kinds)
        if not checks:
            return []
        cols = []
        for k, chk in enumerate(checks):
            cols.append(f"coalesce({chk.applies}, FALSE) AS a{k}")
            cols.append(f"coalesce({chk.applies}, FALSE) AND coalesce({chk.fails}, FALSE) AS f{k}")
            cols.append(f"CASE WHEN coalesce({chk.applies}, FALSE) AND coalesce({chk.fails}, FALSE) "
                        f"THEN {chk.detail} END AS d{k}")
        if self._day != (dataset, day):
            self.load_day(dataset, day)
        sql = (f"SELECT r._reporter, r.besked_id, cast(r.{key} AS VARCHAR), r._payload_id, r._record_no, "
               f"{', '.join(cols)} FROM dq_day r")
        out: list[dict] = []
        for row in self.con.execute(sql).fetchall():
            base = {"dataset": dataset, "leveringsdato": day, "reporter": row[0], "besked_id": row[1],
                    "record_key": row[2], "payload_id": row[3], "record_no": row[4]}
            for k, chk in enumerate(checks):
                if row[5 + 3 * k]:
                    failed = bool(row[6 + 3 * k])
                    out.append({**base, "rule_id": chk.rule.id, "paragraph": chk.rule.paragraph,
                                "severity": chk.rule.severity, "failed": failed,
                                "detail": row[7 + 3 * k] if failed else None})
        return out
