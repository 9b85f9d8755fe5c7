"""The read-only statistics API, in Jobindsats' shape: subjects -> tables -> data.

Why its own process: analysts and the public read published figures while the nightly load writes; the
API reads only the published DuckDB file, read-only, reopened after each swap (:class:`Store`), and only
the published (suppressed) cells: ``mart_ydelser_publiceret`` and its vintages
(``meta.publikation_celler``, ``meta.publikation``).  No SQL is taken from a request: filters are
bound parameters over fixed columns, so no person-level table is reachable.  A ``vintage`` parameter
returns the figures exactly as published then (Jobindsats' revisions cannot be reproduced).
"""

from __future__ import annotations

import csv
import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import duckdb
import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from pipelines.api.keys import KeyFile
from pipelines.api.page import page_html
from pipelines.api.store import Store
from pipelines.warehouse.publication import AFVENTER_SQL, LOG, vintage_sql

PUBLISHED = "mart_ydelser_publiceret"
EMNE = "ydelser"
EMNE_NAVN = "Personer på offentlige ydelser (ydelsesgrupper, § 15)"
MAAL = {"antal_personer": "Antal personer", "fuldtidspersoner": "Fuldtidspersoner", "tilgang": "Tilgang",
        "afgang": "Afgang"}
FLAG = {"antal_personer": "antal_personer_diskretioneret", "fuldtidspersoner": "antal_personer_diskretioneret",
        "tilgang": "tilgang_diskretioneret", "afgang": "afgang_diskretioneret"}
PERIODE_TYPER = {"maaned": "Måned", "kvartal": "Kvartal", "aar": "År"}
COLUMNS = ["periode", "periode_type", "periode_start", "geo_niveau", "geo_kode", "geo_navn", "maal", "vaerdi",
           "diskretioneret", "er_foreloebig", "vintage"]


def _table_id(grp: str) -> str:
    return "ydelser_" + grp.replace(" ", "_")


def create_app(db: Path, key_file: Path) -> FastAPI:
    """The API over the published warehouse ``db``; keys from ``key_file``."""
    store = Store(db)
    keys = KeyFile(key_file)
    app = FastAPI(title="dsdw statistik-API", version="1",
                  description="Offentliggjorte (diskretionerede) tal om personer på ydelser, i Jobindsats' form: "
                              "emner -> tabeller -> data.  Send nøglen i headeren X-API-Key (eller ?api_key=).")
    app.state.store = store

    # async: a key check and an answer already computed for this generation run on the event loop, with no hand-off
    # to the thread pool (under a busy CPU each hand-off waits for a time slice: the p95); work that reads the
    # file (a table's rows, an earlier vintage) goes to the pool
    async def need_key(request: Request) -> str:
        key = request.headers.get("x-api-key") or request.query_params.get("api_key")
        if not keys.accepts(key):
            raise HTTPException(status_code=401, detail="manglende eller ukendt API-nøgle")
        return key or ""

    answers = Answers(store)

    def tables() -> dict[str, dict]:
        return answers.tables()

    def table_or_404(table_id: str) -> dict:
        t = tables().get(table_id)
        if t is None:
            raise HTTPException(status_code=404, detail=f"ukendt tabel {table_id}")
        return t

    @app.get("/api/v1/subjects", summary="Emner")
    def subjects(_: str = Depends(need_key)) -> list[dict]:
        return [{"id": EMNE, "navn": EMNE_NAVN, "tabeller": len(tables())}]

    @app.get("/api/v1/subjects/{subject}/tables", summary="Tabeller i et emne")
    def subject_tables(subject: str, _: str = Depends(need_key)) -> list[dict]:
        if subject != EMNE:
            raise HTTPException(status_code=404, detail=f"ukendt emne {subject}")
        return list(tables().values())

    @app.get("/api/v1/tables/{table_id}", summary="En tabels perioder, områder og mål")
    def table_meta(table_id: str, _: str = Depends(need_key)) -> dict:
        t = table_or_404(table_id)
        _, per = store.query(f"SELECT DISTINCT periode_type, periode, er_foreloebig FROM {PUBLISHED} "
                             "WHERE ydelsesgruppe = ? ORDER BY 1, 2", [t["ydelsesgruppe"]])
        _, geo = store.query(f"SELECT DISTINCT geo_niveau, geo_kode, geo_navn FROM {PUBLISHED} ORDER BY "
                             "geo_niveau <> 'land', geo_niveau <> 'region', geo_kode")
        return {**t, "maal": MAAL, "periode_typer": PERIODE_TYPER,
                "perioder": [{"periode_type": a, "periode": b, "er_foreloebig": c} for a, b, c in per],
                "omraader": [{"geo_niveau": a, "geo_kode": b, "geo_navn": c} for a, b, c in geo],
                "revisioner_afventer": pending_revisions(store)}

    @app.get("/api/v1/vintages", summary="Publiceringsloggen (vintages)")
    def vintage_log(_: str = Depends(need_key)) -> list[dict]:
        cols, rows = store.query(f"SELECT vintage, load_id, indlaest_dato, publiceret_tid, perioder, celler FROM {LOG} "
                                 "ORDER BY vintage DESC")
        return [dict(zip(cols, r, strict=True)) for r in rows]

    @app.get("/api/v1/data/{table_id}", summary="Tal (JSON eller CSV)")
    async def data(table_id: str, _: str = Depends(need_key),
             periode: str | None = Query(None, description="perioder, kommasepareret (fx 2026M10,2026K4)"),
             periode_type: str | None = Query(None, description="maaned | kvartal | aar"),
             omraade: str | None = Query(None, description="geo-koder, kommasepareret (000 = hele landet)"),
             maal: str | None = Query(None, description="antal_personer,fuldtidspersoner,tilgang,afgang"),
             vintage: int | None = Query(None, description="publiceringens nummer (default: den seneste)"),
             foreloebige: bool = Query(False, description="medtag foreløbige perioder"),
             format: str = Query("json", pattern="^(json|csv)$")) -> Response:
        tabs = answers.cached_tables() or await run_in_threadpool(answers.tables)
        t = tabs.get(table_id)
        if t is None:
            raise HTTPException(status_code=404, detail=f"ukendt tabel {table_id}")
        measures = [m for m in (maal.split(",") if maal else MAAL) if m]
        bad = [m for m in measures if m not in MAAL]
        if bad:
            raise HTTPException(status_code=400, detail=f"ukendt mål {bad}")
        q = Question(t["ydelsesgruppe"], tuple(periode.split(",")) if periode else None, periode_type,
                     tuple(omraade.split(",")) if omraade else None, tuple(sorted(set(measures))), vintage,
                     foreloebige, format)
        body, media = answers.cached(q) or await run_in_threadpool(answers.answer, t, q)
        return Response(body, media_type=media)

    @app.get("/sider/{table_id}", response_class=HTMLResponse, summary="Side med graf og tabel")
    def side(table_id: str, _: str = Depends(need_key)) -> HTMLResponse:
        t = table_or_404(table_id)
        return HTMLResponse(page_html(t))

    return app



def pending_revisions(store: Store) -> list[dict]:
    """The closed years whose revision is pending (publication.py: their figures moved, the month's revision run
    has not republished them yet): the published figures of such a year are still those of ``gaeldende_vintage``,
    and an analyst must be able to see that.  Empty for a file published before revisions were recorded."""
    _, ok = store.query("SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() AND "
                        "schema_name = 'meta' AND view_name = 'publikation_afventer'")
    if not ok[0][0]:
        return []
    _, rows = store.query(AFVENTER_SQL)
    return [{"aar": a, "afventer_siden": s, "gaeldende_vintage": v,
             "tekst": f"En revision af {a} afventer (rettelser modtaget siden {s}); tallene for {a} er fortsat dem "
                      f"fra publicering (vintage) {v} og revideres ved månedens revisionskørsel"}
            for a, s, v in rows]


class Question(NamedTuple):
    """One data request, normalised: the key of its cached answer (with the file's identity)."""

    ydelsesgruppe: str
    perioder: tuple[str, ...] | None
    periode_type: str | None
    omraader: tuple[str, ...] | None
    maal: tuple[str, ...]
    vintage: int | None
    foreloebige: bool
    format: str


# one cell of the published table as the API serves it: the identifying columns, then per measure (value, flag)
_CELL_COLUMNS = ("periode, periode_type, strftime(periode_start, '%Y-%m-%d'), geo_niveau, geo_kode, geo_navn, "
                 "er_foreloebig, vintage, " + ", ".join(f"CAST({m} AS DOUBLE), {FLAG[m]}" for m in MAAL))
_POS = {m: 8 + 2 * k for k, m in enumerate(MAAL)}
_ORDER = "periode_type, periode_start, geo_kode"


class Answers:
    """The API's answers, per generation of the published file (its identity: inode, mtime, size).

    Why: between two swaps the published file does not change, and neither does any answer read from it.  The
    latest vintage of a table is read once per generation, one query per ydelsesgruppe, into rows sorted as the
    API returns them and indexed by area, so a request filters a few hundred Python tuples instead of scanning
    the table (the p95 goal, bench/bench_publication.py); the serialised answers (orjson, csv) are kept in a
    bounded LRU.  Earlier vintages are queried (rarely asked) and their answers cached the same way.  A new
    generation drops everything: nothing read from an older file is served after a swap is noticed.
    """

    def __init__(self, store: Store, max_answers: int = 4096) -> None:
        self.store = store
        self.max_answers = max_answers
        self._lock = threading.Lock()
        self._ident: tuple | None = None
        self._tables: dict[str, dict] = {}
        self._groups: dict[str, tuple[list[tuple], dict[str, list[int]]]] = {}
        self._loading: dict[tuple, threading.Lock] = {}
        self._answers: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()

    def _current(self) -> tuple:
        """The current generation's cursor and identity; forgets everything of an older one."""
        cur, ident = self.store.generation()
        with self._lock:
            if ident != self._ident:
                self._ident, self._tables, self._groups, self._loading = ident, {}, {}, {}
                self._answers.clear()
        return cur, ident

    def cached_tables(self) -> dict[str, dict] | None:
        """The tables, if already read from the current generation (no cursor, no query)."""
        ident = self.store.identity()
        with self._lock:
            return self._tables if self._tables and ident == self._ident else None

    def cached(self, q: Question) -> tuple[bytes, str] | None:
        """The answer to ``q``, if already computed from the current generation (no cursor, no query)."""
        ident = self.store.identity()
        with self._lock:
            got = self._answers.get((ident, q)) if ident == self._ident else None
            if got is not None:
                self._answers.move_to_end((ident, q))
            return got

    def tables(self) -> dict[str, dict]:
        """The tables (one per ydelsesgruppe and 'i alt') of the current generation."""
        cur, ident = self._current()
        try:
            if self._tables and self._ident == ident:
                return self._tables
            rows = cur.execute(f"SELECT DISTINCT p.ydelsesgruppe, coalesce(d.navn, 'I alt') FROM {PUBLISHED} p "
                               "LEFT JOIN dim_ydelsesgruppe d USING (ydelsesgruppe) ORDER BY 1").fetchall()
        finally:
            cur.close()
        out = {_table_id(g): {"id": _table_id(g), "navn": n, "ydelsesgruppe": g, "emne": EMNE} for g, n in rows}
        with self._lock:
            if self._ident == ident:
                self._tables = out
        return out

    def _group(self, cur: duckdb.DuckDBPyConnection, ident: tuple, grp: str) -> tuple[list[tuple], dict[str, list[int]]]:
        with self._lock:
            got = self._groups.get(grp) if self._ident == ident else None
            loading = self._loading.setdefault((ident, grp), threading.Lock())
        if got is not None:
            return got
        with loading:  # one reader per table and generation: concurrent first questions wait for it
            with self._lock:
                got = self._groups.get(grp) if self._ident == ident else None
            return got if got is not None else self._read_group(cur, ident, grp)

    def _read_group(self, cur: duckdb.DuckDBPyConnection, ident: tuple,
                    grp: str) -> tuple[list[tuple], dict[str, list[int]]]:
        rows = cur.execute(f"SELECT {_CELL_COLUMNS} FROM {PUBLISHED} WHERE ydelsesgruppe = ? ORDER BY {_ORDER}",
                           [grp]).fetchall()
        by_geo: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            by_geo.setdefault(r[4], []).append(i)
        with self._lock:
            if self._ident == ident:
                self._groups[grp] = (rows, by_geo)
        return rows, by_geo

    def _cells(self, cur: duckdb.DuckDBPyConnection, ident: tuple, q: Question) -> list[tuple]:
        """The published cells the question selects, in the API's order."""
        if q.vintage is not None:
            where, params = ["ydelsesgruppe = ?"], [q.ydelsesgruppe]
            if not q.foreloebige:
                where.append("NOT er_foreloebig")
            if q.perioder:
                where.append("list_contains(?, periode)")
                params.append(list(q.perioder))
            if q.periode_type:
                where.append("periode_type = ?")
                params.append(q.periode_type)
            if q.omraader:
                where.append("list_contains(?, geo_kode)")
                params.append(list(q.omraader))
            src = f"({vintage_sql(q.vintage)})"  # the cells in force at that vintage (publication's one rule)
            return cur.execute(f"SELECT {_CELL_COLUMNS} FROM {src} x WHERE {' AND '.join(where)} ORDER BY {_ORDER}",
                               params).fetchall()
        rows, by_geo = self._group(cur, ident, q.ydelsesgruppe)
        if q.omraader is None:
            pos: list[int] | range = range(len(rows))
        else:
            pos = sorted({i for g in set(q.omraader) for i in by_geo.get(g, ())})
        per = set(q.perioder) if q.perioder else None
        return [r for r in (rows[i] for i in pos)
                if (q.foreloebige or not r[6]) and (per is None or r[0] in per)
                and (q.periode_type is None or r[1] == q.periode_type)]

    def answer(self, table: dict, q: Question) -> tuple[bytes, str]:
        """The serialised answer (body, media type) to ``q`` from the current generation."""
        cur, ident = self._current()
        key = (ident, q)
        with self._lock:
            got = self._answers.get(key)
            if got is not None:
                self._answers.move_to_end(key)
                return got
        try:
            cells = self._cells(cur, ident, q)
        finally:
            cur.close()
        # one row per cell and measure (Jobindsats' long form)
        rows = [(*c[:6], m, c[_POS[m]], c[_POS[m] + 1], c[6], c[7]) for c in cells for m in q.maal]
        if q.format == "csv":
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(COLUMNS)
            w.writerows([*r[:7], "" if r[7] is None else r[7], *r[8:]] for r in rows)
            out = (buf.getvalue().encode(), "text/csv; charset=utf-8")
        else:
            used = max((r[10] for r in rows), default=q.vintage)
            out = (orjson.dumps({"tabel": table, "vintage": used, "kolonner": COLUMNS, "data": rows}),
                   "application/json")
        with self._lock:
            if self._ident == ident:
                self._answers[key] = out
                while len(self._answers) > self.max_answers:
                    self._answers.popitem(last=False)
        return out
