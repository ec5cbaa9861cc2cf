"""bench/against.py's arithmetic: paired ratios per round, their median, the verdict and the
section it writes (the runs themselves are the bench's, not a test's)."""

from __future__ import annotations

from typing import Any

from bench import against


def _point(scenario: str, database: str, cpu: float, rps: float = 200.0) -> dict[str, Any]:
    return {"scenario": scenario, "database": database, "server_cpu_ms_per_request": cpu, "requests_per_s": rps,
            "other_cpu_share": 0.02}


def test_ratios_are_paired_per_round_and_the_median_decides() -> None:
    rounds = [
        {"before": [_point("ingest", "sqlite", 4.0), _point("query", "sqlite", 4.0)],
         "now": [_point("ingest", "sqlite", 4.4), _point("query", "sqlite", 3.6)]},
        {"before": [_point("ingest", "sqlite", 5.0), _point("query", "sqlite", 4.0)],
         "now": [_point("ingest", "sqlite", 5.0), _point("query", "sqlite", 4.0)]},
        {"before": [_point("ingest", "sqlite", 4.0), _point("query", "sqlite", 4.0)],
         "now": [_point("ingest", "sqlite", 4.8), _point("query", "sqlite", 4.0)]},
    ]
    rows = {row["scenario"]: row for row in against.compare(rounds, ["sqlite", "postgresql"])}
    assert set(rows) == {"ingest", "query"}  # no duty points, no PostgreSQL points: no rows
    assert rows["ingest"]["ratios"] == [1.1, 1.0, 1.2] and rows["ingest"]["ratio"] == 1.1
    assert rows["ingest"]["met"] is False  # 10 % more CPU per message is a finding
    assert rows["query"]["ratios"] == [0.9, 1.0, 1.0] and rows["query"]["met"] is True


def test_the_section_names_both_commits_and_each_round() -> None:
    rows = against.compare([{"before": [_point("duty", "postgresql", 5.0, 180.0)],
                             "now": [_point("duty", "postgresql", 5.1, 178.0)]}], ["postgresql"])
    text = "\n".join(against.section({"rows": rows, "command": "python -m bench.against abc", "date": "2026-12-04",
                                      "before": "abc", "now": "def", "duration": 15.0, "items": 20_000, "rounds": 1}))
    assert "`abc` (before) and `def` (now)" in text
    assert "| read: 值班 | postgresql | 5.00 | 5.10 | 180.00 | 178.00 | 1.02 | 1.020 | yes |" in text
    assert against.section({"rows": []}) == []
