"""Turn a run's points into bench/RESULTS.md (tables) and bench/results.json (everything)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

INGEST_SHARE = 0.10
INGEST_P99_MS = 50.0
PEER_FACTOR = 3.0
READ_SHARE = 0.30
RSS_LIMIT_MB = 150.0

# The intake scenario's points: their own table and baseline (bench/intake.py), not the Figures table.
INTAKE_POINTS = ("intake_ceiling", "intake_single", "intake_batch")
MERGED_POINTS = {"intake": INTAKE_POINTS, "records": ("records",)}  # what `--merge` of a scenario replaces

LABELS = {
    "ceiling": "ceiling: bare aiohttp handler, same JSON",
    "ingest": "report ingestion (上报 + URL)",
    "query": "read: 查询 #N",
    "duty": "read: 值班",
    "peer": "peer: nonebot2 + OneBot v11",
    "peer_paced": "peer fed dutybot's SQLite rate",
}


def _find(points: Sequence[Mapping[str, Any]], scenario: str, database: str | None = None) -> Mapping[str, Any] | None:
    for point in points:
        if point.get("scenario") == scenario and (database is None or point.get("database") == database):
            return point
    return None


def with_ratios(points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every load point with its ratio to the ceiling's requests/s (None without a ceiling)."""
    ceiling = _find(points, "ceiling")
    base = float(ceiling["requests_per_s"]) if ceiling else 0.0
    result = []
    for point in points:
        entry = dict(point)
        if "requests_per_s" in point and point["scenario"] not in ("peer_paced", *INTAKE_POINTS):
            rate = float(point.get("handled_per_s", point["requests_per_s"]))
            entry["ratio_to_ceiling"] = round(rate / base, 4) if base else None
        result.append(entry)
    return result


def targets(points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each with the achieved figure beside it (None: not measured)."""
    rows: list[dict[str, Any]] = []
    ceiling = _find(points, "ceiling")
    base = float(ceiling["requests_per_s"]) if ceiling else None
    ingest = _find(points, "ingest", "sqlite")
    if ingest is not None and base:
        share = ingest["requests_per_s"] / base
        rows.append({
            "target": "ingestion on SQLite, 16 connections",
            "required": f"≥ {INGEST_SHARE:.0%} of the ceiling and p99 < {INGEST_P99_MS:g} ms",
            "achieved": f"{share:.1%} of the ceiling ({ingest['requests_per_s']:.0f} of {base:.0f} req/s), "
                        f"p99 {ingest['p99_ms']:.0f} ms",
            "met": share >= INGEST_SHARE and ingest["p99_ms"] < INGEST_P99_MS,
        })
    else:
        rows.append({"target": "ingestion on SQLite, 16 connections", "required": "≥ 10 % of the ceiling, p99 < 50 ms",
                     "achieved": "not measured", "met": None})
    peer = _find(points, "peer")
    for database in ("sqlite", "postgresql"):
        point = _find(points, "ingest", database)
        if point is None:
            continue
        label = f"ingestion on {'SQLite' if database == 'sqlite' else 'PostgreSQL'} vs the nonebot2 peer"
        if peer is None or not peer.get("handled_per_s"):
            rows.append({"target": label, "required": f"≥ {PEER_FACTOR:g}× the peer's rate",
                         "achieved": "peer not measured", "met": None})
            continue
        factor = point["requests_per_s"] / peer["handled_per_s"]
        rows.append({
            "target": label, "required": f"≥ {PEER_FACTOR:g}× the peer's rate",
            "achieved": f"{factor:.2f}× ({point['requests_per_s']:.0f} vs {peer['handled_per_s']:.0f} messages/s)",
            "met": factor >= PEER_FACTOR,
        })
    for scenario in ("query", "duty"):
        for database in ("sqlite", "postgresql"):
            point = _find(points, scenario, database)
            if point is None or not base:
                continue
            share = point["requests_per_s"] / base
            rows.append({
                "target": f"{LABELS[scenario]} on {'SQLite' if database == 'sqlite' else 'PostgreSQL'}",
                "required": f"≥ {READ_SHARE:.0%} of the ceiling",
                "achieved": f"{share:.1%} ({point['requests_per_s']:.0f} req/s, p99 {point['p99_ms']:.0f} ms)",
                "met": share >= READ_SHARE,
            })
    for point in points:
        if point.get("scenario") == "lateness" and point.get("p99_s") is not None:
            rows.append({
                "target": f"reminder lateness (bench/lateness.py), {_db(point['database'])}",
                "required": f"p99 < {point.get('target_p99_s', 1.0):g} s, every reminder delivered",
                "achieved": f"p99 {point['p99_s']:g} s, {point['delivered']:,} of {point['due']:,} delivered",
                "met": point["p99_s"] < point.get("target_p99_s", 1.0) and point["delivered"] == point["due"],
            })
    for database in ("sqlite", "postgresql"):
        point = _find(points, "memory", database)
        if point is None:
            continue
        rows.append({
            "target": f"RSS at {point['items']:,} items, {'SQLite' if database == 'sqlite' else 'PostgreSQL'}",
            "required": f"< {RSS_LIMIT_MB:g} MB",
            "achieved": f"{point['rss_mb']:.0f} MiB",
            "met": point["rss_mb"] < RSS_LIMIT_MB,
        })
    return rows


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _met(value: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "–"}[value]


def _db(value: str | None) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL", None: "–"}.get(value, str(value))


def markdown(report: Mapping[str, Any]) -> str:
    points = with_ratios(report["points"])
    settings = report["settings"]
    machine = report["machine"]
    lines = [
        "# dutybot benchmark results",
        "",
        f"Generated by `{report['command']}` on {report['date']} "
        f"({'quick smoke run' if settings['quick'] else 'full run'}). "
        "How to read and rerun: [README.md](README.md).",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"Linux {machine['kernel']}; {machine['pinning']}.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".",
        f"- Load: wrk, {settings['connections']} connections, {settings['threads']} thread(s), "
        f"{settings['duration']:g} s per point after a {settings['warmup']:g} s warm-up; every server at log level "
        "WARNING in the same Python.",
        "",
        "## Figures",
        "",
        "| Scenario | Database | req/s | p50 ms | p99 ms | × ceiling | server CPU ms/msg | Requests | Errors | Notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for point in points:
        if "requests_per_s" not in point or point["scenario"] in INTAKE_POINTS:
            continue
        errors = point.get("non_2xx", 0) + sum(point.get("socket_errors", {}).values())
        notes = ""
        if point["scenario"] == "peer":
            notes = (f"answers 204 before handling ({point['requests_per_s']:,.0f} req/s accepted; p50/p99 are "
                     f"of the 204s); rate = replies posted / time to post them: {point['replies_total']:,} in "
                     f"{point['handled_span_s']:,.1f} s ({point['replies_in_window']:,} during the run)")
        elif point["scenario"] == "peer_paced":
            notes = (f"offered {point['offered_per_s']:,.1f}/s (paced to dutybot's {point['paced_by']:,.1f}/s); "
                     f"replies {point['replies_in_window_per_s']:,.1f}/s during the run, {point['replies_total']:,} "
                     f"in all, the last {point['last_reply_after_run_s']:,.1f} s after the run ended")
        elif point["scenario"] == "ingest":
            check = point.get("check", {})
            notes = (f"{check.get('items', 0):,} items for {check.get('messages_recorded', 0):,} messages, exactly "
                     f"one each: {'yes' if check.get('every_message_one_item') else 'NO'}; replies delivered "
                     f"{point.get('replies_delivered_per_s', 0):,.1f}/s in the window")
        elif point["scenario"] == "query":
            notes = f"random #N over {point.get('items', 0):,} items"
        elif point["scenario"] == "duty":
            notes = f"{point.get('roster_shift_rows', 0):,} roster shift rows"
        other = point.get("other_cpu_share")
        if other is not None and other >= 0.10:
            notes = f"**disturbed: other processes used {other:.0%} of a core during the run**; " + notes
        rate = point.get("handled_per_s", point["requests_per_s"])
        ratio = point.get("ratio_to_ceiling")
        lines.append(
            f"| {LABELS.get(point['scenario'], point['scenario'])} | {_db(point.get('database'))} | {_fmt(rate)} | "
            f"{_fmt(point['p50_ms'], 2)} | {_fmt(point['p99_ms'], 2)} | "
            f"{'1.000' if point['scenario'] == 'ceiling' else (f'{ratio:.3f}' if ratio is not None else '–')} | "
            f"{_fmt(point.get('server_cpu_ms_per_request'), 2)} | {_fmt(point['requests'])} | {_fmt(errors)} | "
            f"{notes} |")
    lines += ["", "## Targets", "", "| Target | Required | Achieved | |", "|---|---|---|---|"]
    for row in report["targets"]:
        lines.append(f"| {row['target']} | {row['required']} | {row['achieved']} | {_met(row['met'])} |")
    memory = [p for p in points if p["scenario"] in ("memory", "ingest")]
    if memory:
        lines += ["", "## Memory (RSS of `dutybot serve`)", "", "| When | Database | RSS MiB |", "|---|---|---:|"]
        for point in memory:
            if point["scenario"] == "ingest":
                lines.append(f"| idle, just started on an empty database | {_db(point['database'])} | "
                             f"{_fmt(point.get('rss_idle_mb'))} |")
                lines.append(f"| after the ingestion run ({point.get('check', {}).get('items', 0):,} items taken in) | "
                             f"{_db(point['database'])} | {_fmt(point.get('rss_after_mb'))} |")
            else:
                lines.append(f"| {point['note']} | {_db(point['database'])} | {_fmt(point['rss_mb'])} |")
    checks = [p for p in points if p["scenario"] == "ingest" and "check" in p]
    if checks:
        lines += ["", "## Ingestion row counts (after the measured run)", "",
                  "| Database | 200 answers | messages recorded | items | one item per message | audit `reported` "
                  "| lead-unit rows | replies queued (with grade question) | duplicate numbers | in flight at stop |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for point in checks:
            c = point["check"]
            lines.append(
                f"| {_db(point['database'])} | {_fmt(c['responses_200'])} | {_fmt(c['messages_recorded'])} | "
                f"{_fmt(c['items'])} | {_fmt(c['items_per_message_exactly_one'])} | "
                f"{_fmt(c['reported_audit_entries'])} | {_fmt(c['lead_unit_rows'])} | "
                f"{_fmt(c['replies_queued'])} ({_fmt(c['replies_with_grade_question'])}) | "
                f"{_fmt(c['duplicate_item_numbers'])} | {_fmt(c['in_flight_at_stop'])} |")
    lateness = [p for p in points if p["scenario"] == "lateness"]
    roster = [p for p in points if p["scenario"] == "roster_lookup"]
    if lateness or roster:
        lines += ["", "## The other benchmarks in bench/ (other engineers' files, run as they are)"]
    if lateness:
        lines += ["", "Reminder lateness (`bench/lateness.py`: the real deadline sweep and outbox on the wall clock; "
                  "lateness = sent − due):", "",
                  "| Database | items | due in the window | window s | delivered | p50 s | p99 s | max s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {_db(p['database'])} | {_fmt(p.get('items'))} | {_fmt(p.get('due'))} | "
                  f"{_fmt(p.get('window_s'))} | {_fmt(p.get('delivered'))} | {_fmt(p.get('p50_s'), 3)} | "
                  f"{_fmt(p.get('p99_s'), 3)} | {_fmt(p.get('max_s'), 3)} |" for p in lateness]
    for p in roster:
        lines += ["", f"Roster lookup (`bench/roster_lookup.py`), {_db(p['database'])}:", "", "```",
                  p["output"], "```"]
    counted = [p for p in points if p["scenario"] == "statements"]
    if counted:
        lines += ["", "## SQL per command (`bench/statements.py`: counts, so they do not move with the machine's load)",
                  "", "Per command through the real path of a platform message: the handler's transaction (which "
                  "also claims the reply), then the outbox's post of the reply and its record.", "",
                  "| Database | Command | handler statements | handler transactions | outbox statements | "
                  "outbox transactions |", "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {_db(p['database'])} | {name} | {_fmt(f['handler_statements'])} | "
                  f"{_fmt(f['handler_transactions'])} | {_fmt(f['outbox_statements'])} | "
                  f"{_fmt(f['outbox_transactions'])} |"
                  for p in counted for name, f in p["per_command"].items()]
    posted = [p for p in points if p["scenario"] == "reply_post"]
    ceiling_cpu = next((p.get("server_cpu_ms_per_request") for p in points if p["scenario"] == "ceiling"), None)
    for p in posted:
        versus = (f" — {p['cpu_us_per_post'] / (ceiling_cpu * 1000):.1f}× the ceiling's whole request"
                  if ceiling_cpu else "")
        lines += ["", "## The reply's own HTTP exchange (`bench/reply_post.py`)", "",
                  f"One reply POST through aiohttp's client (shared session, keep-alive, {p['in_flight']} in flight, "
                  f"to the fake platform on the other core): **{_fmt(p['cpu_us_per_post'])} µs of CPU per post**"
                  f"{versus}; {_fmt(p['posts'])} posts, {_fmt(p['failures'])} failed. Every chat command pays it "
                  "on top of its request; the ceiling does not."]
    lines += intake_section(report)
    lines += records_section(report)
    lines += against_section(report)
    profiles = [p for p in report.get("profiles", []) if not p["name"].startswith("intake-")]
    if profiles:
        lines += ["", "## Profiles (py-spy, separate unmeasured runs)", ""]
        lines += profile_links(profiles)
    if report.get("skipped"):
        lines += ["", "## Skipped", ""]
        lines += [f"- {s['scenario']}: {s['reason']}" for s in report["skipped"]]
    return "\n".join(lines) + "\n"


def profile_links(profiles: Sequence[Mapping[str, str]]) -> list[str]:
    return [f"- {p['name']}: [{Path(p['summary']).name}]({Path(p['summary']).relative_to('bench')}), raw stacks "
            f"[{Path(p['raw']).name}]({Path(p['raw']).relative_to('bench')})" for p in profiles]


def intake_section(report: Mapping[str, Any]) -> list[str]:
    """The intake section: from this report's own points (a full run), else from the intake run
    merged into it (`python -m bench intake --merge`)."""
    from bench import intake  # it renders with this module's helpers

    if any(p.get("scenario") in INTAKE_POINTS for p in report["points"]):
        return intake.section(report)
    merged = report.get("sections", {}).get("intake")
    return intake.section(merged, merged=True) if merged else []


def records_section(report: Mapping[str, Any]) -> list[str]:
    """The 定期通报 section (bench/records.py): from this report's points, else from a merged run."""
    from bench import records  # it renders its own section

    if any(p.get("scenario") == records.SCENARIO for p in report["points"]):
        return records.section(report)
    merged = report.get("sections", {}).get("records")
    return records.section(merged) if merged else []


def against_section(report: Mapping[str, Any]) -> list[str]:
    """Chat CPU per message against an earlier commit (bench/against.py), merged into the results."""
    from bench import against  # it renders its own section

    merged = report.get("sections", {}).get(against.SECTION)
    return against.section(merged) if merged else []


def merge_section(name: str, section: dict[str, Any], markdown_path: Path, json_path: Path) -> None:
    """Put one scenario's run into the committed results as its own section, keeping the rest
    of results.json as it is, and regenerate RESULTS.md from it."""
    report = json.loads(json_path.read_text(encoding="utf-8"))
    # The full run's own points of this scenario (and its skips) give way to the merged run: the
    # section is drawn from the report's points when it has any, so old ones would hide the new.
    replaced = MERGED_POINTS.get(name, ())
    report["points"] = [p for p in report["points"] if p.get("scenario") not in replaced]
    report["skipped"] = [s for s in report.get("skipped", []) if s["scenario"].split(" ")[0] != name]
    report.setdefault("sections", {})[name] = section
    write(report, markdown_path, json_path)


def write(report: dict[str, Any], markdown_path: Path, json_path: Path) -> None:
    report = dict(report)
    report["points"] = with_ratios(report["points"])
    report["targets"] = targets(report["points"])
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(markdown(report), encoding="utf-8")
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
