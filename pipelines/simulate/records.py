"""Build records from contracts: every field the contract declares gets a value.

Values come from three layers, in order:
1. the field's type, PII class, code list and simulator hint (generic, so a field
   added to a contract appears in the synthetic sources with no code change);
2. the person's state (cpr, kommune, a-kasse, kontaktgruppe, visitations-/matchgruppe);
3. the contract's rules (deadlines, date windows, required_when, fixed_values,
   start_before_end), so clean records satisfy the law by construction.
Dataset-specific semantics are passed in as ``overrides`` by the event specs.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from pipelines.contracts import Contract, Field, Rule, codelist, codelist_codes
from pipelines.simulate import names

CPH = ZoneInfo("Europe/Copenhagen")

# Fields whose values the person's state decides.
STATE_FIELDS = {"cpr", "kontaktgruppe", "visitationsgruppe", "matchgruppe", "sygedagpengekategori", "persongruppe"}


@functools.lru_cache(maxsize=4096)
def tz_offset(day: dt.date) -> str:
    off = dt.datetime(day.year, day.month, day.day, 12, tzinfo=CPH).utcoffset()
    assert off is not None
    minutes = int(off.total_seconds() // 60)
    return f"+{minutes // 60:02d}:{minutes % 60:02d}"


def iso_dt(day: dt.date, minute_of_day: int) -> str:
    """ISO 8601 timestamp with the Europe/Copenhagen offset of that day."""
    h, m = divmod(int(minute_of_day), 60)
    return f"{day.isoformat()}T{h:02d}:{m:02d}:00{tz_offset(day)}"


def valid_cvr(rng: np.random.Generator) -> str:
    """An 8-digit CVR number passing the modulus-11 check (python-stdnum dk.cvr)."""
    weights = (2, 7, 6, 5, 4, 3, 2)
    while True:
        digits = [int(rng.integers(1, 10))] + [int(d) for d in rng.integers(0, 10, size=6)]
        s = sum(w * d for w, d in zip(weights, digits, strict=True)) % 11
        check = (11 - s) % 11
        if check < 10:
            return "".join(map(str, digits)) + str(check)


def pnummer(rng: np.random.Generator) -> str:
    return "1" + "".join(str(int(d)) for d in rng.integers(0, 10, size=9))


@dataclass
class RuleView:
    """The rules of one contract, indexed by what generation needs."""

    deadlines: list[Rule]
    windows: list[Rule]
    required_when: list[Rule]
    fixed: list[Rule]
    start_end: list[Rule]
    only_changed: set[str]
    versions: list[str]
    allowed: list[Rule]

    @classmethod
    def of(cls, c: Contract) -> RuleView:
        by: dict[str, list[Rule]] = {}
        for r in c.rules:
            by.setdefault(r.kind, []).append(r)
        return cls(
            deadlines=by.get("deadline", []),
            windows=by.get("date_window", []),
            required_when=by.get("required_when", []),
            fixed=by.get("fixed_values", []),
            start_end=by.get("start_before_end", []),
            only_changed={r.params["field"] for r in by.get("only_when_changed", []) if "field" in r.params},
            versions=[r.params["field"] for r in by.get("version_increases", []) if "field" in r.params],
            allowed=by.get("allowed_values", []),
        )

    def max_lag(self, change_type: str) -> tuple[int, Rule | None]:
        """The tightest deadline that applies to this change type (days, rule)."""
        best: tuple[int, Rule | None] = (10_000, None)
        for r in self.deadlines:
            ct = r.params.get("change_type")
            if ct and ct != change_type:
                continue
            lag = int(r.params.get("max_lag_days", 0))
            if lag < best[0]:
                best = (lag, r)
        return best


def _matches(record: dict[str, Any], when: dict[str, Any]) -> bool:
    for k, vals in when.items():
        vals = vals if isinstance(vals, list) else [vals]
        if str(record.get(k)) not in {str(v) for v in vals}:
            return False
    return True


class Vocab:
    """Code lists and vocabularies the generic generators draw from."""

    def __init__(self) -> None:
        self._codes: dict[str, list[str]] = {}
        titles = [r["navn"] for r in codelist("stillingsbetegnelser")] if _has("stillingsbetegnelser") else []
        self.job_titles = titles or list(names.JOB_TITLES_FALLBACK)

    def codes(self, name: str) -> list[str]:
        if name not in self._codes:
            self._codes[name] = codelist_codes(name)
        return self._codes[name]


def _has(name: str) -> bool:
    from pipelines.contracts import REFERENCE_DIR

    return (REFERENCE_DIR / f"{name}.csv").exists()


Gen = Callable[[np.random.Generator, dict[str, Any]], Any]


def generic_value(f: Field, rng: np.random.Generator, ctx: dict[str, Any], vocab: Vocab) -> Any:
    """A plausible value for ``f`` from its type, PII class, code list and hint alone."""
    n = f.name
    hint = f.generator or ""
    event: dt.date = ctx["event_date"]
    if f.type == "code" or (f.codelist and f.type in ("string", "integer")):
        codes = vocab.codes(f.codelist)  # type: ignore[arg-type]
        if f.multi:
            k = int(rng.integers(1, 4))
            return [codes[int(j)] for j in rng.choice(len(codes), size=min(k, len(codes)), replace=False)]
        return codes[int(rng.integers(0, len(codes)))]
    if f.type == "kommunekode":
        return f"{int(ctx['kommunekode']):03d}"
    if f.type == "akassekode":
        return f"{int(ctx['akassekode']):03d}" if ctx.get("akassekode", -1) >= 0 else None
    if f.type == "uuid":
        return ctx["uuid"]()
    if f.type == "cpr":
        return ctx["cpr"]
    if f.type == "cvr":
        return valid_cvr(rng)
    if f.type == "pnummer":
        return pnummer(rng)
    if f.type == "date":
        low = n.lower()
        if "slut" in low or low.endswith("_til") or "udloeb" in low or "ophoer" in low:
            return (event + dt.timedelta(days=int(rng.integers(14, 240)))).isoformat()
        if "frist" in low or "forventet" in low:
            return (event + dt.timedelta(days=int(rng.integers(7, 60)))).isoformat()
        if "foedsel" in low:
            return ctx.get("birth", event).isoformat()
        return event.isoformat()
    if f.type == "time":
        m = int(rng.integers(8 * 60, 15 * 60)) // 15 * 15
        return f"{m // 60:02d}:{m % 60:02d}"
    if f.type == "datetime":
        return iso_dt(event, int(rng.integers(8 * 60, 16 * 60)))
    low = n.lower()
    if f.type in ("integer", "decimal") and ("time" in low or "timer" in low) and "sats" not in low \
            and "pris" not in low:
        hours = int(rng.integers(5, 37))
        return hours if f.type == "integer" else float(hours)
    if f.type == "decimal" and ("sats" in low or "pris" in low or "beloeb" in low):
        return round(float(rng.uniform(40, 400)), 2)
    if f.type == "integer":
        if "minut" in low:
            return int(rng.integers(0, 60))
        if "timer" in low:
            return int(rng.integers(5, 37))
        if "version" in low:
            return 1
        if "antal" in low:
            return int(rng.integers(1, 4))
        return int(rng.integers(1, 100))
    if f.type == "decimal":
        return round(float(rng.uniform(50, 5000)), 2)
    if f.type == "boolean":
        return bool(rng.random() < 0.3)
    # string / text
    low = n.lower()
    if hint == "person_name" or f.pii == "name":
        return f"{names.FIRST_NAMES[int(rng.integers(len(names.FIRST_NAMES)))]} " \
               f"{names.LAST_NAMES[int(rng.integers(len(names.LAST_NAMES)))]}"
    if hint == "phone" or (f.pii == "contact" and ("telefon" in low or "tlf" in low or "nummer" in low)):
        return f"{int(rng.integers(20, 99))}{int(rng.integers(0, 999999)):06d}"
    if hint == "email" or (f.pii == "contact" and ("mail" in low)):
        return f"kontakt{int(rng.integers(1, 9999))}@eksempel.dk"
    if hint == "postnummer" or "postnummer" in low or low == "postnr":
        return names.POSTNUMRE[int(rng.integers(len(names.POSTNUMRE)))][0]
    if hint == "by" or low in ("by", "bynavn"):
        return names.POSTNUMRE[int(rng.integers(len(names.POSTNUMRE)))][1]
    if hint == "address" or f.pii == "contact" or "adresse" in low or "sted" in low or "lokation" in low:
        return f"{names.STREETS[int(rng.integers(len(names.STREETS)))]} {int(rng.integers(1, 120))}"
    if hint == "company_name" or "virksomhed" in low or "firma" in low:
        return f"{names.COMPANY_STEMS[int(rng.integers(len(names.COMPANY_STEMS)))]} " \
               f"{names.COMPANY_SUFFIXES[int(rng.integers(len(names.COMPANY_SUFFIXES)))]}".strip()
    if hint == "job_title" or "stilling" in low or "jobtitel" in low:
        return vocab.job_titles[int(rng.integers(len(vocab.job_titles)))]
    if f.type == "text" or f.pii == "free_text" or hint == "sentence":
        return names.SENTENCES[int(rng.integers(len(names.SENTENCES)))]
    if "ident" in low or low.endswith("_id") or "noegle" in low or low[-2:] == "nr":
        return f"{int(rng.integers(10**7, 10**8))}"
    return names.SENTENCES[int(rng.integers(len(names.SENTENCES)))][:40]


class RecordBuilder:
    """Builds complete, rule-conforming records for one contract."""

    OPTIONAL_FILL = 0.6

    def __init__(self, contract: Contract, vocab: Vocab) -> None:
        self.c = contract
        self.vocab = vocab
        self.rules = RuleView.of(contract)
        self.fields = contract.fields
        self.names = [f.name for f in contract.fields]
        self.conditional = {r.params["field"] for r in self.rules.required_when if "field" in r.params}
        self.sub_kind_field = next((f.name for f in self.fields if f.codelist == "foranstaltningsarter"), None)
        # references to other records are set by the event specs (a random id would refer to nothing)
        self.references = {r.params["field"] for r in contract.rules if r.kind == "reference_exists"
                           and not (r.params.get("dataset") == contract.dataset
                                    and r.params.get("field") in contract.record_key)}

    def build(self, rng: np.random.Generator, ctx: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
        """The dataset fields (no envelope) for one record."""
        rec: dict[str, Any] = {}
        sub_kind = overrides.get(self.sub_kind_field) if self.sub_kind_field else None
        if self.sub_kind_field and sub_kind is None:
            codes = self.vocab.codes("foranstaltningsarter")
            sub_kind = codes[int(rng.integers(len(codes)))]
        for f in self.fields:
            if f.name in overrides:
                rec[f.name] = overrides[f.name]
                continue
            if f.name == self.sub_kind_field:
                rec[f.name] = sub_kind
                continue
            if f.sub_kind and sub_kind is not None and f.sub_kind != sub_kind:
                rec[f.name] = None
                continue
            if f.name in self.references:
                rec[f.name] = None
                continue
            if f.name in self.rules.only_changed:
                rec[f.name] = None  # set by the event spec when the value changed
                continue
            if f.name in STATE_FIELDS and f.name in ctx:
                rec[f.name] = ctx[f.name]
                continue
            if f.name == self.c.event_time and f.type == "date":
                rec[f.name] = ctx["event_date"].isoformat()
                continue
            if f.name == self.c.registration_time and f.type == "date":
                rec[f.name] = ctx["reg_date"].isoformat()
                continue
            if not f.required and f.name not in self.conditional and rng.random() > self.OPTIONAL_FILL:
                rec[f.name] = None
                continue
            if f.name in self.conditional and not f.required:
                rec[f.name] = None  # decided below by required_when
                continue
            rec[f.name] = generic_value(f, rng, ctx, self.vocab)
        self._apply_rules(rec, rng, ctx, overrides)
        return rec

    def _apply_rules(self, rec: dict[str, Any], rng: np.random.Generator, ctx: dict[str, Any],
                     overrides: dict[str, Any]) -> None:
        reg: dt.date = ctx["reg_date"]
        event: dt.date = ctx["event_date"]
        for r in self.rules.deadlines:
            ef, rf = r.params.get("event_field"), r.params.get("registration_field")
            ct = r.params.get("change_type")
            if ct and ct != ctx["change_type"]:
                continue
            if ef in rec and ef not in overrides and self.c.field(ef).type == "date" and rec.get(ef) is not None:
                rec[ef] = event.isoformat()
            if rf in rec and rf not in overrides and self.c.field(rf).type == "date":
                rec[rf] = reg.isoformat()
        for r in self.rules.windows:
            fld, rel = r.params.get("field"), r.params.get("relative_to")
            if fld in overrides or fld not in rec or rel not in rec or rec.get(rel) is None:
                continue
            if r.params.get("when") and not _matches(rec, r.params["when"]):
                continue
            base = dt.date.fromisoformat(str(rec[rel])[:10])
            lo, hi = int(r.params.get("min_days", 0)), int(r.params.get("max_days", 0))
            rec[fld] = (base + dt.timedelta(days=int(rng.integers(lo, hi + 1)))).isoformat()
        for r in self.rules.allowed:
            fld = r.params.get("field")
            f = self.c.field(fld)
            if rec.get(fld) is None or fld in overrides or not f.codelist:
                continue
            ok = [str(v) for v in r.params.get("values") or self.vocab.codes(f.codelist)
                  if str(v) not in {str(x) for x in r.params.get("exclude") or []}]
            if str(rec[fld]) not in ok:
                rec[fld] = ok[int(rng.integers(len(ok)))]
        for r in self.rules.fixed:
            if _matches(rec, r.params.get("when", {})):
                rec.update({k: v for k, v in r.params.get("then", {}).items() if k in rec})
        for _ in range(3):  # a condition may name a field another rule fills: iterate to a fixpoint
            changed = False
            for r in self.rules.required_when:
                fld = r.params.get("field")
                if fld in rec and rec[fld] is None and fld not in overrides \
                        and _matches(rec, r.params.get("when", {})):
                    rec[fld] = generic_value(self.c.field(fld), rng, ctx, self.vocab)
                    changed = rec[fld] is not None or changed
            if not changed:
                break
        for r in self.rules.start_end:
            s, e = r.params.get("start_field"), r.params.get("end_field")
            if rec.get(s) and rec.get(e) and str(rec[e]) < str(rec[s]):
                rec[e] = rec[s]
        for fld in self.rules.versions:
            if fld in rec and fld not in overrides:
                rec[fld] = ctx.get("version", 1)
