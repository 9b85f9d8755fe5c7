"""Static data-quality reports: one page per kommune and a-kasse, and a national overview.

Why: under § 5 STAR must be able to show a kommune or an a-kasse, in a dialogue, exactly where
its reporting breaks the order's rules.  The pages read only the published results tables in
``dq.duckdb`` (docs/quality.md; never the restricted ``dq_failures``), name the § of every rule,
and are plain files - inline CSS and pre-rendered SVG, no JavaScript, no network - so they open
offline, can be mailed and archived as they were.  Every number on a page carries ``data-*``
attributes so tests (and anyone scraping a page) can tie it back to the table it came from.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import jinja2
from markupsafe import Markup

from pipelines.contracts import Contract, codelist, load_contracts
from pipelines.fsio import atomic_write
from pipelines.governance.report import national_section, reporter_section  # issue 17

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
KINDS = ("kommune", "akasse")  # the reporters § 5 is about; they get pages
CONTRACT_REPORTER = {"kommune": "jobcenter", "akasse": "akasse"}  # page kind -> contract `reporter`
KIND_DA = {"kommune": "Kommune", "akasse": "A-kasse"}
SEVERITY_DA = {"error": "fejl", "warn": "advarsel"}
# "Hvad skal rettes først": failed records x weight; an error blocks use of a record, a warning does not.
SEVERITY_WEIGHT = {"error": 3, "warn": 1}
FIX_FIRST_TOP = 10
MONTHS_DA = ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september",
             "oktober", "november", "december")
WEEKDAYS_DA = ("man", "tir", "ons", "tor", "fre", "lør", "søn")
ON_TIME, LATE, LINE = "#1f6fb2", "#d9661f", "#1f6fb2"


# ---------------------------------------------------------------- formatting (Danish conventions)

def int_da(n: int | None) -> str:
    """1234567 -> '1.234.567' (Danish thousands separator)."""
    return "–" if n is None else f"{n:,}".replace(",", ".")


def pct_da(x: float | None) -> str:
    """0.0456 -> '4,6 %'; two decimals below 1 % so small rates do not read as zero."""
    if x is None:
        return "–"
    digits = 2 if 0 < x < 0.01 else 1
    text = f"{x * 100:.{digits}f}"
    if x < 1 and text == "100.0":  # 99.97 % on time is not "100,0 %": some records were late
        return "> 99,9 %"
    if x > 0 and text == "0.00":
        return "< 0,01 %"
    return text.replace(".", ",") + " %"


def date_da(d: dt.date) -> str:
    return f"{d.day}. {MONTHS_DA[d.month - 1]} {d.year}"


def _esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def paragraph_html(paragraph: str) -> Markup:
    """Keep each § reference on one line but let a list of them ('§ 24; § 23, stk. 2') wrap between items."""
    return Markup("; ".join(f'<span class="nw">{_esc(p)}</span>' for p in str(paragraph).split("; ")))


def wbr(rule_id: str) -> Markup:
    """Let long generic ids (``samtale:codelist:samtaleform``) wrap after ':' without altering copied text."""
    return Markup(":<wbr>".join(_esc(part) for part in str(rule_id).split(":")))


# ---------------------------------------------------------------- data

@dataclass
class RuleStat:
    """One rule's results for one reporter over the period."""

    dataset: str
    rule_id: str
    paragraph: str
    severity: str
    text_da: str
    text_en: str
    checked: int = 0
    failed: int = 0
    daily: dict[dt.date, tuple[int, int]] = field(default_factory=dict)  # day -> (checked, failed)
    sample_keys: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        return self.failed / self.checked if self.checked else None

    @property
    def score(self) -> int:
        return self.failed * SEVERITY_WEIGHT.get(self.severity, 1)


@dataclass
class DeadlineStat:
    """Registration lag distribution for one deadline rule (dq_timeliness)."""

    dataset: str
    rule_id: str
    max_lag: int
    lags: dict[int, int] = field(default_factory=dict)  # lag_days -> records
    paragraph: str = ""
    text_da: str = ""
    # arrival_lag_days -> records: from the event to the day the record reached us (ledger receive time, § 5)
    arrival_lags: dict[int, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(self.lags.values())

    @property
    def late_arrival(self) -> int:
        """Records that reached us after the deadline, whatever registration date the reporter gave them."""
        return sum(n for lag, n in self.arrival_lags.items() if lag > self.max_lag)

    @property
    def on_time_arrival_share(self) -> float | None:
        n = sum(self.arrival_lags.values())
        return (n - self.late_arrival) / n if n else None

    @property
    def late(self) -> int:
        return sum(n for lag, n in self.lags.items() if lag > self.max_lag)

    @property
    def on_time_share(self) -> float | None:
        return (self.records - self.late) / self.records if self.records else None


@dataclass
class Reporter:
    kind: str
    code: str
    name: str
    rules: dict[tuple[str, str], RuleStat] = field(default_factory=dict)
    deadlines: dict[tuple[str, str], DeadlineStat] = field(default_factory=dict)
    received: dict[tuple[str, dt.date], tuple[int, int]] = field(default_factory=dict)  # -> payloads, records

    @property
    def checked(self) -> int:
        return sum(r.checked for r in self.rules.values())

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.rules.values())

    @property
    def rate(self) -> float | None:
        return self.failed / self.checked if self.checked else None

    @property
    def timely_records(self) -> int:
        return sum(d.records for d in self.deadlines.values())

    @property
    def late(self) -> int:
        return sum(d.late for d in self.deadlines.values())

    @property
    def on_time_share(self) -> float | None:
        n = self.timely_records
        return (n - self.late) / n if n else None

    @property
    def has_data(self) -> bool:
        return bool(self.rules or self.deadlines or self.received)


@dataclass
class Standing:
    """How surprising one reporter's problems are, given its volume (the overview's ranking).

    Three measures, each a probability that a reporter like the others would look at least this
    bad by chance (smaller = more surprising): failed records against the usual error rate, overall
    and for its worst rule (Poisson), late records against the usual late share, and
    the longest run of days without a delivery of a dataset the reporter otherwise delivers
    (geometric: the reporter's own daily delivery share outside the run).  The ranking is by the
    smallest of the three, so a reporter stands out for its worst problem whatever its size.
    """

    rep: Reporter
    p_error: float
    p_late: float
    p_gap: float
    gap_days: int = 0
    gap_dataset: str | None = None

    @property
    def p(self) -> float:
        return min(self.p_error, self.p_late, self.p_gap)

    @property
    def score(self) -> float:
        """-log10 of the smallest probability (0 = unremarkable; 6 = one in a million)."""
        return -math.log10(max(self.p, 1e-300))

    @property
    def problem(self) -> str:
        return min((("fejlrate", self.p_error), ("rettidighed", self.p_late), ("manglende leverancer", self.p_gap)),
                   key=lambda x: x[1])[0]


def _longest_gap(days: list[dt.date], delivered: dict[dt.date, int]) -> tuple[int, float]:
    """The longest run of days without a delivery between the first and last delivery, and how likely
    such a run is (at any day of the period) for a reporter sending its usual number of records a day.

    The usual number is the reporter's records per day from its first delivery on, silent days
    included, leaving out the period's first day (a first extract carries history).  A stop
    followed by a catch-up delivery thus stands out (the catch-up holds the missing days' records),
    a reporter with few records now and then does not: averaging over the delivery days alone
    would count a reporter sending one record every third day as one sending one a day.
    """
    idx = [k for k, d in enumerate(days) if delivered.get(d)]
    if len(idx) < 2:
        return 0, 1.0
    best, at = max((b - a - 1, a) for a, b in zip(idx, idx[1:], strict=False))
    if best < 2:
        return best, 1.0
    span = range(max(1, idx[0]), len(days))
    if len(span) < 2:
        return best, 1.0
    lam = sum(delivered.get(days[k], 0) for k in span) / len(span)
    return best, min(1.0, len(days) * math.exp(-lam * best))


def rank_reporters(reps: list[Reporter], days: list[dt.date]) -> list[Standing]:
    """Reporters of one kind, most surprising problems first (see :class:`Standing`)."""
    from scipy.stats import poisson

    def baseline(pairs: list[tuple[int, int]]) -> float:
        """The usual rate: pooled over the reporters after leaving out the worst tenth (a few problem
        reporters must not raise the bar the others are measured by), smoothed so that a rule nobody
        breaks is rare, not impossible."""
        pairs = sorted((p for p in pairs if p[1]), key=lambda p: p[0] / p[1])
        kept = pairs[:len(pairs) - len(pairs) // 10]
        return (sum(f for f, _ in kept) + 0.5) / (sum(c for _, c in kept) + 1)

    def excess(n: int, base: int, rate: float) -> float:
        """P(at least n of base) at the usual rate."""
        return float(poisson.sf(n - 1, base * rate)) if n > 0 else 1.0

    rate = baseline([(r.failed, r.checked) for r in reps])
    late_share = baseline([(r.late, r.timely_records) for r in reps])
    per_rule: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for r in reps:
        for key, st in r.rules.items():
            per_rule[key].append((st.failed, st.checked))
    rule_rate = {key: baseline(pairs) for key, pairs in per_rule.items()}
    out = []
    for r in reps:
        # the whole error rate, and its worst rule (times the number of rules tried: a broken field is
        # one rule of many, and one of many rules is bound to look a little bad by chance)
        p_err = excess(r.failed, r.checked, rate)
        tried = [st for st in r.rules.values() if st.checked]
        for st in tried:
            p_err = min(p_err, min(1.0, len(tried) * excess(st.failed, st.checked,
                                                              rule_rate[(st.dataset, st.rule_id)])))
        p_late = excess(r.late, r.timely_records, late_share)
        by_ds: dict[str, dict[dt.date, int]] = defaultdict(dict)
        for (ds, d), (payloads, n) in r.received.items():
            if payloads and n:
                by_ds[ds][d] = n
        gap, p_gap, gap_ds = 0, 1.0, None
        for ds in sorted(by_ds):
            g, p = _longest_gap(days, by_ds[ds])
            if p < p_gap:
                gap, p_gap, gap_ds = g, p, ds
        out.append(Standing(r, p_err, p_late, p_gap, gap, gap_ds))
    return sorted(out, key=lambda s: (-s.score, -(s.rep.rate or 0), s.rep.code))


@dataclass
class _Results:
    days: list[dt.date]
    reporters: dict[tuple[str, str], Reporter]
    others: list[tuple[str, str, int, int]]  # kind, reporter, checked, failed (UVM, SSI, JOBNET)


@dataclass(frozen=True)
class ReportIndex:
    """What :func:`build_reports` wrote."""

    out_dir: Path
    index: Path
    kommuner: dict[str, Path]
    akasser: dict[str, Path]
    period: tuple[dt.date, dt.date] | None

    @property
    def pages(self) -> list[Path]:
        return [self.index, *self.kommuner.values(), *self.akasser.values()]


def _names() -> dict[str, dict[str, str]]:
    return {"kommune": {r["kode"]: r["navn"] for r in codelist("kommuner")},
            "akasse": {r["kode"]: r["navn"] for r in codelist("akasser")}}


def _dataset_kind() -> dict[str, str]:
    """Dataset -> page kind; dq_timeliness and dq_completeness carry no reporter_kind."""
    to_kind = {v: k for k, v in CONTRACT_REPORTER.items()}
    return {c.dataset: to_kind[c.reporter] for c in load_contracts().values() if c.reporter in to_kind}


def expected_datasets(kind: str) -> list[Contract]:
    """Datasets a reporter of this kind must deliver: the contracts whose `reporter` is its kind."""
    return [c for c in load_contracts().values() if c.reporter == CONTRACT_REPORTER[kind]]


def _rule_meta(dataset: str, rule_id: str) -> tuple[str, str]:
    c = load_contracts().get(dataset)
    for r in c.rules if c else ():
        if r.id == rule_id:
            return r.paragraph, r.text_da
    return "", ""


def _load(dq_db: Path, only: tuple[str, str] | None = None) -> _Results:
    """Read the results tables once; ``only`` = (kind, code) restricts to one reporter."""
    if not Path(dq_db).exists():
        raise FileNotFoundError(f"no results database at {dq_db}")
    names = _names()
    ds_kind = _dataset_kind()
    con = duckdb.connect(str(dq_db), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        missing = {"dq_results", "dq_timeliness", "dq_completeness"} - tables
        if missing:
            raise ValueError(f"{dq_db}: results tables missing: {sorted(missing)} (see docs/quality.md)")
        days = [r[0] for r in con.execute(
            "SELECT DISTINCT leveringsdato FROM (SELECT leveringsdato FROM dq_results UNION ALL "
            "SELECT leveringsdato FROM dq_completeness UNION ALL SELECT leveringsdato FROM dq_timeliness) "
            "ORDER BY 1").fetchall()]
        where, params = "reporter_kind IN ('kommune', 'akasse')", []
        rwhere, rparams = "TRUE", []
        if only:
            where, params = "reporter_kind = ? AND reporter = ?", list(only)
            rwhere, rparams = "reporter = ?", [only[1]]
        totals = con.execute(f"""
            SELECT reporter_kind, reporter, dataset, rule_id,
                   arg_max(paragraph, leveringsdato), arg_max(severity, leveringsdato),
                   arg_max(text_da, leveringsdato), arg_max(text_en, leveringsdato),
                   flatten(list(sample_keys ORDER BY leveringsdato DESC)
                           FILTER (WHERE len(sample_keys) > 0))[1:25]
            FROM dq_results WHERE {where} GROUP BY ALL""", params).fetchall()
        daily = con.execute(f"""
            SELECT reporter_kind, reporter, dataset, rule_id, leveringsdato,
                   sum(records_checked)::BIGINT, sum(records_failed)::BIGINT
            FROM dq_results WHERE {where} GROUP BY ALL""", params).fetchall()
        arrival = "arrival_lag_days" if con.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'dq_timeliness' "
            "AND column_name = 'arrival_lag_days'").fetchone()[0] else "NULL::INTEGER"
        timeliness = con.execute(f"""
            SELECT reporter, dataset, rule_id, lag_days, {arrival}, max(max_lag_days), sum(records)::BIGINT
            FROM dq_timeliness WHERE {rwhere} GROUP BY ALL""", rparams).fetchall()
        completeness = con.execute(f"""
            SELECT reporter, dataset, leveringsdato, sum(payloads)::BIGINT, sum(records)::BIGINT
            FROM dq_completeness WHERE {rwhere} GROUP BY ALL""", rparams).fetchall()
        others = [] if only else con.execute("""
            SELECT reporter_kind, reporter, sum(records_checked)::BIGINT, sum(records_failed)::BIGINT
            FROM dq_results WHERE reporter_kind NOT IN ('kommune', 'akasse') GROUP BY ALL ORDER BY 1, 2
            """).fetchall()
    finally:
        con.close()

    reporters: dict[tuple[str, str], Reporter] = {}

    def rep(kind: str, code: str) -> Reporter:
        key = (kind, code)
        if key not in reporters:
            reporters[key] = Reporter(kind, code, names[kind].get(code, code))
        return reporters[key]

    if only:
        rep(*only)
    else:  # every kommune gets a page, with or without data
        for code in names["kommune"]:
            rep("kommune", code)
    for kind, code, ds, rid, par, sev, tda, ten, samples in totals:
        keys = list(dict.fromkeys(samples or []))[:5]
        rep(kind, code).rules[(ds, rid)] = RuleStat(ds, rid, par or "", sev, tda or "", ten or "",
                                                    sample_keys=keys)
    for kind, code, ds, rid, day, checked, failed in daily:
        r = reporters[(kind, code)].rules[(ds, rid)]
        r.daily[day] = (checked, failed)
        r.checked += checked
        r.failed += failed
    for code, ds, rid, lag, arrival_lag, max_lag, n in timeliness:
        kind = ds_kind.get(ds)
        if kind is None or (only and kind != only[0]):
            continue
        r = rep(kind, code)
        d = r.deadlines.get((ds, rid))
        if d is None:
            stat = r.rules.get((ds, rid))
            par, text = (stat.paragraph, stat.text_da) if stat else _rule_meta(ds, rid)
            d = r.deadlines[(ds, rid)] = DeadlineStat(ds, rid, int(max_lag), paragraph=par, text_da=text)
        d.lags[int(lag)] = d.lags.get(int(lag), 0) + n
        if arrival_lag is not None:
            d.arrival_lags[int(arrival_lag)] = d.arrival_lags.get(int(arrival_lag), 0) + n
        d.max_lag = max(d.max_lag, int(max_lag))
    for code, ds, day, payloads, n in completeness:
        kind = ds_kind.get(ds)
        if kind is None or (only and kind != only[0]):
            continue
        rep(kind, code).received[(ds, day)] = (payloads, n)
    return _Results(days, reporters, [tuple(o) for o in others])


# ---------------------------------------------------------------- SVG charts

def _nice_step(vmax: float, n: int = 4) -> float:
    if vmax <= 0:
        return 1.0
    raw = vmax / n
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def _ticks(vmax: float, integer: bool = True) -> list[float]:
    step = _nice_step(vmax)
    if integer:
        step = max(1.0, math.ceil(step))
    top = step * max(1, math.ceil(vmax / step))
    return [i * step for i in range(int(round(top / step)) + 1)]


def _lag_buckets(d: DeadlineStat) -> list[tuple[int | None, int | None, int]]:
    """(from, to, records) bars: one per day up to a cap, '<0' and 'cap+' collected."""
    cap = max(d.max_lag + 8, 10)
    out: list[tuple[int | None, int | None, int]] = []
    neg = sum(n for lag, n in d.lags.items() if lag < 0)
    if neg:
        out.append((None, -1, neg))
    out += [(lag, lag, d.lags.get(lag, 0)) for lag in range(cap)]
    out.append((cap, None, sum(n for lag, n in d.lags.items() if lag >= cap)))
    return out


def _bucket_label(lo: int | None, hi: int | None) -> str:
    return "<0" if lo is None else (f"{lo}+" if hi is None else str(lo))


def _deadline_da(max_lag: int) -> str:
    if max_lag == 0:
        return "samme dag"
    return "senest dagen efter" if max_lag == 1 else f"senest {max_lag} dage efter"


def _deadline_short(max_lag: int) -> str:
    return "samme dag" if max_lag == 0 else ("1 dag" if max_lag == 1 else f"{max_lag} dage")


def _frame(w: int, h: int, ml: int, mt: int, pw: float, ph: float, ticks: list[float], fmt, x_title: str,
           y_title: str) -> list[str]:
    """Grid lines with tick labels, the two axes and their titles (shared by the bar and line charts)."""
    out = []
    for t in ticks:
        y = mt + ph - t / ticks[-1] * ph
        out.append(f'<line class="grid" x1="{ml}" x2="{ml + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                   f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{fmt(t)}</text>')
    out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{mt + ph}" y2="{mt + ph}" stroke="#333"/>'
               f'<line x1="{ml}" x2="{ml}" y1="{mt}" y2="{mt + ph}" stroke="#333"/>'
               f'<text x="{ml + pw / 2:.1f}" y="{h - 6}" text-anchor="middle" font-size="11">{x_title}</text>'
               f'<text transform="translate(14 {mt + ph / 2:.1f}) rotate(-90)" text-anchor="middle" '
               f'font-size="11">{y_title}</text>')
    return out


def lag_chart(d: DeadlineStat) -> Markup:
    """Bar chart of registration lag with the § deadline marked; late bars in a second colour."""
    w, h, ml, mr, mt, mb = 400, 220, 54, 12, 30, 44
    pw, ph = w - ml - mr, h - mt - mb
    buckets = _lag_buckets(d)
    ticks = _ticks(max(n for _, _, n in buckets) or 1)
    bw = pw / len(buckets)
    parts = [f'<svg class="chart lag-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
             f'width="{w}" height="{h}" role="img" data-rule="{_esc(d.rule_id)}" '
             f'data-dataset="{_esc(d.dataset)}" data-deadline="{d.max_lag}" data-records="{d.records}" '
             f'data-late="{d.late}">',
             f"<title>{_esc(d.rule_id)}: registreringsforsinkelse mod fristen i {_esc(d.paragraph)}</title>"]
    parts += _frame(w, h, ml, mt, pw, ph, ticks, lambda t: int_da(int(t)),
                    "Forsinkelse fra hændelse til registrering (dage)", "Registreringer")
    deadline_x = None
    for i, (lo, hi, n) in enumerate(buckets):
        late = lo is not None and lo > d.max_lag
        if lo == d.max_lag + 1:
            deadline_x = ml + i * bw
        bh = n / ticks[-1] * ph
        label = _bucket_label(lo, hi)
        unit = "dag" if label == "1" else "dage"
        status = "over fristen" if late else "inden for fristen"
        parts.append(
            f'<rect class="bar {"late" if late else "on-time"}" x="{ml + i * bw + 1:.1f}" '
            f'y="{mt + ph - bh:.1f}" width="{max(bw - 2, 1):.1f}" height="{bh:.1f}" '
            f'fill="{LATE if late else ON_TIME}" data-lag-from="{"" if lo is None else lo}" '
            f'data-lag-to="{"" if hi is None else hi}" data-records="{n}" data-late="{int(late)}">'
            f"<title>{label} {unit}: {int_da(n)} registreringer ({status})</title></rect>")
        if len(buckets) <= 16 or i % 2 == 0 or hi is None:
            parts.append(f'<text x="{ml + (i + 0.5) * bw:.1f}" y="{mt + ph + 14}" text-anchor="middle" '
                         f'font-size="10">{label}</text>')
    if deadline_x is not None:
        anchor, dx = ("end", -4) if deadline_x > ml + pw * 0.6 else ("start", 4)
        first_paragraph = _esc(d.paragraph.split(";")[0])
        parts.append(f'<line class="deadline" data-deadline="{d.max_lag}" x1="{deadline_x:.1f}" '
                     f'x2="{deadline_x:.1f}" y1="{mt - 8}" y2="{mt + ph}" stroke="#b00020" stroke-width="2" '
                     f'stroke-dasharray="5 3"/>'
                     f'<text class="deadline-label" x="{deadline_x + dx:.1f}" y="{mt - 12}" '
                     f'text-anchor="{anchor}" font-size="11" fill="#b00020">'
                     f"Frist {first_paragraph}: {_deadline_short(d.max_lag)}</text>")
    # Late bars are often too short to see next to the on-time bulk: state their total in words.
    share = pct_da(d.late / d.records) if d.records else "–"
    parts.append(f'<text class="late-label" x="{w - mr}" y="{mt + 14}" text-anchor="end" font-size="12" '
                 f'font-weight="bold" fill="{LATE}" data-late="{d.late}">'
                 f"Over fristen: {int_da(d.late)} ({share})</text></svg>")
    return Markup("".join(parts))


def trend_chart(days: list[dt.date], daily: dict[dt.date, tuple[int, int]], label: str) -> Markup:
    """Line chart of the daily error rate (failed / checked) with one titled point per day."""
    w, h, ml, mr, mt, mb = 760, 240, 58, 14, 16, 46
    pw, ph = w - ml - mr, h - mt - mb
    rates = {d: f / c for d, (c, f) in daily.items() if c}
    ticks = _ticks(max(rates.values(), default=0) * 100 or 1, integer=False)
    ymax = ticks[-1] / 100
    step = pw / max(len(days), 1)
    parts = [f'<svg class="chart trend-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
             f'width="{w}" height="{h}" role="img" data-days="{len(days)}"><title>{_esc(label)}</title>']
    parts += _frame(w, h, ml, mt, pw, ph, ticks, lambda t: pct_da(t / 100) if t else "0 %",
                    "Leveringsdato (weekend med fed)", "Fejlrate")
    segments: list[list[str]] = [[]]  # a day without results breaks the line
    for i, d in enumerate(days):
        if d in rates:
            segments[-1].append(f"{ml + (i + 0.5) * step:.1f},{mt + ph - rates[d] / ymax * ph:.1f}")
        else:
            segments.append([])
    parts += [f'<polyline class="line" points="{" ".join(seg)}" fill="none" stroke="{LINE}" '
              f'stroke-width="2"/>' for seg in segments if len(seg) > 1]
    for i, d in enumerate(days):
        checked, failed = daily.get(d, (0, 0))
        x = ml + (i + 0.5) * step
        if d in rates:
            parts.append(f'<circle class="point" cx="{x:.1f}" cy="{mt + ph - rates[d] / ymax * ph:.1f}" '
                         f'r="4" fill="{LINE}" data-day="{d.isoformat()}" data-checked="{checked}" '
                         f'data-failed="{failed}">'
                         f"<title>{date_da(d)}: {int_da(failed)} fejl af {int_da(checked)} kontrollerede "
                         f"({pct_da(rates[d])})</title></circle>")
        weight = "bold" if d.weekday() >= 5 else "normal"
        parts.append(f'<text x="{x:.1f}" y="{mt + ph + 15}" text-anchor="middle" font-size="10" '
                     f'font-weight="{weight}">{d:%d.%m}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(days: list[dt.date], daily: dict[dt.date, tuple[int, int]]) -> Markup:
    """Tiny per-rule trend of failed records per day, for the rule table."""
    w, h = 112, 22
    series = [daily.get(d, (0, 0))[1] for d in days]
    top = max(series, default=0) or 1
    step = w / max(len(days) - 1, 1)
    pts = " ".join(f"{i * step:.1f},{h - 2 - v / top * (h - 4):.1f}" for i, v in enumerate(series))
    return Markup(f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" '
                  f'height="{h}" data-failed-series="{",".join(map(str, series))}">'
                  f"<title>Fejl pr. dag: {', '.join(int_da(v) for v in series)}</title>"
                  f'<polyline points="{pts}" fill="none" stroke="{LATE}" stroke-width="1.5"/></svg>')


def rank_chart(rows: list[Reporter], title: str) -> Markup:
    """Horizontal bars of the highest error rates, for the national overview."""
    bh, ml, mr, mt = 20, 230, 70, 8
    w = 720
    h = mt + bh * len(rows) + 24
    top = max((r.rate or 0 for r in rows), default=0) or 1
    parts = [f'<svg class="chart rank-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
             f'width="{w}" height="{h}" role="img"><title>{_esc(title)}</title>']
    for i, r in enumerate(rows):
        y = mt + i * bh
        bw = (r.rate or 0) / top * (w - ml - mr)
        parts.append(f'<text x="{ml - 6}" y="{y + 14}" text-anchor="end" font-size="12">{_esc(r.name)} '
                     f"({_esc(r.code)})</text>"
                     f'<rect class="bar" x="{ml}" y="{y + 2}" width="{bw:.1f}" height="{bh - 4}" '
                     f'fill="{LATE}" '
                     f'data-code="{_esc(r.code)}" data-checked="{r.checked}" data-failed="{r.failed}">'
                     f"<title>{_esc(r.name)}: {pct_da(r.rate)} ({int_da(r.failed)} fejl af "
                     f"{int_da(r.checked)})</title></rect>"
                     f'<text x="{ml + bw + 4:.1f}" y="{y + 14}" font-size="12">{pct_da(r.rate)}</text>')
    parts.append(f'<text x="{ml}" y="{h - 6}" font-size="11">'
                 f"Fejlrate = fejlede poster / kontrollerede poster, alle regler</text></svg>")
    return Markup("".join(parts))


# ---------------------------------------------------------------- pages

def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(int_da=int_da, pct_da=pct_da, date_da=date_da, wbr=wbr,
                       paragraph=paragraph_html)
    env.globals.update(SEVERITY_DA=SEVERITY_DA, SEVERITY_WEIGHT=SEVERITY_WEIGHT, KIND_DA=KIND_DA,
                       WEEKDAYS_DA=WEEKDAYS_DA)
    return env


def _completeness(rep: Reporter, days: list[dt.date]) -> tuple[list[dict], int, int]:
    """Rows per expected dataset: per day (payloads, records) or None when nothing arrived."""
    rows, expected, received = [], 0, 0
    for c in expected_datasets(rep.kind):
        cells = [rep.received.get((c.dataset, d)) for d in days]
        got = [x for x in cells if x and x[0] > 0]
        top = max((x[1] for x in got), default=0) or 1
        rows.append({"dataset": c.dataset, "title": c.title, "paragraph": c.legal_basis,
                     "cells": [(d, x, (0.15 + 0.6 * x[1] / top) if x else 0) for d, x in zip(days, cells,
                                                                                            strict=True)],
                     "received": len(got)})
        expected += len(days)
        received += len(got)
    return rows, expected, received


def _reporter_html(env: jinja2.Environment, rep: Reporter, days: list[dt.date], dq_db: Path | None = None) -> str:
    rules = sorted(rep.rules.values(), key=lambda r: (-r.failed, -(r.rate or 0), r.dataset, r.rule_id))
    fix_first = sorted((r for r in rules if r.failed), key=lambda r: (-r.score, -r.failed, r.rule_id))
    deadlines = sorted(rep.deadlines.values(), key=lambda d: (d.on_time_share or 1, d.dataset, d.rule_id))
    daily_total: dict[dt.date, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for r in rules:
        for d, (c, f) in r.daily.items():
            tc, tf = daily_total[d]
            daily_total[d] = (tc + c, tf + f)
    comp_rows, expected, received = _completeness(rep, days)
    titles = {c.dataset: c.title for c in load_contracts().values()}
    return env.get_template("reporter.html").render(
        rep=rep, days=days, titles=titles, rules_failing=[r for r in rules if r.failed],
        rules_clean=[r for r in rules if not r.failed], fix_first=fix_first[:FIX_FIRST_TOP],
        deadlines=[(d, lag_chart(d)) for d in deadlines], deadline_da=_deadline_da,
        trend=trend_chart(days, dict(daily_total), f"Fejlrate pr. leveringsdato for {rep.name}"),
        sparks={(r.dataset, r.rule_id): sparkline(days, r.daily) for r in rules},
        completeness=comp_rows, expected=expected, received=received,
        last_day=days[-1] if days else None,
        governance=reporter_section(dq_db, rep.kind, rep.code) if dq_db else "")  # issue 17 (§§ 5, 6, 8, 9)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode("utf-8"))
    path.chmod(0o644)  # published pages: readable by the web server / whoever they are mailed to
    return path


def _page_path(out_dir: Path, kind: str, code: str) -> Path:
    return Path(out_dir) / kind / f"{code}.html"


def render_reporter(dq_db: Path, kind: str, code: str, out_dir: Path) -> Path:
    """Write one reporter's page (``out_dir/<kind>/<code>.html``), e.g. to send to one kommune."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    res = _load(dq_db, only=(kind, code))
    rep = res.reporters[(kind, code)]
    return _write(_page_path(out_dir, kind, code), _reporter_html(_env(), rep, res.days, dq_db))


# a reporter is listed among the problem reporters when chance explains its worst measure less than
# once in 10,000 (with ~120 reporters and three measures, about one in 30 overviews lists one by chance)
STANDOUT_SCORE = 4.0


def _national_html(env: jinja2.Environment, res: _Results, links: dict[tuple[str, str], str],
                   dq_db: Path | None = None) -> str:
    groups = {}
    for kind in KINDS:
        reps = [r for (k, _), r in sorted(res.reporters.items())
                if k == kind and (kind == "kommune" or r.has_data)]
        comp = {r.code: _completeness(r, res.days)[1:] for r in reps}
        by_rate = sorted(reps, key=lambda r: (r.rate is None, -(r.rate or 0), -r.failed, r.code))
        by_time = sorted(reps, key=lambda r: (r.on_time_share is None, r.on_time_share or 0, r.code))
        groups[kind] = {"by_rate": by_rate, "by_time": by_time, "comp": comp,
                        "standing": [s for s in rank_reporters(reps, res.days) if s.score >= STANDOUT_SCORE],
                        "chart": rank_chart([r for r in by_rate if r.rate][:15],
                                            f"{KIND_DA[kind]}: højeste fejlrate")}
    national_rules: dict[tuple[str, str], RuleStat] = {}
    daily_total: dict[dt.date, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for rep in res.reporters.values():
        for key, r in rep.rules.items():
            agg = national_rules.setdefault(key, RuleStat(r.dataset, r.rule_id, r.paragraph, r.severity,
                                                          r.text_da, r.text_en))
            agg.checked += r.checked
            agg.failed += r.failed
            for d, (c, f) in r.daily.items():
                tc, tf = daily_total[d]
                daily_total[d] = (tc + c, tf + f)
    top_rules = sorted(national_rules.values(), key=lambda r: (-r.score, r.rule_id))[:15]
    checked = sum(c for c, _ in daily_total.values())
    failed = sum(f for _, f in daily_total.values())
    return env.get_template("index.html").render(
        days=res.days, groups=groups, links=links, top_rules=top_rules, others=res.others,
        checked=checked, failed=failed, rate=failed / checked if checked else None,
        trend=trend_chart(res.days, dict(daily_total), "Fejlrate pr. leveringsdato, hele landet"),
        governance=national_section(dq_db) if dq_db else "")  # issue 17 (§ 5, stk. 2; §§ 8, 9)


def national(dq_db: Path, out_dir: Path) -> Path:
    """Write only the national overview ``out_dir/index.html`` (links assume the reporter pages)."""
    res = _load(dq_db)
    links = {key: f"{key[0]}/{key[1]}.html" for key in res.reporters}
    return _write(Path(out_dir) / "index.html", _national_html(_env(), res, links, dq_db))


def build_reports(dq_db: Path, out_dir: Path) -> ReportIndex:
    """Write the national overview and a page per kommune (all 98) and per a-kasse with results."""
    out_dir = Path(out_dir)
    res = _load(dq_db)
    env = _env()
    pages: dict[str, dict[str, Path]] = {k: {} for k in KINDS}
    for (kind, code), rep in sorted(res.reporters.items()):
        if kind == "akasse" and not rep.has_data:
            continue
        pages[kind][code] = _write(_page_path(out_dir, kind, code), _reporter_html(env, rep, res.days, dq_db))
    links = {(k, c): f"{k}/{c}.html" for k in KINDS for c in pages[k]}
    index = _write(out_dir / "index.html", _national_html(env, res, links, dq_db))
    period = (res.days[0], res.days[-1]) if res.days else None
    return ReportIndex(out_dir, index, pages["kommune"], pages["akasse"], period)
