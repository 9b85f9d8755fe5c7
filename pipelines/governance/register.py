"""The governance register: STAR's duties towards the reporters (BEK 912/2015 §§ 5, 6, 8, 9, 10-11).

One SQLite file beside the file ledger (``<root>/governance.sqlite``, the operational zone):
small state kept by a data steward through ``dsdw governance ...`` and read by ingestion,
deliveries, the quality reports and ``dsdw testdata extract``.  Every change is one
transaction together with its row in ``audit`` (who, when, what), so the register can
always say who closed an aftager's access or accepted a late notice.

Dates are ISO ``YYYY-MM-DD``.  Periods are ``[fra, til]`` with ``til`` inclusive and
NULL = open-ended: a tilslutningsaftale runs until it is terminated or replaced
(§ 112, stk. 6), a closed access until it is reopened (§ 8).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipelines.governance.arbejdsdage import (
    VARSEL_ARBEJDSDAGE,
    arbejdsdage_mellem,
    seneste_rettidige_underretning,
    tidligste_idriftsaettelse,
)

REGISTER_FILE = "governance.sqlite"

#: Channels that need a tilslutningsaftale, with the provision that says so.  FTP (chapter 11,
#: § 52, stk. 4) and the UVM/SSI drops have none in the order.
AFTALE_KANALER = {"webservice": "§ 6, stk. 1", "portal": "§ 6, stk. 3"}
AFTAGER_TYPER = ("kommune", "akasse", "myndighed", "leverandoer")
SAG_SKRIDT = {
    # skridt -> the provision it exercises
    "dialog": "§ 5, stk. 1",
    "handlingsplan_krav": "§ 5, stk. 2",
    "handlingsplan_modtaget": "§ 5, stk. 2",
    "ekstern_bistand": "§ 5, stk. 3",
    "hoering": "§ 5, stk. 4",
    "beslutning": "§ 5, stk. 4",
    "it_system": "§ 5, stk. 5",
    "afsluttet": "§ 5",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS tilslutningsaftaler (
    aftale_id INTEGER PRIMARY KEY,
    aftager TEXT NOT NULL,              -- kommunekode, a-kassekode, myndighed or it-leverandør
    aftager_type TEXT NOT NULL,
    kanal TEXT NOT NULL CHECK (kanal IN ('webservice', 'portal')),
    gyldig_fra TEXT NOT NULL,
    gyldig_til TEXT,                    -- NULL: until terminated or replaced (§ 112, stk. 6)
    note TEXT
);
CREATE TABLE IF NOT EXISTS adgangslukninger (
    lukning_id INTEGER PRIMARY KEY,
    aftager TEXT NOT NULL,
    lukket_fra TEXT NOT NULL,
    lukket_til TEXT,                    -- last closed day; NULL: still closed
    begrundelse TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS systemaendringer (
    underretning_id INTEGER PRIMARY KEY,
    aftager TEXT NOT NULL,
    beskrivelse TEXT NOT NULL,
    underrettet TEXT NOT NULL,
    planlagt_idriftsaettelse TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS genopretningssager (
    sag_id INTEGER PRIMARY KEY,
    aftager TEXT NOT NULL,
    aabnet TEXT NOT NULL,
    begrundelse TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('aaben', 'afsluttet')),
    afsluttet TEXT
);
CREATE TABLE IF NOT EXISTS sag_skridt (
    sag_id INTEGER NOT NULL REFERENCES genopretningssager(sag_id),
    nr INTEGER NOT NULL,
    dato TEXT NOT NULL,
    skridt TEXT NOT NULL,
    tekst TEXT NOT NULL,
    frist TEXT,
    paragraf TEXT NOT NULL,
    PRIMARY KEY (sag_id, nr)
);
CREATE TABLE IF NOT EXISTS leverandoer_kunder (
    leverandoer TEXT NOT NULL,
    aftager TEXT NOT NULL,
    applikation TEXT NOT NULL,
    fra TEXT NOT NULL,
    til TEXT,
    PRIMARY KEY (leverandoer, aftager, applikation, fra)
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    tid TEXT NOT NULL,
    hvem TEXT NOT NULL,
    handling TEXT NOT NULL,
    tabel TEXT NOT NULL,
    noegle TEXT NOT NULL,
    data TEXT NOT NULL
);
"""


class GovernanceError(ValueError):
    """A change the order does not allow (the message names the §)."""


def register_path(root: Path | str) -> Path:
    """Where the register of an environment lives: beside the file ledger."""
    return Path(root) / REGISTER_FILE


def _d(value: dt.date | str | None) -> str | None:
    if value is None or value == "":
        return None
    return (value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))).isoformat()


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Aftale:
    aftale_id: int
    aftager: str
    aftager_type: str
    kanal: str
    gyldig_fra: dt.date
    gyldig_til: dt.date | None
    note: str | None

    @property
    def paragraf(self) -> str:
        return AFTALE_KANALER[self.kanal]

    def gyldig(self, day: dt.date) -> bool:
        return self.gyldig_fra <= day and (self.gyldig_til is None or day <= self.gyldig_til)


@dataclass(frozen=True)
class Lukning:
    lukning_id: int
    aftager: str
    lukket_fra: dt.date
    lukket_til: dt.date | None
    begrundelse: str

    def lukket(self, day: dt.date) -> bool:
        return self.lukket_fra <= day and (self.lukket_til is None or day <= self.lukket_til)

    def grund(self) -> str:
        til = f" til {self.lukket_til}" if self.lukket_til else " (ikke genåbnet)"
        return (f"§ 8: Styrelsen har lukket {self.aftager}s adgang til at læse, registrere og modtage data via "
                f"webservicer fra {self.lukket_fra}{til}: {self.begrundelse}")


@dataclass(frozen=True)
class Underretning:
    """A § 9 notice with the checks the order asks for."""

    underretning_id: int
    aftager: str
    beskrivelse: str
    underrettet: dt.date
    planlagt_idriftsaettelse: dt.date

    @property
    def seneste_rettidige(self) -> dt.date:
        """The last day the notice could be given (§ 9, stk. 1: 40 arbejdsdage before go-live)."""
        return seneste_rettidige_underretning(self.planlagt_idriftsaettelse)

    @property
    def arbejdsdage_varsel(self) -> int:
        return arbejdsdage_mellem(self.underrettet, self.planlagt_idriftsaettelse)

    @property
    def for_sen(self) -> bool:
        return self.underrettet > self.seneste_rettidige

    @property
    def tidligste_tilladte(self) -> dt.date:
        """§ 9, stk. 2: a late change may be postponed until 40 arbejdsdage after the notice."""
        return tidligste_idriftsaettelse(self.underrettet)

    def vurdering(self) -> str:
        if not self.for_sen:
            return (f"§ 9, stk. 1: rettidig ({self.arbejdsdage_varsel} arbejdsdages varsel, mindst "
                    f"{VARSEL_ARBEJDSDAGE})")
        return (f"§ 9, stk. 1: for sen ({self.arbejdsdage_varsel} arbejdsdages varsel, skulle være givet senest "
                f"{self.seneste_rettidige}); § 9, stk. 2: ændringen kan udsættes til tidligst "
                f"{self.tidligste_tilladte}")

    def as_dict(self) -> dict[str, Any]:
        out = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in asdict(self).items()}
        out.update(seneste_rettidige=self.seneste_rettidige.isoformat(), arbejdsdage_varsel=self.arbejdsdage_varsel,
                   for_sen=self.for_sen, tidligste_tilladte=self.tidligste_tilladte.isoformat(),
                   vurdering=self.vurdering())
        return out


@dataclass(frozen=True)
class Skridt:
    nr: int
    dato: dt.date
    skridt: str
    tekst: str
    frist: dt.date | None
    paragraf: str


@dataclass(frozen=True)
class Sag:
    """A § 5 datagenopretning case and its steps, in order."""

    sag_id: int
    aftager: str
    aabnet: dt.date
    begrundelse: str
    status: str
    afsluttet: dt.date | None
    skridt: tuple[Skridt, ...]

    def seneste(self, skridt: str) -> Skridt | None:
        found = [s for s in self.skridt if s.skridt == skridt]
        return found[-1] if found else None

    @property
    def handlingsplan_frist(self) -> dt.date | None:
        krav = self.seneste("handlingsplan_krav")
        return krav.frist if krav else None

    def handlingsplan_overskredet(self, today: dt.date) -> bool:
        """§ 5, stk. 2: the plan was required by a frist that has passed and it has not been received."""
        krav = self.seneste("handlingsplan_krav")
        if self.status != "aaben" or krav is None or krav.frist is None or today <= krav.frist:
            return False
        modtaget = self.seneste("handlingsplan_modtaget")
        return modtaget is None or modtaget.nr < krav.nr

    @property
    def paalagt_it_system(self) -> str | None:
        s = self.seneste("it_system")
        return s.tekst if s else None


def _hvem(hvem: str | None) -> str:
    if hvem:
        return hvem
    try:
        return os.environ.get("DSDW_USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "ukendt"


class Register:
    """The register in one SQLite file; ``hvem`` is who the audit log names for changes."""

    def __init__(self, path: Path | str, hvem: str | None = None, readonly: bool = False) -> None:
        self.path = Path(path)
        self.hvem = _hvem(hvem)
        if readonly:  # ingestion, deliveries and reports only read: no lock, no schema script
            self.con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=60, isolation_level=None)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.con.executescript(SCHEMA)

    @classmethod
    def for_root(cls, root: Path | str, hvem: str | None = None) -> Register:
        return cls(register_path(root), hvem)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Register:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _change(self, handling: str, tabel: str, noegle: object, data: dict[str, Any]) -> Iterator[sqlite3.Connection]:
        """One change and its audit row, in one transaction."""
        self.con.execute("BEGIN IMMEDIATE")
        try:
            yield self.con
            self.con.execute(
                "INSERT INTO audit (tid, hvem, handling, tabel, noegle, data) VALUES (?,?,?,?,?,?)",
                (dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), self.hvem, handling, tabel, str(noegle),
                 json.dumps(data, ensure_ascii=False, default=str, sort_keys=True)))
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def audit(self) -> list[dict[str, Any]]:
        cur = self.con.execute("SELECT seq, tid, hvem, handling, tabel, noegle, data FROM audit ORDER BY seq")
        return [{"seq": s, "tid": t, "hvem": h, "handling": a, "tabel": tb, "noegle": k, "data": json.loads(d)}
                for s, t, h, a, tb, k, d in cur]

    # ------------------------------------------------------------ § 6 tilslutningsaftaler
    def add_aftale(self, aftager: str, kanal: str, gyldig_fra: dt.date | str, gyldig_til: dt.date | str | None = None,
                   aftager_type: str | None = None, note: str | None = None) -> int:
        """Record a tilslutningsaftale for one dataansvarlig aftager and channel (§ 6, stk. 1 and 3)."""
        if kanal not in AFTALE_KANALER:
            raise GovernanceError(f"§ 6 kender tilslutningsaftaler for webservice (stk. 1) og portal (stk. 3), "
                                  f"ikke {kanal!r}")
        atype = aftager_type or _guess_type(aftager)
        if atype not in AFTAGER_TYPER:
            raise GovernanceError(f"aftager_type must be one of {AFTAGER_TYPER}")
        fra, til = _d(gyldig_fra), _d(gyldig_til)
        if til is not None and til < fra:
            raise GovernanceError(f"gyldig_til {til} er før gyldig_fra {fra}")
        data = {"aftager": aftager, "aftager_type": atype, "kanal": kanal, "gyldig_fra": fra, "gyldig_til": til,
                "note": note, "paragraf": AFTALE_KANALER[kanal]}
        with self._change("tilslutningsaftale_indgaaet", "tilslutningsaftaler", aftager, data) as con:
            cur = con.execute("INSERT INTO tilslutningsaftaler (aftager, aftager_type, kanal, gyldig_fra, gyldig_til, "
                              "note) VALUES (?,?,?,?,?,?)", (aftager, atype, kanal, fra, til, note))
            return int(cur.lastrowid)

    def end_aftale(self, aftale_id: int, gyldig_til: dt.date | str) -> None:
        """Terminate (opsige) an agreement: it is valid up to and including ``gyldig_til``."""
        a = self._aftale(aftale_id)
        til = _d(gyldig_til)
        if til < a.gyldig_fra.isoformat():
            raise GovernanceError(f"aftale {aftale_id}: gyldig_til {til} er før gyldig_fra {a.gyldig_fra}")
        with self._change("tilslutningsaftale_opsagt", "tilslutningsaftaler", aftale_id,
                          {"gyldig_til": til, "tidligere": _d(a.gyldig_til)}) as con:
            con.execute("UPDATE tilslutningsaftaler SET gyldig_til=? WHERE aftale_id=?", (til, aftale_id))

    def _aftale(self, aftale_id: int) -> Aftale:
        found = [a for a in self.aftaler() if a.aftale_id == aftale_id]
        if not found:
            raise GovernanceError(f"ingen tilslutningsaftale {aftale_id}")
        return found[0]

    def aftaler(self, aftager: str | None = None) -> list[Aftale]:
        q = "SELECT aftale_id, aftager, aftager_type, kanal, gyldig_fra, gyldig_til, note FROM tilslutningsaftaler"
        args: tuple = ()
        if aftager:
            q, args = q + " WHERE aftager=?", (aftager,)
        return [Aftale(i, a, t, k, _date(f), _date(til), n)
                for i, a, t, k, f, til, n in self.con.execute(q + " ORDER BY aftager, kanal, gyldig_fra", args)]

    def gyldig_aftale(self, aftager: str, kanal: str, day: dt.date) -> Aftale | None:
        """The agreement covering ``aftager`` and ``kanal`` on ``day``, if any."""
        return next((a for a in self.aftaler(aftager) if a.kanal == kanal and a.gyldig(day)), None)

    # ------------------------------------------------------------ § 8 lukning af adgang
    def close_access(self, aftager: str, fra: dt.date | str, begrundelse: str) -> int:
        """Close the aftager's access to read, register and receive data via webservices (§ 8)."""
        if not begrundelse.strip():
            raise GovernanceError("§ 8: en lukning skal begrundes (hvilke betingelser for tilslutning er ikke "
                                  "overholdt)")
        if self.lukning(aftager, _date(_d(fra))) is not None:
            raise GovernanceError(f"§ 8: {aftager}s adgang er allerede lukket {fra}")
        data = {"aftager": aftager, "lukket_fra": _d(fra), "begrundelse": begrundelse, "paragraf": "§ 8"}
        with self._change("adgang_lukket", "adgangslukninger", aftager, data) as con:
            cur = con.execute("INSERT INTO adgangslukninger (aftager, lukket_fra, lukket_til, begrundelse) "
                              "VALUES (?,?,NULL,?)", (aftager, _d(fra), begrundelse))
            return int(cur.lastrowid)

    def reopen_access(self, aftager: str, genaabnet: dt.date | str) -> Lukning:
        """Reopen from ``genaabnet`` on: the closure's last day is the day before."""
        day = _date(_d(genaabnet))
        open_ = [lk for lk in self.lukninger(aftager) if lk.lukket_til is None]
        if not open_:
            raise GovernanceError(f"§ 8: {aftager}s adgang er ikke lukket")
        lk = open_[-1]
        if day <= lk.lukket_fra:
            raise GovernanceError(f"genåbning {day} skal være efter lukningen {lk.lukket_fra}")
        til = (day - dt.timedelta(days=1)).isoformat()
        with self._change("adgang_genaabnet", "adgangslukninger", lk.lukning_id,
                          {"aftager": aftager, "genaabnet": day.isoformat(), "lukket_til": til}) as con:
            con.execute("UPDATE adgangslukninger SET lukket_til=? WHERE lukning_id=?", (til, lk.lukning_id))
        return next(x for x in self.lukninger(aftager) if x.lukning_id == lk.lukning_id)

    def lukninger(self, aftager: str | None = None) -> list[Lukning]:
        q = "SELECT lukning_id, aftager, lukket_fra, lukket_til, begrundelse FROM adgangslukninger"
        args: tuple = ()
        if aftager:
            q, args = q + " WHERE aftager=?", (aftager,)
        return [Lukning(i, a, _date(f), _date(t), b)
                for i, a, f, t, b in self.con.execute(q + " ORDER BY aftager, lukket_fra", args)]

    def lukning(self, aftager: str, day: dt.date) -> Lukning | None:
        """The closure in force for ``aftager`` on ``day``, if any."""
        return next((lk for lk in self.lukninger(aftager) if lk.lukket(day)), None)

    # ------------------------------------------------------------ § 9 underretning om systemændringer
    def add_underretning(self, aftager: str, beskrivelse: str, underrettet: dt.date | str,
                         planlagt_idriftsaettelse: dt.date | str) -> Underretning:
        """Record a notice of a change of the reporter's administrative systems (§ 9)."""
        u, g = _d(underrettet), _d(planlagt_idriftsaettelse)
        if g < u:
            raise GovernanceError(f"§ 9: idriftsættelsen {g} ligger før underretningen {u}")
        with self._change("systemaendring_underrettet", "systemaendringer", aftager,
                          {"aftager": aftager, "beskrivelse": beskrivelse, "underrettet": u,
                           "planlagt_idriftsaettelse": g}) as con:
            cur = con.execute("INSERT INTO systemaendringer (aftager, beskrivelse, underrettet, "
                              "planlagt_idriftsaettelse) VALUES (?,?,?,?)", (aftager, beskrivelse, u, g))
            rid = int(cur.lastrowid)
        return next(x for x in self.underretninger(aftager) if x.underretning_id == rid)

    def underretninger(self, aftager: str | None = None) -> list[Underretning]:
        q = "SELECT underretning_id, aftager, beskrivelse, underrettet, planlagt_idriftsaettelse FROM systemaendringer"
        args: tuple = ()
        if aftager:
            q, args = q + " WHERE aftager=?", (aftager,)
        return [Underretning(i, a, b, _date(u), _date(g))
                for i, a, b, u, g in self.con.execute(q + " ORDER BY planlagt_idriftsaettelse, underretning_id", args)]

    # ------------------------------------------------------------ § 5 datagenopretning
    def open_sag(self, aftager: str, aabnet: dt.date | str, begrundelse: str) -> int:
        """Open a datagenopretning case for a kommune or a-kasse that does not keep the reporting rules."""
        if _guess_type(aftager) not in ("kommune", "akasse"):
            raise GovernanceError("§ 5 gælder kommuner og arbejdsløshedskasser")
        if any(s.status == "aaben" for s in self.sager(aftager)):
            raise GovernanceError(f"§ 5: {aftager} har allerede en åben genopretningssag")
        with self._change("genopretningssag_aabnet", "genopretningssager", aftager,
                          {"aftager": aftager, "aabnet": _d(aabnet), "begrundelse": begrundelse}) as con:
            cur = con.execute("INSERT INTO genopretningssager (aftager, aabnet, begrundelse, status) "
                              "VALUES (?,?,?,'aaben')", (aftager, _d(aabnet), begrundelse))
            return int(cur.lastrowid)

    def add_skridt(self, sag_id: int, skridt: str, dato: dt.date | str, tekst: str,
                   frist: dt.date | str | None = None) -> Skridt:
        """One step of a case; the order's preconditions are enforced:

        measures (stk. 2-5) only after a prior dialog (stk. 1); a frist for the action plan (stk. 2);
        a decision on the plan's content and frister only after a høring (stk. 4).
        """
        if skridt not in SAG_SKRIDT:
            raise GovernanceError(f"ukendt skridt {skridt!r}; kendte: {', '.join(SAG_SKRIDT)}")
        sag = self.sag(sag_id)
        if sag.status != "aaben":
            raise GovernanceError(f"sag {sag_id} er afsluttet")
        d = _date(_d(dato))
        if d < sag.aabnet:
            raise GovernanceError(f"skridtets dato {d} er før sagen blev åbnet ({sag.aabnet})")
        earlier = [s for s in sag.skridt if s.dato <= d]
        if skridt not in ("dialog", "afsluttet") and not any(s.skridt == "dialog" for s in earlier):
            raise GovernanceError("§ 5, stk. 1: foranstaltninger til genopretning forudsætter forudgående dialog og "
                                  "samarbejde med kommunen eller a-kassen")
        if skridt == "handlingsplan_krav" and not frist:
            raise GovernanceError("§ 5, stk. 2: kravet om en handlingsplan skal have en fastlagt frist")
        if skridt == "beslutning" and not any(s.skridt == "hoering" for s in earlier):
            raise GovernanceError("§ 5, stk. 4: beslutning om handlingsplanens indhold og frister forudsætter "
                                  "forudgående høring")
        if skridt == "handlingsplan_modtaget" and sag.seneste("handlingsplan_krav") is None:
            raise GovernanceError("§ 5, stk. 2: der er ikke stillet krav om en handlingsplan")
        f = _d(frist)
        nr = (max((s.nr for s in sag.skridt), default=0)) + 1
        par = SAG_SKRIDT[skridt]
        with self._change(f"genopretning_{skridt}", "sag_skridt", f"{sag_id}/{nr}",
                          {"sag_id": sag_id, "dato": d.isoformat(), "skridt": skridt, "tekst": tekst, "frist": f,
                           "paragraf": par}) as con:
            con.execute("INSERT INTO sag_skridt VALUES (?,?,?,?,?,?,?)",
                        (sag_id, nr, d.isoformat(), skridt, tekst, f, par))
            if skridt == "afsluttet":
                con.execute("UPDATE genopretningssager SET status='afsluttet', afsluttet=? WHERE sag_id=?",
                            (d.isoformat(), sag_id))
        return Skridt(nr, d, skridt, tekst, _date(f), par)

    def sag(self, sag_id: int) -> Sag:
        found = [s for s in self.sager() if s.sag_id == sag_id]
        if not found:
            raise GovernanceError(f"ingen genopretningssag {sag_id}")
        return found[0]

    def sager(self, aftager: str | None = None, aabne: bool = False) -> list[Sag]:
        q = "SELECT sag_id, aftager, aabnet, begrundelse, status, afsluttet FROM genopretningssager WHERE 1=1"
        args: list = []
        if aftager:
            q += " AND aftager=?"
            args.append(aftager)
        if aabne:
            q += " AND status='aaben'"
        steps: dict[int, list[Skridt]] = {}
        for sid, nr, d, sk, t, f, p in self.con.execute(
                "SELECT sag_id, nr, dato, skridt, tekst, frist, paragraf FROM sag_skridt ORDER BY sag_id, nr"):
            steps.setdefault(sid, []).append(Skridt(nr, _date(d), sk, t, _date(f), p))
        return [Sag(i, a, _date(ab), b, st, _date(af), tuple(steps.get(i, [])))
                for i, a, ab, b, st, af in self.con.execute(q + " ORDER BY aabnet, sag_id", args)]

    def overskredne_handlingsplaner(self, today: dt.date) -> list[Sag]:
        """Open cases whose action plan is past its § 5, stk. 2 frist (the national overview lists them)."""
        return [s for s in self.sager(aabne=True) if s.handlingsplan_overskredet(today)]

    # ------------------------------------------------------------ §§ 10-11 it-leverandører
    def add_kunde(self, leverandoer: str, aftager: str, applikation: str, fra: dt.date | str,
                  til: dt.date | str | None = None) -> None:
        """Record that an it-leverandør's application has a dataansvarlig customer (§ 10, stk. 2)."""
        data = {"leverandoer": leverandoer, "aftager": aftager, "applikation": applikation, "fra": _d(fra),
                "til": _d(til)}
        with self._change("leverandoer_kunde", "leverandoer_kunder", f"{leverandoer}/{aftager}", data) as con:
            con.execute("INSERT INTO leverandoer_kunder VALUES (?,?,?,?,?)",
                        (leverandoer, aftager, applikation, _d(fra), _d(til)))

    def kunder(self, leverandoer: str, day: dt.date) -> list[str]:
        rows = self.con.execute("SELECT aftager, fra, til FROM leverandoer_kunder WHERE leverandoer=?", (leverandoer,))
        return sorted({a for a, f, t in rows if _date(f) <= day and (t is None or day <= _date(t))})

    def testmiljoe_adgang(self, leverandoer: str, day: dt.date, aftager: str | None = None
                          ) -> tuple[str, list[str]]:
        """Which provision gives the vendor access to test data on ``day``, and for which aftagere.

        § 10, stk. 2: a vendor with dataansvarlige customers gets access through the customers that have a
        § 6, stk. 1 tilslutningsaftale; § 11: a vendor without a customer needs its own agreement.
        Raises :class:`GovernanceError` (with the §) when neither holds.
        """
        kunder = self.kunder(leverandoer, day)
        if kunder:
            med_aftale = [k for k in kunder if self.gyldig_aftale(k, "webservice", day)]
            if aftager is not None:
                if aftager not in kunder:
                    raise GovernanceError(f"§ 10, stk. 2: {aftager} er ikke kunde hos {leverandoer} den {day}")
                if aftager not in med_aftale:
                    raise GovernanceError(f"§ 10, stk. 2: kunden {aftager} har ingen tilslutningsaftale efter § 6, "
                                          f"stk. 1 den {day}; {leverandoer} kan ikke få adgang til testmiljøet")
                return "§ 10, stk. 2", [aftager]
            if med_aftale:
                return "§ 10, stk. 2", med_aftale
            raise GovernanceError(f"§ 10, stk. 2: ingen af {leverandoer}s kunder ({', '.join(kunder)}) har en "
                                  f"tilslutningsaftale efter § 6, stk. 1 den {day}")
        if self.gyldig_aftale(leverandoer, "webservice", day):
            return "§ 11", [aftager] if aftager else []
        raise GovernanceError(f"§§ 10-11: {leverandoer} har hverken en kunde med tilslutningsaftale (§ 10, stk. 2) "
                              f"eller sin egen tilslutningsaftale (§ 11) den {day}; intet testudtræk")


def _guess_type(aftager: str) -> str:
    """Kommunekoder and a-kassekoder are both 3 digits: tell them apart by the code lists."""
    from pipelines.contracts import codelist_codes

    if aftager in set(codelist_codes("kommuner")):
        return "kommune"
    if aftager in set(codelist_codes("akasser")):
        return "akasse"
    return "leverandoer" if not aftager.isdigit() else "myndighed"
