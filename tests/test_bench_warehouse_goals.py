"""bench/bench_warehouse.py's verdict on issue #14's performance rule: (a) 5y/1y, (b) dbt's overhead share of a
night (the base's ordinary day 2 included), (c) the standard queries' p95 -- references do not count."""

from __future__ import annotations

from bench.bench_warehouse import _goals


def _night(wall: float, overhead: float) -> dict:
    return {"seconds": wall, "load_average": {"before": [3.0, 0, 0], "after": [4.0, 0, 0]},
            "dbt": {"overhead_share_of_night": overhead / wall, "overhead_seconds": overhead,
                    "overhead_cpu_seconds": overhead / 2, "night_seconds_with_import": wall,
                    "overhead_cpu_share_of_night": overhead / wall}}


def test_goals_judge_each_rule_from_the_measured_nights_and_queries() -> None:
    queries = {"queries": {"standard": {"description": "monthly ...", "p95_ms": 120.0},
                           "ref": {"description": "reference, not the standard path", "p95_ms": 4000.0}}}
    result = {"base": {"loads": [_night(1000, 300), _night(50, 4)]},  # day 1 (a full build) is not a night
              "summary": {"ratio_nightly_total": 1.1, "ratio_nightly_without_publication_hook": 1.15,
                          "meets_goal": True},
              "history": {"365d": {"nightly": [_night(40, 3), _night(60, 5)]},
                          "1825d": {"nightly": [_night(44, 3), _night(66, 5)], "queries": queries}}}
    _goals(result)
    g = result["goals"]
    assert g["a_nightly_5y_over_1y"]["met"] is True
    assert g["a_nightly_5y_over_1y"]["value"] == 1.15 and g["a_nightly_5y_over_1y"]["with_publication_hook"] == 1.1
    b = g["b_dbt_overhead_share"]
    assert b["per_night"] == {"base": [0.08], "365d": [0.075, round(5 / 60, 4)],
                              "1825d": [round(3 / 44, 4), round(5 / 66, 4)]}
    assert b["worst_night"] == round(5 / 60, 4) and b["met"] is True
    assert b["all_nights"] == round(20 / 260, 4)
    c = g["c_standard_queries_p95_ms"]
    assert c == {"goal": "<= 300.0", "history": "1825d", "p95_ms": {"standard": 120.0}, "worst": 120.0, "met": True}
    assert g["load_average_range"] == [3.0, 4.0]
    result["base"]["loads"][1] = _night(50, 6)  # one night over 10 % fails (b)
    _goals(result)
    assert result["goals"]["b_dbt_overhead_share"]["met"] is False
