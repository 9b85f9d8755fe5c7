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
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from pipelines.api.keys import KeyFile
from pipelines.api.page import page_html
from pipelines.api.store import Store
from pipelines.warehouse.publication import HISTORIK, LOG

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

    def need_key(request: Request) -> str:
        key = request.headers.get("x-api-key") or request.query_params.get("api_key")
        if not keys.accepts(key):
            raise HTTPException(status_code=401, detail="manglende eller ukendt API-nøgle")
        return key or ""

    cache: dict = {}

    def tables() -> dict[str, dict]:
        store.cursor().close()  # notices a swap
        if cache.get("ident") == store._ident:
            return cache["tables"]
        _, rows = store.query(f"SELECT DISTINCT p.ydelsesgruppe, coalesce(d.navn, 'I alt') FROM {PUBLISHED} p "
                              "LEFT JOIN dim_ydelsesgruppe d USING (ydelsesgruppe) ORDER BY 1")
        out = {_table_id(g): {"id": _table_id(g), "navn": n, "ydelsesgruppe": g, "emne": EMNE} for g, n in rows}
        cache.update(ident=store._ident, tables=out)
        return out

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
                "omraader": [{"geo_niveau": a, "geo_kode": b, "geo_navn": c} for a, b, c in geo]}

    @app.get("/api/v1/vintages", summary="Publiceringsloggen (vintages)")
    def vintage_log(_: str = Depends(need_key)) -> list[dict]:
        cols, rows = store.query(f"SELECT vintage, load_id, indlaest_dato, publiceret_tid, perioder, celler FROM {LOG} "
                                 "ORDER BY vintage DESC")
        return [dict(zip(cols, r, strict=True)) for r in rows]

    @app.get("/api/v1/data/{table_id}", summary="Tal (JSON eller CSV)")
    def data(table_id: str, _: str = Depends(need_key),
             periode: str | None = Query(None, description="perioder, kommasepareret (fx 2026M10,2026K4)"),
             periode_type: str | None = Query(None, description="maaned | kvartal | aar"),
             omraade: str | None = Query(None, description="geo-koder, kommasepareret (000 = hele landet)"),
             maal: str | None = Query(None, description="antal_personer,fuldtidspersoner,tilgang,afgang"),
             vintage: int | None = Query(None, description="publiceringens nummer (default: den seneste)"),
             foreloebige: bool = Query(False, description="medtag foreløbige perioder"),
             format: str = Query("json", pattern="^(json|csv)$")) -> Response:
        t = table_or_404(table_id)
        measures = [m for m in (maal.split(",") if maal else MAAL) if m]
        bad = [m for m in measures if m not in MAAL]
        if bad:
            raise HTTPException(status_code=400, detail=f"ukendt mål {bad}")
        src = PUBLISHED if vintage is None else \
            (f"(SELECT h.* FROM {HISTORIK} h JOIN (SELECT periode_type, periode_start, max(vintage) AS v FROM "
             f"{HISTORIK} WHERE vintage <= ? GROUP BY ALL) s ON s.periode_type = h.periode_type AND "
             "s.periode_start = h.periode_start AND s.v = h.vintage)")
        params: list = [] if vintage is None else [vintage]
        where = ["ydelsesgruppe = ?"]
        params.append(t["ydelsesgruppe"])
        if not foreloebige:
            where.append("NOT er_foreloebig")
        if periode:
            where.append("list_contains(?, periode)")
            params.append(periode.split(","))
        if periode_type:
            where.append("periode_type = ?")
            params.append(periode_type)
        if omraade:
            where.append("list_contains(?, geo_kode)")
            params.append(omraade.split(","))
        # one scan of the table, one row per cell; the rows per measure are made here (a UNION ALL per measure
        # scanned the table once per measure: the query's p95 at national size)
        ms = sorted(set(measures))
        sql = ("SELECT periode, periode_type, periode_start, geo_niveau, geo_kode, geo_navn, er_foreloebig, vintage, "
               + ", ".join(f"CAST({m} AS DOUBLE), {FLAG[m]}" for m in ms)
               + f" FROM {src} x WHERE {' AND '.join(where)} ORDER BY periode_type, periode_start, geo_kode")
        _, cells = store.query(sql, params)
        rows = [(*c[:6], m, c[8 + 2 * k], c[9 + 2 * k], c[6], c[7]) for c in cells for k, m in enumerate(ms)]
        used = max((r[10] for r in rows), default=vintage)
        if format == "csv":
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(COLUMNS)
            for r in rows:
                w.writerow([*r[:2], r[2].isoformat(), *r[3:7], "" if r[7] is None else r[7], *r[8:]])
            return Response(buf.getvalue(), media_type="text/csv; charset=utf-8")
        body = {"tabel": t, "vintage": used, "kolonner": COLUMNS,
                "data": [[*r[:2], r[2].isoformat(), *r[3:]] for r in rows]}
        return Response(_json(body), media_type="application/json")

    @app.get("/sider/{table_id}", response_class=HTMLResponse, summary="Side med graf og tabel")
    def side(table_id: str, _: str = Depends(need_key)) -> HTMLResponse:
        t = table_or_404(table_id)
        return HTMLResponse(page_html(t))

    return app


def _json(body: dict) -> str:
    import json

    return json.dumps(body, ensure_ascii=False, default=str)
