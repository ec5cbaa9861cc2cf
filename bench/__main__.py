"""python -m bench all [--quick] — run the benchmarks and write the results (see bench/README.md)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import postgres
from bench.common import BENCH, ROOT, WORK, machine_facts, versions
from bench.results import merge_section, write
from bench.scenarios import PEER_VENV, SCENARIOS, Bench, Settings, run


def peer_versions() -> dict[str, str]:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        return {}
    code = ("import importlib.metadata as m\n"
            "for d in ('nonebot2', 'nonebot-adapter-onebot', 'fastapi', 'uvicorn', 'aiohttp'):\n"
            "    print(d, m.version(d))")
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("what", choices=("all", *SCENARIOS), help="all, or one scenario")
    parser.add_argument("--quick", action="store_true",
                        help="about one minute: 3 s points, 5,000 items, one year of roster, no profiles, "
                             "no peer install (results go to bench/work/ unless --output)")
    parser.add_argument("--duration", type=float, help="seconds per measured point (default 30)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before each point (default 5)")
    parser.add_argument("--connections", type=int, help="wrk connections (default 16)")
    parser.add_argument("--items", type=int, help="items in the read store (default 100,000)")
    parser.add_argument("--databases", help="comma-separated: sqlite,postgresql (default both)")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy runs")
    parser.add_argument("--no-install", action="store_true",
                        help="install nothing (wrk, py-spy, the peer venv): skip what is missing")
    parser.add_argument("--output", help="folder for RESULTS.md and results.json")
    parser.add_argument("--merge", action="store_true",
                        help="intake and records only: also put this run into bench/RESULTS.md and results.json as "
                             "its section, keeping the other sections as they are")
    args = parser.parse_args(argv)
    if args.merge and args.what not in ("intake", "records"):
        parser.error("--merge is for `intake` and `records` (the other scenarios are part of the full run)")
    settings = Settings.make(
        quick=args.quick, duration=args.duration, warmup=args.warmup, connections=args.connections, items=args.items,
        databases=tuple(args.databases.split(",")) if args.databases else None,
    )
    if args.no_profile:
        settings.profile = False
    if args.no_install:
        settings.install = False
    if args.output:
        out = Path(args.output)
    elif args.quick or args.what != "all":
        out = WORK / ("quick" if args.quick else args.what)
    else:
        out = BENCH
    names = SCENARIOS if args.what == "all" else (args.what,)
    bench = Bench(settings)
    started = time.monotonic()
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"{command}: {', '.join(names)} → {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}", flush=True)
    run(bench, names)
    found = versions()
    found["PostgreSQL server"] = postgres.server_version() if "postgresql" in settings.databases else "not used"
    found.update(peer_versions())
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command.strip(),
        "settings": {k: v for k, v in vars(settings).items()},
        "machine": machine_facts(),
        "versions": found,
        "points": bench.points,
        "skipped": bench.skipped,
        "profiles": bench.profiles,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    write(report, out / "RESULTS.md", out / "results.json")
    if args.merge:
        merge_section(args.what, report, BENCH / "RESULTS.md", BENCH / "results.json")
        print(f"merged into {BENCH / 'RESULTS.md'} (section {args.what})", flush=True)
    print(f"done in {report['elapsed_s']:.0f} s: {out / 'RESULTS.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
