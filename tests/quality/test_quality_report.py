"""Data-quality reports (issue #4): a page for every kommune and a-kasse, every number on a page traceable
to the results tables, a § on every rule, offline Danish HTML, and a real browser drawing the SVG charts."""

from __future__ import annotations

import datetime as dt
import html
import re
import struct
import subprocess
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from pipelines.contracts import codelist, load_contracts
from pipelines.quality.report import SEVERITY_WEIGHT, ReportIndex, build_reports, national, render_reporter

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
KOMMUNER = [row["kode"] for row in codelist("kommuner")]


# ---------------------------------------------------------------- a tiny DOM for our own pages

class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None]):
        self.tag, self.attrs, self.children = tag, attrs, []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self, tag: str | None = None, cls: str | None = None):
        for c in self.children:
            if isinstance(c, Node):
                if (tag is None or c.tag == tag) and (cls is None or cls in c.classes):
                    yield c
                yield from c.iter(tag, cls)

    def find(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        return list(self.iter(tag, cls))

    def child_text(self, tag: str) -> str:
        return next((c.text() for c in self.children if isinstance(c, Node) and c.tag == tag), "")

    def __getitem__(self, key: str) -> str:
        return self.attrs[key] or ""


class _DOM(HTMLParser):
    VOID = {"meta", "br", "wbr", "img", "hr", "input", "link"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def dom(text: str) -> Node:
    p = _DOM()
    p.feed(text)
    p.close()
    return p.root


def num_da(s: str) -> int:
    """'1.234' -> 1234 (Danish thousands separator)."""
    return int(s.replace(".", ""))


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def con(dq_db: Path):
    c = duckdb.connect(str(dq_db), read_only=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def reports(dq_db: Path, tmp_path_factory: pytest.TempPathFactory) -> ReportIndex:
    return build_reports(dq_db, tmp_path_factory.mktemp("reports"))


@pytest.fixture(scope="module")
def sample(con) -> list[tuple[str, str]]:
    """Pages checked in depth: the largest kommune, the worst, one with missing deliveries, a-kasser."""
    worst = con.execute("""SELECT reporter FROM dq_results WHERE reporter_kind = 'kommune' GROUP BY 1
                           ORDER BY sum(records_failed) / sum(records_checked) DESC LIMIT 1""").fetchone()[0]
    gaps = con.execute("""SELECT reporter FROM dq_completeness WHERE reporter IN (SELECT unnest(?))
                          GROUP BY 1 ORDER BY count(*), 1 LIMIT 1""", [KOMMUNER]).fetchone()[0]
    return [("kommune", "101"), ("kommune", worst), ("kommune", gaps), ("akasse", "010"), ("akasse", "015")]


def page(reports: ReportIndex, kind: str, code: str) -> str:
    pages = reports.kommuner if kind == "kommune" else reports.akasser
    return pages[code].read_text(encoding="utf-8")


def db_rules(con, code: str) -> dict[tuple[str, str], tuple[int, int, str, str]]:
    rows = con.execute("""SELECT dataset, rule_id, sum(records_checked), sum(records_failed),
                                 any_value(paragraph), any_value(severity)
                          FROM dq_results WHERE reporter = ? AND reporter_kind IN ('kommune', 'akasse')
                          GROUP BY ALL""", [code]).fetchall()
    return {(ds, r): (int(c), int(f), p, s) for ds, r, c, f, p, s in rows}


# ---------------------------------------------------------------- tests

def test_every_kommune_and_akasse_present_has_a_page(reports: ReportIndex, con) -> None:
    assert len(KOMMUNER) == 98
    assert sorted(reports.kommuner) == sorted(KOMMUNER)
    akasser = {r for (r,) in con.execute(
        "SELECT DISTINCT reporter FROM dq_results WHERE reporter_kind = 'akasse'").fetchall()}
    assert set(reports.akasser) == akasser
    silent = {row["kode"] for row in codelist("akasser")} - akasser  # sent nothing in the period
    assert silent and not silent & set(reports.akasser)
    names = {row["kode"]: row["navn"] for row in codelist("kommuner")}
    for code, path in reports.kommuner.items():
        assert path == reports.out_dir / "kommune" / f"{code}.html"
        text = path.read_text(encoding="utf-8")
        assert f"<h1>Datakvalitet: {names[code]}</h1>" in text, code
    index = reports.index.read_text(encoding="utf-8")
    links = set(re.findall(r'href="((?:kommune|akasse)/[^"]+\.html)"', index))
    assert links == {f"kommune/{c}.html" for c in KOMMUNER} | {f"akasse/{c}.html" for c in akasser}


def test_rule_rows_equal_dq_results_on_every_page(reports: ReportIndex, con) -> None:
    """All 98 + a-kasse pages: each rule row's numbers, § and severity are the table's, none missing."""
    for kind, pages in (("kommune", reports.kommuner), ("akasse", reports.akasser)):
        for code, path in pages.items():
            text = path.read_text(encoding="utf-8")
            rows = {}
            for m in re.finditer(r'<tr class="rule-row" ([^>]*)>', text):
                a = {k: html.unescape(v) for k, v in re.findall(r'data-([a-z-]+)="([^"]*)"', m.group(1))}
                rows[(a["dataset"], a["rule"])] = (int(a["checked"]), int(a["failed"]), a["paragraph"],
                                                   a["severity"])
            assert rows == db_rules(con, code), f"{kind} {code}"


def test_every_rule_row_carries_its_paragraph(reports: ReportIndex, sample) -> None:
    seen = set()
    for kind, code in sample:
        root = dom(page(reports, kind, code))
        rows = root.find("tr", "rule-row") + root.find("tr", "fix-item") + root.find("tr", "deadline-row")
        assert rows
        for tr in rows:
            par = tr["data-paragraph"]
            assert "§" in par or "Bilag" in par, (code, tr["data-rule"])
            assert [td.text() for td in tr.find("td", "paragraph")] == [par]
            seen.add((tr["data-rule"], par))
    assert ("KG-001", "§ 16, stk. 1") in seen
    assert ("SAM-002", "§ 25, stk. 2") in seen
    assert ("FRA-002", "§ 33, stk. 1; Bilag 1") in seen
    assert ("samtale:codelist:samtaleform", "§ 25, stk. 1, nr. 4") in seen


def test_charts_and_sections_match_the_tables(reports: ReportIndex, con, sample) -> None:
    days = [d for (d,) in con.execute(
        "SELECT DISTINCT leveringsdato FROM dq_completeness ORDER BY 1").fetchall()]
    for kind, code in sample:
        root = dom(page(reports, kind, code))
        rules = db_rules(con, code)
        # summary numbers
        kpi = {k["data-metric"]: k for k in root.find("div", "kpi")}
        assert int(kpi["checked"]["data-value"]) == sum(v[0] for v in rules.values())
        assert int(kpi["failed"]["data-value"]) == sum(v[1] for v in rules.values())

        # (1) timeliness: every bar's number (attribute and <title>) is dq_timeliness;
        # the late records are the deadline rule's failures in dq_results
        lags = defaultdict(dict)
        for ds, rid, lag, n, max_lag in con.execute(
                "SELECT dataset, rule_id, lag_days, sum(records), max(max_lag_days) FROM dq_timeliness "
                "WHERE reporter = ? GROUP BY ALL", [code]).fetchall():
            lags[(ds, rid)][lag] = (int(n), max_lag)
        charts = root.find("svg", "lag-chart")
        assert {(s["data-dataset"], s["data-rule"]) for s in charts} == set(lags)
        table = {(tr["data-dataset"], tr["data-rule"]): tr for tr in root.find("tr", "deadline-row")}
        for svg in charts:
            key = (svg["data-dataset"], svg["data-rule"])
            db_lags = lags[key]
            deadline = next(iter(db_lags.values()))[1]
            bars = svg.find("rect", "bar")
            assert len(bars) >= deadline + 2
            total = 0
            for bar in bars:
                lo = int(bar["data-lag-from"]) if bar["data-lag-from"] else -10**6
                hi = int(bar["data-lag-to"]) if bar["data-lag-to"] else 10**6
                want = sum(n for lag, (n, _) in db_lags.items() if lo <= lag <= hi)
                assert int(bar["data-records"]) == want, (code, key, lo)
                title = bar.child_text("title")
                assert num_da(re.search(r": ([\d.]+) registreringer", title).group(1)) == want
                assert ("late" in bar.classes) == (lo > deadline)
                total += want
            late = sum(n for lag, (n, _) in db_lags.items() if lag > deadline)
            assert total == sum(n for n, _ in db_lags.values()) == int(svg["data-records"])
            assert int(svg["data-late"]) == late == rules[key][1]
            assert [ln["data-deadline"] for ln in svg.find("line", "deadline")] == [str(deadline)]
            assert (table[key]["data-records"], table[key]["data-late"]) == (str(total), str(late))

        # (2) trend: one point per day with results, numbers = daily sums
        daily = {d.isoformat(): (int(c), int(f)) for d, c, f in con.execute(
            "SELECT leveringsdato, sum(records_checked), sum(records_failed) FROM dq_results "
            "WHERE reporter = ? AND reporter_kind = ? GROUP BY 1", [code, kind]).fetchall() if c}
        trend = root.find("svg", "trend-chart")[0]
        points = {p["data-day"]: (int(p["data-checked"]), int(p["data-failed"]))
                  for p in trend.find("circle")}
        assert points == daily
        for p in trend.find("circle"):
            m = re.search(r": ([\d.]+) fejl af ([\d.]+) kontrollerede", p.child_text("title"))
            assert (num_da(m.group(2)), num_da(m.group(1))) == daily[p["data-day"]]

        # (3) completeness: expected datasets x days; received cells = dq_completeness, the rest missing
        want_kind = "jobcenter" if kind == "kommune" else "akasse"
        expected = sorted(c.dataset for c in load_contracts().values() if c.reporter == want_kind)
        got = {(ds, d.isoformat()): int(n) for ds, d, n in con.execute(
            "SELECT dataset, leveringsdato, sum(records) FROM dq_completeness "
            "WHERE reporter = ? GROUP BY ALL",
            [code]).fetchall()}
        cells = root.find("td", "cell")
        assert len(cells) == len(expected) * len(days)
        assert sorted({c["data-dataset"] for c in cells}) == expected
        for c in cells:
            key = (c["data-dataset"], c["data-day"])
            if "received" in c.classes:
                assert int(c["data-records"]) == got[key]
            else:
                assert "missing" in c.classes and key not in got
        assert int(kpi["completeness"]["data-received"]) == sum(1 for c in cells if "received" in c.classes)

        # (4) what to fix first: ordered by failed x severity weight, samples from the table
        items = root.find("tr", "fix-item")
        scores = [int(i["data-score"]) for i in items]
        assert scores == sorted(scores, reverse=True)
        best = max((f * SEVERITY_WEIGHT[s] for _, f, _, s in rules.values()), default=0)
        assert scores[:1] == ([best] if best else [])  # a reporter without errors has an empty list
        for it in items:
            checked, failed, par, sev = rules[(it["data-dataset"], it["data-rule"])]
            assert int(it["data-failed"]) == failed and int(it["data-score"]) == failed * SEVERITY_WEIGHT[sev]
            keys = [k.text() for k in it.find("code", "sample-key")]
            db_keys = {k for (ks,) in con.execute(
                "SELECT sample_keys FROM dq_results WHERE reporter = ? AND dataset = ? AND rule_id = ?",
                [code, it["data-dataset"], it["data-rule"]]).fetchall() for k in ks}
            assert 0 < len(keys) <= 5 and set(keys) <= db_keys


def test_national_overview_ranks_reporters(reports: ReportIndex, con) -> None:
    root = dom(reports.index.read_text(encoding="utf-8"))
    totals = {(k, r): (int(c), int(f)) for k, r, c, f in con.execute(
        "SELECT reporter_kind, reporter, sum(records_checked), sum(records_failed) FROM dq_results "
        "GROUP BY ALL").fetchall()}
    late = {r: (int(n), int(lt)) for r, n, lt in con.execute(
        "SELECT reporter, sum(records), coalesce(sum(records) FILTER (WHERE lag_days > max_lag_days), 0) "
        "FROM dq_timeliness "
        "WHERE dataset IN (SELECT unnest(?)) GROUP BY 1",
        [[c.dataset for c in load_contracts().values() if c.reporter == "jobcenter"]]).fetchall()}
    for order in ("rate", "time"):
        rows = [tr for t in root.find("table", "ranking") if t["data-kind"] == "kommune"
                and t["data-order"] == order for tr in t.find("tr", "rank-row")]
        assert sorted(tr["data-code"] for tr in rows) == sorted(KOMMUNER)
        for tr in rows:
            assert (int(tr["data-checked"]), int(tr["data-failed"])) == totals[("kommune", tr["data-code"])]
            assert (int(tr["data-records"]), int(tr["data-late"])) == late[tr["data-code"]]
        key = (lambda tr: int(tr["data-failed"]) / int(tr["data-checked"])) if order == "rate" else \
            (lambda tr: 1 - int(tr["data-late"]) / int(tr["data-records"]))
        values = [key(tr) for tr in rows]
        assert values == sorted(values, reverse=(order == "rate"))
    bars = [b for svg in root.find("svg", "rank-chart") for b in svg.find("rect", "bar")]
    assert bars and all((int(b["data-checked"]), int(b["data-failed"])) == totals[("kommune", b["data-code"])]
                        for b in bars[:15])
    assert int(root.find("div", "kpi")[1]["data-value"]) == sum(
        f for (k, _), (_, f) in totals.items() if k in ("kommune", "akasse"))


def test_pages_are_offline_danish_and_script_free(reports: ReportIndex) -> None:
    for path in [reports.index, reports.kommuner["101"], reports.kommuner["825"], reports.akasser["010"]]:
        raw = path.read_bytes()
        text = raw.decode("utf-8")  # strict: must be valid UTF-8
        assert '<meta charset="utf-8">' in text and '<html lang="da">' in text
        assert "<script" not in text
        assert not re.search(r'(src|href)="(https?:)?//', text)
        assert "url(" not in text and "@import" not in text
        assert set(re.findall(r"https?://[^\"' <]+", text)) <= {"http://www.w3.org/2000/svg"}
    assert "Læsø" in reports.kommuner["825"].read_text(encoding="utf-8")
    k101 = reports.kommuner["101"].read_text(encoding="utf-8")
    for phrase in ("København", "Hvad skal rettes først", "Fuldstændighed", "Rettidighed", "§ 5"):
        assert phrase in k101
    assert "3F&#39;s A-kasse (Faglig Fælles A-kasse)" in reports.akasser["010"].read_text(encoding="utf-8")


def test_single_page_and_overview_alone_match_the_full_build(reports: ReportIndex, dq_db: Path,
                                                            tmp_path: Path) -> None:
    one = render_reporter(dq_db, "kommune", "101", tmp_path)
    assert one == tmp_path / "kommune" / "101.html"
    assert one.read_bytes() == reports.kommuner["101"].read_bytes()
    assert render_reporter(dq_db, "akasse", "010", tmp_path).read_bytes() == reports.akasser["010"].read_bytes()
    assert national(dq_db, tmp_path).read_bytes() == reports.index.read_bytes()
    with pytest.raises(ValueError):
        render_reporter(dq_db, "uvm", "UVM", tmp_path)


def _chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_browser_draws_the_charts(reports: ReportIndex, con, tmp_path: Path) -> None:
    """A real browser lays out the page: the bars exist, carry the table's numbers, and their heights are
    proportional to them."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: this test needs Debian's chromium "
                    "(`apt-get install -y chromium`; .ci/run installs it)")
    src = reports.kommuner["101"].read_text(encoding="utf-8")
    # The page has no JavaScript; the probe (test-only copy) records each drawn element's laid-out size.
    probe = ("<script>for (const e of document.querySelectorAll('svg .bar, svg .point')) {"
             "const b = e.getBoundingClientRect(); "
             "e.setAttribute('data-bbox', b.width + ',' + b.height);}</script>")
    probe_page = tmp_path / "101_probe.html"
    probe_page.write_text(src.replace("</body>", probe + "</body>"), encoding="utf-8")
    run = _chromium(["--dump-dom", probe_page.as_uri()], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    live, static = dom(run.stdout), dom(src)

    charts = {(s["data-dataset"], s["data-rule"]): s for s in live.find("svg", "lag-chart")}
    static_charts = {(s["data-dataset"], s["data-rule"]): s for s in static.find("svg", "lag-chart")}
    assert charts.keys() == static_charts.keys() and len(charts) > 5
    lags = defaultdict(dict)
    for ds, rid, lag, n in con.execute("SELECT dataset, rule_id, lag_days, sum(records) FROM dq_timeliness "
                                       "WHERE reporter = '101' GROUP BY ALL").fetchall():
        lags[(ds, rid)][lag] = int(n)
    for key, svg in charts.items():
        bars = svg.find("rect", "bar")
        assert len(bars) == len(static_charts[key].find("rect", "bar"))
        drawn = []
        for bar in bars:
            lo = int(bar["data-lag-from"]) if bar["data-lag-from"] else -10**6
            hi = int(bar["data-lag-to"]) if bar["data-lag-to"] else 10**6
            n = num_da(re.search(r": ([\d.]+) registreringer", bar.child_text("title")).group(1))
            assert n == sum(v for lag, v in lags[key].items() if lo <= lag <= hi)
            width, height = map(float, bar["data-bbox"].split(","))
            assert width > 0
            drawn.append((n, height))
        top_n, top_h = max(drawn)
        assert top_h > 50  # the tallest bar fills most of the plot
        for n, height in drawn:  # heights proportional to the numbers (SVG coordinates rounded to 0.1 px)
            assert abs(height - n * top_h / top_n) <= 0.15, (key, n, height)
    points = live.find("circle", "point")
    assert points and all(float(p["data-bbox"].split(",")[0]) > 0 for p in points)

    shot = tmp_path / "101.png"
    run = _chromium(["--window-size=1400,2400", f"--screenshot={shot}", reports.kommuner["101"].as_uri()],
                    tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (1400, 2400)
    assert len(png) > 50_000  # a blank page compresses to a few KB


def test_ranking_puts_the_surprising_reporter_first_whatever_its_problem() -> None:
    """Error rate, lateness and a stop are each judged against what chance gives a reporter of that size."""
    from pipelines.quality.report import DeadlineStat, Reporter, RuleStat, rank_reporters

    days = [dt.date(2026, 10, 1) + dt.timedelta(days=k) for k in range(14)]

    def reporter(code: str, checked: int, failed: int, late: int = 2, gap: range = range(0)) -> Reporter:
        r = Reporter("kommune", code, code)
        r.rules[("samtale", "SAM-002")] = RuleStat("samtale", "SAM-002", "§ 20", "error", "", "", checked, failed)
        r.deadlines[("samtale", "SAM-002")] = DeadlineStat("samtale", "SAM-002", 7, {0: checked - late, 9: late})
        for k, d in enumerate(days):
            if k not in gap:
                r.received[("samtale", d)] = (1, 30 if k != gap.stop else 30 * (len(gap) + 1))
        return r

    normal = [reporter(f"{100 + k}", 400 + 40 * k, 1 + k % 3) for k in range(20)]
    small_bad_luck = reporter("900", 10, 1)  # 10 % errors, but 1 record: chance explains it
    broken = reporter("901", 500, 60)
    late = reporter("902", 500, 1, late=150)
    stopped = reporter("903", 450, 1, gap=range(4, 11))
    # a small reporter sending a record or two every few days: a week's silence is its chance, not a stop
    sparse = reporter("904", 40, 0)
    sparse.received = {("plan", days[k]): (1, n) for k, n in ((0, 20), (1, 2), (2, 1), (10, 2), (12, 1))}
    ranking = rank_reporters([*normal, small_bad_luck, broken, late, stopped, sparse], days)
    assert {s.rep.code for s in ranking[:3]} == {"901", "902", "903"}
    assert next(s for s in ranking if s.rep.code == "904").p_gap > 0.01
    assert {s.rep.code: s.problem for s in ranking[:3]} == {"901": "fejlrate", "902": "rettidighed",
                                                             "903": "manglende leverancer"}
    assert ranking[2].score > 6 and ranking[3].score < 4
    assert next(s for s in ranking if s.rep.code == "903").gap_days == 7
