"""Governance sections of the data-quality pages (issue 17).

The reporter's page shows its agreements and closures (§§ 6, 8), its § 9 notices beside the
quality before and after go-live, and an open § 5 case with the error-rate and timeliness
trend since it opened; the national overview lists the action plans past their frist
(§ 5, stk. 2).  The quality report calls these functions; they return an empty string where
the environment keeps no register, so the pages are unchanged there.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from html import escape
from pathlib import Path

import duckdb
from markupsafe import Markup

from pipelines.governance.register import Register, Sag, register_path


@dataclass(frozen=True)
class DagKvalitet:
    """One reporter's quality on one delivery day: rule checks and deadline checks."""

    dag: dt.date
    checked: int
    failed: int
    timely: int
    late: int

    @property
    def fejlrate(self) -> float | None:
        return self.failed / self.checked if self.checked else None

    @property
    def rettidig(self) -> float | None:
        return (self.timely - self.late) / self.timely if self.timely else None


def daily_quality(dq_db: Path, reporter: str, kind: str | None = None) -> list[DagKvalitet]:
    """Per delivery day: records checked/failed over all rules, and records under a deadline/late."""
    path = Path(dq_db)
    try:
        st = path.stat()
    except FileNotFoundError:
        return []
    per_reporter = _daily_quality_all(str(path), (st.st_ino, st.st_mtime_ns, st.st_size))
    if per_reporter is None:
        return []
    checks, deadlines = per_reporter
    r = checks.get((reporter, kind), {})
    t = deadlines.get(reporter, {})
    return [DagKvalitet(d, *r.get(d, (0, 0)), *t.get(d, (0, 0))) for d in sorted(set(r) | set(t))]


@functools.lru_cache(maxsize=2)
def _daily_quality_all(dq_db: str, _version: tuple[int, int, int]
                       ) -> tuple[dict[tuple[str, str | None], dict[dt.date, tuple[int, int]]],
                                  dict[str, dict[dt.date, tuple[int, int]]]] | None:
    """Every reporter's daily sums in two queries (``_version``: the file's inode, mtime and size, so a
    republished dq.duckdb is read again).  Why: the reports render a page per reporter (120 in the demo), and
    a connection and two aggregates per page cost more than the page."""
    con = duckdb.connect(dq_db, read_only=True)
    try:
        rows = con.execute("""
            SELECT reporter, reporter_kind, grouping(reporter_kind) = 1, leveringsdato,
                   sum(records_checked)::BIGINT, sum(records_failed)::BIGINT
            FROM dq_results GROUP BY GROUPING SETS ((reporter, reporter_kind, leveringsdato),
                                                    (reporter, leveringsdato))""").fetchall()
        late = con.execute("""
            SELECT reporter, leveringsdato, coalesce(sum(records), 0)::BIGINT,
                   coalesce(sum(records) FILTER (WHERE lag_days > max_lag_days), 0)::BIGINT
            FROM dq_timeliness GROUP BY ALL""").fetchall()
    except duckdb.CatalogException:
        return None
    finally:
        con.close()
    checks: dict[tuple[str, str | None], dict[dt.date, tuple[int, int]]] = {}
    for rep, kind, every_kind, day, c, f in rows:  # every_kind: the (reporter, day) grouping set
        checks.setdefault((rep, None if every_kind else kind), {})[day] = (c or 0, f or 0)
    deadlines: dict[str, dict[dt.date, tuple[int, int]]] = {}
    for rep, day, n, n_late in late:
        deadlines.setdefault(rep, {})[day] = (n, n_late)
    return checks, deadlines


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f} %".replace(".", ",")


def _sum(days: list[DagKvalitet]) -> DagKvalitet:
    return DagKvalitet(dt.date.min, sum(d.checked for d in days), sum(d.failed for d in days),
                       sum(d.timely for d in days), sum(d.late for d in days))


def _open(dq_db: Path) -> Register | None:
    path = register_path(Path(dq_db).parent)
    return Register(path, readonly=True) if path.exists() else None


def _rows(cells: list[list[str]]) -> str:
    return "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells)


def reporter_section(dq_db: Path, kind: str, code: str) -> Markup:
    """The governance section of one reporter's page (empty without a register)."""
    reg = _open(dq_db)
    if reg is None:
        return Markup("")
    with reg:
        aftaler, lukninger = reg.aftaler(code), reg.lukninger(code)
        notices, sager = reg.underretninger(code), reg.sager(code, aabne=True)
    quality = daily_quality(dq_db, code, kind)
    parts = ['<section id="styring" class="governance">', "<h2>Styring: aftaler, lukning, underretninger, "
             "genopretning</h2>"]
    parts.append("<h3>Tilslutningsaftaler (§ 6) og lukket adgang (§ 8)</h3>")
    if aftaler:
        parts.append('<table class="aftaler"><thead><tr><th>Kanal</th><th>§</th><th>Gyldig fra</th>'
                     "<th>Gyldig til</th></tr></thead><tbody>")
        parts += [f'<tr class="aftale" data-kanal="{a.kanal}"><td>{a.kanal}</td><td>{a.paragraf}</td>'
                  f"<td>{a.gyldig_fra}</td><td>{a.gyldig_til or 'indtil opsigelse'}</td></tr>" for a in aftaler]
        parts.append("</tbody></table>")
    else:
        parts.append('<p class="note">Ingen tilslutningsaftale registreret: indberetninger via webservice og '
                     "portal afvises (§ 6, stk. 1 og 3).</p>")
    for lk in lukninger:
        parts.append(f'<p class="note lukning" data-fra="{lk.lukket_fra}">{escape(lk.grund())}</p>')
    parts.append("<h3>Underretninger om systemændringer (§ 9)</h3>")
    if not notices:
        parts.append('<p class="muted">Ingen underretninger.</p>')
    for u in notices:
        before = _sum([d for d in quality if d.dag < u.planlagt_idriftsaettelse])
        after = _sum([d for d in quality if d.dag >= u.planlagt_idriftsaettelse])
        flag = "for-sen" if u.for_sen else "rettidig"
        parts.append(
            f'<div class="underretning {flag}" data-id="{u.underretning_id}" data-for-sen="{str(u.for_sen).lower()}"'
            f' data-idriftsaettelse="{u.planlagt_idriftsaettelse}" data-tidligste="{u.tidligste_tilladte}">'
            f"<p><strong>{escape(u.beskrivelse)}</strong>: underrettet {u.underrettet}, planlagt idriftsat "
            f"{u.planlagt_idriftsaettelse}. {escape(u.vurdering())}.</p>"
            '<table class="foer-efter"><thead><tr><th></th><th>Kontrollerede</th><th>Fejlede</th><th>Fejlrate</th>'
            "<th>Registreret inden for fristen</th></tr></thead><tbody>"
            + "".join(f'<tr data-periode="{k}" data-checked="{q.checked}" data-failed="{q.failed}">'
                      f"<td>{label}</td><td>{q.checked}</td><td>{q.failed}</td><td>{_pct(q.fejlrate)}</td>"
                      f"<td>{_pct(q.rettidig)}</td></tr>"
                      for k, label, q in (("foer", "Før idriftsættelse", before), ("efter", "Efter", after)))
            + "</tbody></table></div>")
    parts.append("<h3>Datagenopretning (§ 5)</h3>")
    if not sager:
        parts.append('<p class="muted">Ingen åben genopretningssag.</p>')
    for s in sager:
        parts.append(_sag_html(s, quality, max((d.dag for d in quality), default=s.aabnet)))
    parts.append("</section>")
    return Markup("".join(parts))


def _sag_html(s: Sag, quality: list[DagKvalitet], today: dt.date) -> str:
    overdue = s.handlingsplan_overskredet(today)
    out = [f'<div class="genopretning" data-sag="{s.sag_id}" data-aabnet="{s.aabnet}" '
           f'data-overskredet="{str(overdue).lower()}"><p><strong>Åben sag nr. {s.sag_id}</strong> siden {s.aabnet}: '
           f"{escape(s.begrundelse)}</p>"]
    if s.handlingsplan_frist:
        out.append(f"<p>Handlingsplan krævet med frist {s.handlingsplan_frist} (§ 5, stk. 2)"
                   + (" – <strong>fristen er overskredet</strong>" if overdue else "") + ".</p>")
    if s.paalagt_it_system:
        out.append(f"<p>Pålagt it-system (§ 5, stk. 5): {escape(s.paalagt_it_system)}.</p>")
    out.append('<table class="skridt"><thead><tr><th>Dato</th><th>Skridt</th><th>§</th><th>Indhold</th>'
               "<th>Frist</th></tr></thead><tbody>")
    out.append(_rows([[str(k.dato), k.skridt.replace("_", " "), k.paragraf, escape(k.tekst), str(k.frist or "")]
                      for k in s.skridt]))
    out.append("</tbody></table><h4>Udvikling siden sagen blev åbnet</h4>"
               '<table class="udvikling"><thead><tr><th>Leveringsdato</th><th>Fejlrate</th>'
               "<th>Registreret inden for fristen</th></tr></thead><tbody>")
    out += [f'<tr class="dag" data-dag="{d.dag}" data-checked="{d.checked}" data-failed="{d.failed}" '
            f'data-timely="{d.timely}" data-late="{d.late}"><td>{d.dag}</td><td>{_pct(d.fejlrate)}</td>'
            f"<td>{_pct(d.rettidig)}</td></tr>" for d in quality if d.dag >= s.aabnet]
    out.append("</tbody></table></div>")
    return "".join(out)


def national_section(dq_db: Path, today: dt.date | None = None) -> Markup:
    """Action plans past their § 5, stk. 2 frist, for the national overview (empty without a register).

    ``today`` defaults to the last delivery day with results, so a report of a past period judges
    frister as of that period.
    """
    reg = _open(dq_db)
    if reg is None:
        return Markup("")
    if today is None:
        days = [d.dag for d in _all_days(dq_db)]
        today = max(days) if days else dt.date.today()
    with reg:
        overdue = reg.overskredne_handlingsplaner(today)
        late = [u for u in reg.underretninger() if u.for_sen]
        closed = [lk for lk in reg.lukninger() if lk.lukket(today)]
    parts = ['<section id="styring" class="governance"><h2>Styring</h2>',
             f"<h3>Handlingsplaner efter fristen (§ 5, stk. 2) pr. {today}</h3>"]
    if overdue:
        parts.append('<table class="overskredne"><thead><tr><th>Aftager</th><th>Sag</th><th>Åbnet</th>'
                     "<th>Frist</th><th>Dage over</th></tr></thead><tbody>")
        parts += [f'<tr class="overskredet" data-aftager="{s.aftager}" data-sag="{s.sag_id}"><td>{s.aftager}</td>'
                  f"<td>{s.sag_id}</td><td>{s.aabnet}</td><td>{s.handlingsplan_frist}</td>"
                  f"<td>{(today - s.handlingsplan_frist).days}</td></tr>" for s in overdue]
        parts.append("</tbody></table>")
    else:
        parts.append('<p class="muted">Ingen handlingsplaner efter fristen.</p>')
    if late:
        parts.append("<h3>For sene underretninger om systemændringer (§ 9)</h3><ul>")
        parts += [f'<li class="sen-underretning" data-aftager="{u.aftager}">{u.aftager}: '
                  f"{escape(u.beskrivelse)} – {escape(u.vurdering())}</li>" for u in late]
        parts.append("</ul>")
    if closed:
        parts.append("<h3>Lukket adgang (§ 8)</h3><ul>")
        parts += [f'<li class="lukket" data-aftager="{lk.aftager}">{escape(lk.grund())}</li>' for lk in closed]
        parts.append("</ul>")
    parts.append("</section>")
    return Markup("".join(parts))


def _all_days(dq_db: Path) -> list[DagKvalitet]:
    if not Path(dq_db).exists():
        return []
    con = duckdb.connect(str(dq_db), read_only=True)
    try:
        return [DagKvalitet(r[0], 0, 0, 0, 0) for r in
                con.execute("SELECT DISTINCT leveringsdato FROM dq_results ORDER BY 1").fetchall()]
    except duckdb.CatalogException:
        return []
    finally:
        con.close()
