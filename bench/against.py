"""CPU per chat message against an earlier commit, in the same run (issue #15, point 5: "the report
and read scenarios show no more CPU per message than before").

Absolute figures do not carry across sessions: this VM's speed changes from one start to the next
(the bare aiohttp ceiling measured 9,900, 14,700 and 20,200 req/s on three days). So the earlier
commit is checked out beside this tree (a git worktree under bench/work/) and both trees run their
own `python -m bench ingest` and `python -m bench read`, alternating A B B A … so that a drift of the
machine during the run falls on both sides alike. The figure compared is the server's own CPU time
per answered message (steadier than req/s on a shared VM); the ratio is this tree's over the
earlier one's, per scenario and database, the median of the rounds.

Rerun (about 4 minutes per tree and round with the defaults):
    .venv/bin/python -m bench.against 5990204                    # the commit before issue #15
    .venv/bin/python -m bench.against 5990204 --merge            # and put it into bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import BENCH, PYTHON, ROOT, WORK, machine_facts
from bench.results import merge_section

SECTION = "against"
SCENARIOS = ("ingest", "query", "duty")  # the points of `bench ingest` and `bench read`
LABELS = {"ingest": "report ingestion (上报 + URL)", "query": "read: 查询 #N", "duty": "read: 值班"}
# A paired ratio above this is "more CPU". The same tree measured twice in one run differs by up
# to ~5.5 % on this VM (the rounds of 2026-12-04: 值班 on PostgreSQL, 5.42 and 5.72 ms), so smaller
# differences are not findings.
TOLERANCE = 1.05


def git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def worktree(rev: str) -> tuple[Path, str]:
    """The earlier commit, checked out under bench/work/ (reused when it is already there)."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    path = WORK / f"against-{commit[:10]}"
    if not (path / ".git").exists():
        WORK.mkdir(parents=True, exist_ok=True)
        git("worktree", "add", "--detach", "--force", str(path), commit)
    return path, commit


def run_tree(tree: Path, out: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One tree's ingest and read runs, with that tree's own bench and code (the editable install's
    finder comes after the working directory on sys.path, so `bot` is the tree's own)."""
    points: list[dict[str, Any]] = []
    for what in ("ingest", "read"):
        folder = out / what
        command = [PYTHON, "-m", "bench", what, "--no-profile", "--no-install", "--duration", f"{args.duration:g}",
                   "--databases", args.databases, "--output", str(folder)]
        if what == "read":
            command += ["--items", str(args.items)]
        print(f"  {tree.name}: {' '.join(command[1:])}", flush=True)
        subprocess.run(command, cwd=tree, check=True)
        report = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        points += [p for p in report["points"] if p.get("scenario") in SCENARIOS]
    return points


def figure(points: Sequence[Mapping[str, Any]], scenario: str, database: str) -> Mapping[str, Any] | None:
    return next((p for p in points if p["scenario"] == scenario and p["database"] == database), None)


Points = Sequence[Mapping[str, Any]]


def compare(rounds: Sequence[Mapping[str, Points]], databases: Sequence[str]) -> list[dict[str, Any]]:
    """Per scenario and database: each round's CPU per message on both sides, their paired ratio,
    and the median ratio."""
    rows = []
    for database in databases:
        for scenario in SCENARIOS:
            pairs = []
            for found in rounds:
                before, now = figure(found["before"], scenario, database), figure(found["now"], scenario, database)
                if before and now and before.get("server_cpu_ms_per_request") and now.get("server_cpu_ms_per_request"):
                    pairs.append((before, now))
            if not pairs:
                continue
            ratios = [n["server_cpu_ms_per_request"] / b["server_cpu_ms_per_request"] for b, n in pairs]
            median = statistics.median(ratios)
            rows.append({
                "scenario": scenario, "database": database,
                "before_cpu_ms": [b["server_cpu_ms_per_request"] for b, _ in pairs],
                "now_cpu_ms": [n["server_cpu_ms_per_request"] for _, n in pairs],
                "before_rps": [b["requests_per_s"] for b, _ in pairs],
                "now_rps": [n["requests_per_s"] for _, n in pairs],
                "other_cpu_share": max(p.get("other_cpu_share") or 0.0 for pair in pairs for p in pair),
                "ratios": [round(r, 3) for r in ratios], "ratio": round(median, 3), "met": median <= TOLERANCE,
            })
    return rows


def section(report: Mapping[str, Any]) -> list[str]:
    """The results' section (bench/RESULTS.md)."""
    rows = report.get("rows") or []
    if not rows:
        return []
    lines = ["", "## Chat CPU per message against the commit before issue #15 (`bench/against.py`)", "",
             f"Generated by `{report['command']}` on {report['date']}: `{report['before']}` (before) and "
             f"`{report['now']}` (now), each running its own `bench ingest` and `bench read` "
             f"({report['duration']:g} s points, {report['items']:,} items in the read store), alternating "
             f"{report['rounds']} rounds. Server CPU ms per answered message; ratio = now ÷ before, the median of "
             f"the rounds; met when ≤ {TOLERANCE:g} (two runs of one tree differed by up to 5.5 %).", "",
             "| Scenario | Database | before ms/msg | now ms/msg | before req/s | now req/s | ratio per round | "
             "ratio | no more CPU |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]

    def joined(values: Sequence[float]) -> str:
        return " / ".join(f"{v:.2f}" for v in values)

    for row in rows:
        lines.append(f"| {LABELS[row['scenario']]} | {row['database']} | {joined(row['before_cpu_ms'])} | "
                     f"{joined(row['now_cpu_ms'])} | {joined(row['before_rps'])} | {joined(row['now_rps'])} | "
                     f"{joined(row['ratios'])} | {row['ratio']:.3f} | {'yes' if row['met'] else '**no**'} |")
    return lines


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.against", description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the earlier commit (e.g. 5990204, the last one before issue #15)")
    parser.add_argument("--rounds", type=int, default=2, help="A B pairs, alternating order (default 2)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measured point (default 15)")
    parser.add_argument("--items", type=int, default=20_000, help="items in the read store (default 20,000)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--merge", action="store_true", help="put the result into bench/RESULTS.md as its section")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    old, commit = worktree(args.rev)
    now = git("rev-parse", "HEAD")
    # Only the code the servers run counts: changes to bench/, tests/ or docs do not change the figure.
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "bot", "domain", "handlers", "store"))
    out = WORK / "against"
    rounds = []
    for number in range(args.rounds):
        order = [("before", old), ("now", ROOT)]
        if number % 2:
            order.reverse()  # A B, then B A: a drift of the VM falls on both sides alike
        found: dict[str, list[dict[str, Any]]] = {}
        for side, tree in order:
            print(f"round {number + 1}/{args.rounds}, {side}", flush=True)
            found[side] = run_tree(tree, out / f"{number}-{side}", args)
        rounds.append(found)
    databases = args.databases.split(",")
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.against " + " ".join(argv if argv is not None else sys.argv[1:]),
        "before": commit[:10], "now": now[:10] + (" + uncommitted changes" if dirty else ""),
        "rounds": args.rounds, "duration": args.duration, "items": args.items, "machine": machine_facts(),
        "rows": compare(rounds, databases),
    }
    (out / "against.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print("\n".join(section(report)), flush=True)
    if args.merge:
        merge_section(SECTION, report, BENCH / "RESULTS.md", BENCH / "results.json")
        print(f"merged into {BENCH / 'RESULTS.md'} (section {SECTION})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
