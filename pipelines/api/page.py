"""One small page per table: a bar chart and a table of the API's own numbers, Danish labels, kommune picker.

Why it calls the API instead of embedding figures: what the page draws is, by construction, what the API
returns (the browser test compares them).  No external scripts: the chart is SVG drawn by a few lines of JS.
"""

from __future__ import annotations

import html
import json

_PAGE = """<!doctype html>
<html lang="da"><head><meta charset="utf-8"><title>{navn}</title>
<style>body{{font-family:sans-serif;margin:2em}} .bar{{fill:#2a6f97}} td,th{{padding:2px 8px;text-align:right}}
th:first-child,td:first-child{{text-align:left}}</style></head>
<body data-tabel="{tid}">
<h1>{navn}</h1>
<label>Område <select id="omraade"></select></label>
<label>Mål <select id="maal">
<option value="antal_personer">Antal personer</option><option value="fuldtidspersoner">Fuldtidspersoner</option>
<option value="tilgang">Tilgang</option><option value="afgang">Afgang</option></select></label>
<label>Periode <select id="periode_type"><option value="maaned">Måned</option><option value="kvartal">Kvartal</option>
<option value="aar">År</option></select></label>
<svg id="graf" width="720" height="260" role="img" aria-label="Søjlediagram"></svg>
<table id="tal"><thead><tr><th>Periode</th><th>Værdi</th></tr></thead><tbody></tbody></table>
<p>".." = diskretioneret (skjult af hensyn til fortrolighed). Kilde: dsdw statistik-API.</p>
<script>
const TABEL = {tid_js};
const q = new URLSearchParams(location.search);
const key = q.get("api_key") || "";
const hdr = {{"X-API-Key": key}};
const sel = id => document.getElementById(id);
for (const id of ["maal", "periode_type"]) if (q.get(id)) sel(id).value = q.get(id);
async function omraader() {{
  const r = await fetch(`/api/v1/tables/${{TABEL}}`, {{headers: hdr}});
  const m = await r.json();
  for (const o of m.omraader) {{
    const opt = document.createElement("option");
    opt.value = o.geo_kode; opt.textContent = o.geo_navn + " (" + o.geo_kode + ")";
    sel("omraade").appendChild(opt);
  }}
  sel("omraade").value = q.get("omraade") || "000";
}}
async function tegn() {{
  document.body.dataset.klar = "0";
  const p = new URLSearchParams({{omraade: sel("omraade").value, maal: sel("maal").value,
                                  periode_type: sel("periode_type").value}});
  const r = await fetch(`/api/v1/data/${{TABEL}}?${{p}}`, {{headers: hdr}});
  const d = await r.json();
  const rows = d.data.map(x => ({{periode: x[0], vaerdi: x[7], skjult: x[8]}}));
  const svg = sel("graf"); svg.innerHTML = "";
  const max = Math.max(1, ...rows.map(x => x.vaerdi || 0));
  const w = 700 / Math.max(rows.length, 1);
  rows.forEach((x, i) => {{
    const h = (x.vaerdi || 0) / max * 220;
    const b = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    b.setAttribute("class", "bar"); b.setAttribute("x", 10 + i * w); b.setAttribute("width", Math.max(w - 4, 1));
    b.setAttribute("y", 240 - h); b.setAttribute("height", h);
    b.dataset.periode = x.periode; b.dataset.vaerdi = x.vaerdi === null ? "" : x.vaerdi;
    const t = document.createElementNS("http://www.w3.org/2000/svg", "title");
    t.textContent = x.periode + ": " + (x.vaerdi === null ? ".." : x.vaerdi); b.appendChild(t);
    svg.appendChild(b);
  }});
  const tb = document.querySelector("#tal tbody"); tb.innerHTML = "";
  for (const x of rows) {{
    const tr = document.createElement("tr"); tr.dataset.periode = x.periode;
    tr.innerHTML = `<td>${{x.periode}}</td><td class="v">${{x.vaerdi === null ? ".." : x.vaerdi}}</td>`;
    tb.appendChild(tr);
  }}
  document.body.dataset.vintage = d.vintage; document.body.dataset.klar = "1";
}}
omraader().then(tegn);
for (const id of ["omraade", "maal", "periode_type"]) sel(id).addEventListener("change", tegn);
</script></body></html>
"""


def page_html(table: dict) -> str:
    """The page of ``table`` (an entry of the API's table list)."""
    return _PAGE.format(navn=html.escape(table["navn"]), tid=html.escape(table["id"]), tid_js=json.dumps(table["id"]))
