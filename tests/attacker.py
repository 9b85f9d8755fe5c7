"""An independent attacker for the suppression tests: its own relations and its own integer program (scipy's
milp), written apart from pipelines/warehouse/suppression.py so that a mistake there is not repeated here.

A table is {key: (truth, published, uger)} with key (periode_type, periode_start, geo_niveau, geo_kode,
overordnet_geo_kode, ydelsesgruppe), truth (antal, tilgang, afgang, ydelsesuger), published the same with None
for a hidden figure (ydelsesuger published exactly when antal is: fuldtidspersoner x weeks), uger the weeks
of the period.  The attacker knows every overlap constant (the strongest assumption), which cells of two
vintages kept their figure (not how much the others changed), and integrality.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

M = 4  # antal, tilgang, afgang, ydelsesuger


def _up(pt: str, ps: dt.date) -> tuple[str, dt.date] | None:
    if pt == "maaned":
        return ("kvartal", dt.date(ps.year, (ps.month - 1) // 3 * 3 + 1, 1))
    if pt == "kvartal":
        return ("aar", dt.date(ps.year, 1, 1))
    return None


def _nxt(pt: str, ps: dt.date) -> dt.date:
    k = ps.year * 12 + ps.month - 1 + {"maaned": 1, "kvartal": 3, "aar": 12}[pt]
    return dt.date(k // 12, k % 12 + 1, 1)


class Attack:
    def __init__(self) -> None:
        self.var: dict = {}        # (edition, key, m) -> variable number or a published constant
        self.truth: list[float] = []
        self.rows: list[tuple[dict, float, float]] = []  # ({var: coef}, lo, hi)

    def _term(self, ed: int, tab: dict, key: tuple, m: int) -> tuple[int | None, float]:
        truth, pub, _ = tab[key]
        if pub[m] is not None:
            return None, float(pub[m])
        v = self.var.get((ed, key, m))
        if v is None:
            v = self.var[(ed, key, m)] = len(self.truth)
            self.truth.append(float(truth[m]))
        return v, 0.0

    def _rel(self, ed: int, tab: dict, terms: list[tuple[tuple, int, float]], kind: str) -> None:
        """sum(c * x) = truth ('eq'), <= 0 ('le0'), <= max(0, truth) ('slack')."""
        lhs: dict[int, float] = {}
        const = 0.0
        true = 0.0
        for key, m, c in terms:
            true += c * tab[key][0][m]
            v, k = self._term(ed, tab, key, m)
            if v is None:
                const += c * k
            else:
                lhs[v] = lhs.get(v, 0.0) + c
        if not lhs:
            return
        if kind == "eq":
            self.rows.append((lhs, true - const, true - const))
        elif kind == "le0":
            self.rows.append((lhs, -np.inf, -const))
        else:
            self.rows.append((lhs, -np.inf, max(0.0, true) - const))

    def add(self, tab: dict) -> int:
        """One published edition (a vintage with its neighbouring published years); returns its number."""
        ed = len({k[0] for k in self.var}) if self.var else 0
        ed = getattr(self, "_ed", -1) + 1
        self._ed = ed
        keys = list(tab)
        by = {(k[0], k[1], k[2], k[3], k[5]): k for k in keys}
        for k in keys:
            pt, ps, niv, kode, over, grp = k
            uger = tab[k][2]
            parents = []
            if niv == "kommune" and (pt, ps, "region", over, grp) in by:
                parents.append(("geo", by[(pt, ps, "region", over, grp)]))
            if niv == "region" and (pt, ps, "land", "000", grp) in by:
                parents.append(("geo", by[(pt, ps, "land", "000", grp)]))
            if grp != "i alt" and (pt, ps, niv, kode, "i alt") in by:
                parents.append(("grp", by[(pt, ps, niv, kode, "i alt")]))
            up = _up(pt, ps)
            if up and (up[0], up[1], niv, kode, grp) in by:
                parents.append(("tid", by[(up[0], up[1], niv, kode, grp)]))
            for kind, p in parents:
                if kind == "tid" and p is not None:
                    # antal: month <= quarter; (quarter <= sum of months is added per parent below)
                    self._rel(ed, tab, [(k, 0, 1.0), (p, 0, -1.0)], "le0")
            for m in (1, 2):
                self._rel(ed, tab, [(k, m, 1.0), (k, 0, -1.0)], "le0")
            self._rel(ed, tab, [(k, 3, 1.0), (k, 0, -float(uger))], "slack")
            self._rel(ed, tab, [(k, 0, 1.0), (k, 3, -1.0)], "slack")
            nk = by.get((pt, _nxt(pt, ps), niv, kode, grp))
            if nk is not None:
                self._rel(ed, tab, [(k, 0, 1.0), (k, 2, -1.0), (nk, 0, -1.0)], "slack")
                self._rel(ed, tab, [(nk, 0, 1.0), (nk, 1, -1.0), (k, 0, -1.0)], "slack")
        # sums: children of each parent, per measure
        kids: dict[tuple, list] = {}
        for k in keys:
            pt, ps, niv, kode, over, grp = k
            if niv == "kommune" and (pt, ps, "region", over, grp) in by:
                kids.setdefault(("geo", by[(pt, ps, "region", over, grp)]), []).append(k)
            if niv == "region" and (pt, ps, "land", "000", grp) in by:
                kids.setdefault(("geo", by[(pt, ps, "land", "000", grp)]), []).append(k)
            if grp != "i alt" and (pt, ps, niv, kode, "i alt") in by:
                kids.setdefault(("grp", by[(pt, ps, niv, kode, "i alt")]), []).append(k)
            up = _up(pt, ps)
            if up and (up[0], up[1], niv, kode, grp) in by:
                kids.setdefault(("tid", by[(up[0], up[1], niv, kode, grp)]), []).append(k)
        for (kind, p), ch in kids.items():
            for m in range(M):
                terms = [(c, m, 1.0) for c in ch] + [(p, m, -1.0)]
                if kind in ("geo", "grp") or m == 3:
                    self._rel(ed, tab, terms, "eq")
                else:
                    self._rel(ed, tab, [(c, m, -1.0) for c in ch] + [(p, m, 1.0)], "le0")
        return ed

    def same(self, ed_a: int, tab_a: dict, ed_b: int, tab_b: dict) -> None:
        """The attacker compares two vintages: a cell whose figure did not change is one unknown."""
        for k in set(tab_a) & set(tab_b):
            for m in range(M):
                if tab_a[k][0][m] == tab_b[k][0][m]:
                    va, ca = self._term(ed_a, tab_a, k, m)
                    vb, cb = self._term(ed_b, tab_b, k, m)
                    lhs: dict[int, float] = {}
                    if va is not None:
                        lhs[va] = 1.0
                    if vb is not None:
                        lhs[vb] = lhs.get(vb, 0.0) - 1.0
                    if lhs:
                        self.rows.append((lhs, cb - ca, cb - ca))

    def _model(self) -> tuple[int, LinearConstraint | None, np.ndarray]:
        """The relations as one constraint matrix (checked against the truth) and the truth as a point."""
        n = len(self.truth)
        a = np.zeros((len(self.rows), n))
        lo = np.array([r[1] for r in self.rows])
        hi = np.array([r[2] for r in self.rows])
        for i, (lhs, _, _) in enumerate(self.rows):
            for v, c in lhs.items():
                a[i, v] = c
        x0 = np.array(self.truth)
        assert (a @ x0 >= lo - 1e-6).all() and (a @ x0 <= hi + 1e-6).all(), "the truth violates a relation"
        return n, (LinearConstraint(a, lo, hi) if len(self.rows) else None), x0

    @staticmethod
    def _solve(n: int, cons: LinearConstraint | None, v: int, sign: float) -> np.ndarray:
        c = np.zeros(n)
        c[v] = sign
        r = milp(c, constraints=cons, integrality=np.ones(n), bounds=Bounds(0, 10**7))
        assert r.status == 0, r.message
        return np.round(r.x)

    def intervals(self, which: list[tuple[int, tuple, int]] | None = None) -> dict:
        """[min, max] over the integer points of every hidden cell (or of ``which``): both integer programs each."""
        n, cons, _x0 = self._model()
        out = {}
        for t in (which if which is not None else list(self.var)):
            v = self.var[t]
            out[t] = (self._solve(n, cons, v, 1.0)[v], self._solve(n, cons, v, -1.0)[v])
        return out

    def bounds(self, min_width: float, which: list[tuple[int, tuple, int]] | None = None) -> dict:
        """Per hidden cell (or ``which``): its exact [min, max] when that is narrower than ``min_width``, else an
        interval of integer points at least ``min_width`` wide inside it -- what a test that no cell is narrow needs.

        Every integer program's optimum is a point of the relations, so it bounds *every* cell from inside: the
        cells spanned by the points found so far (the truth first) need no program of their own. Sound: the true
        interval contains every point's value. (On the suppression tests' grids most cells are spanned after a
        few programs: ~3x fewer solves than :meth:`intervals`.)"""
        n, cons, x0 = self._model()
        seen_lo, seen_hi = x0.copy(), x0.copy()

        def wide(v: int) -> bool:
            return width(seen_lo[v], seen_hi[v]) >= min_width

        out = {}
        for t in (which if which is not None else list(self.var)):
            v = self.var[t]
            for sign in (1.0, -1.0):
                if not wide(v):
                    x = self._solve(n, cons, v, sign)
                    np.minimum(seen_lo, x, out=seen_lo)
                    np.maximum(seen_hi, x, out=seen_hi)
            out[t] = (seen_lo[v], seen_hi[v])
        return out


def width(lo: float, hi: float) -> float:
    return math.inf if hi >= 10**7 - 1 else hi - lo
