"""Scales and the calibration of the synthetic Denmark.

Numbers are per 1M persons at ``national`` scale and shrink linearly for the
smaller scales.  The stocks follow the orders of magnitude the issue names
(~100k dagpenge, ~100k kontant-/uddannelseshjælp, ~80k sygedagpenge at any time);
durations are mean spell lengths in days, so the daily flow is stock/duration.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    persons: int
    defect_rate: float = 0.005


SCALES: dict[str, Scale] = {
    "tiny": Scale("tiny", 3_000),
    "demo": Scale("demo", 20_000, 0.001),  # background noise low, so the problem reporters stand out
    "national": Scale("national", 1_000_000, 0.001),
}


@dataclass(frozen=True)
class KgProfile:
    """Calibration of one kontaktgruppe: stock per 1M persons, mean spell days, ages."""

    kg: int
    stock_per_million: int
    mean_days: int
    min_age: int
    max_age: int
    akasse_share: float  # share of the group that is an a-kasse member


KG_PROFILES: dict[int, KgProfile] = {
    p.kg: p
    for p in [
        KgProfile(1, 100_000, 120, 20, 66, 1.0),
        KgProfile(2, 55_000, 500, 30, 64, 0.10),
        KgProfile(3, 12_000, 400, 18, 64, 0.05),
        KgProfile(4, 3_000, 365, 16, 64, 0.30),  # revalidering from 16 (§ 41, stk. 2: under 18)
        KgProfile(5, 1_000, 120, 16, 64, 0.30),
        KgProfile(7, 15_000, 300, 25, 66, 0.40),
        KgProfile(8, 20_000, 90, 16, 66, 0.40),
        KgProfile(10, 60_000, 1500, 25, 66, 0.60),
        KgProfile(11, 15_000, 700, 25, 64, 0.20),
        KgProfile(12, 40_000, 300, 18, 29, 0.05),
        KgProfile(13, 10_000, 200, 25, 64, 0.40),
        KgProfile(14, 4_000, 900, 30, 64, 0.05),
        KgProfile(15, 500, 300, 20, 40, 0.20),
        KgProfile(16, 2_000, 200, 15, 17, 0.0),
        KgProfile(17, 3_000, 120, 18, 64, 0.10),
        KgProfile(18, 1_500, 200, 18, 50, 0.0),
        KgProfile(19, 1_000, 200, 18, 50, 0.0),
        KgProfile(20, 5_000, 300, 20, 64, 0.60),
        KgProfile(21, 5_000, 600, 25, 55, 0.60),
        KgProfile(22, 1_000, 180, 20, 60, 0.60),
        KgProfile(23, 5_000, 700, 60, 66, 0.70),
        KgProfile(24, 60_000, 60, 18, 66, 0.70),
        KgProfile(25, 20_000, 70, 20, 66, 0.80),
    ]
}

# Where a spell goes when it ends (the rest leave the system: job, education, pension).
KG_TRANSITIONS: dict[int, dict[int, float]] = {
    1: {25: 0.08, 2: 0.03, 8: 0.03},
    2: {11: 0.05, 24: 0.02},
    3: {2: 0.10},
    4: {7: 0.2},
    5: {4: 0.5},
    7: {10: 0.55, 14: 0.05},
    8: {1: 0.20},
    11: {7: 0.20, 14: 0.10, 13: 0.05},
    12: {2: 0.08},
    13: {11: 0.30, 7: 0.10},
    24: {1: 0.04, 13: 0.05, 8: 0.05},
    25: {1: 0.40, 13: 0.05},
}

# Visitationsgrupper (codes as in data/reference/visitationsgrupper.csv):
# 1 jobparat, 2 aktivitetsparat, 3 åbenlyst uddannelsesparat, 4 uddannelsesparat.
VISITATION: dict[int, dict[int, float]] = {
    2: {1: 0.40, 2: 0.60},
    3: {1: 0.50, 2: 0.50},
    12: {3: 0.20, 4: 0.40, 2: 0.40},
}
MATCH: dict[int, dict[int, float]] = {4: {1: 0.5, 2: 0.5}, 5: {1: 0.5, 2: 0.5}, 7: {1: 0.3, 2: 0.4, 3: 0.3}}
SDP_KATEGORI: dict[int, float] = {1: 0.60, 2: 0.30, 3: 0.10}

# person groups (codes as in data/reference/persongrupper.csv)
PERSON_GROUP_SHARE: dict[int, dict[str, float]] = {
    1: {"may": 0.05},
    2: {"uo": 0.02, "ky": 0.02},
    8: {"dimittend": 0.30},
}

# Share of persons whose opholdskommune differs from the bopælskommune (§ 16, stk. 5).
OPHOLD_DIFFERS = 0.01
# Daily probability that a person moves to another kommune (~7 % a year).
MOVE_RATE = 0.0002
