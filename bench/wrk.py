"""wrk: find or install it, run it, and read its own output.

wrk is Debian's package `wrk`. When it is missing and this process may install packages (root,
apt-get present), `ensure_wrk(install=True)` runs `apt-get update` and `apt-get install -y wrk`;
otherwise it says how, and the load scenarios are skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

INSTALL_HINT = "install it with: sudo apt-get update && sudo apt-get install -y wrk  (Debian/Ubuntu package `wrk`)"


class WrkMissing(RuntimeError):
    pass


def wrk_path() -> str | None:
    return shutil.which("wrk")


def ensure_wrk(*, install: bool = True) -> str:
    found = wrk_path()
    if found:
        return found
    if not install:
        raise WrkMissing(f"wrk is not installed; {INSTALL_HINT}")
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise WrkMissing(f"wrk is not installed and this user cannot install it; {INSTALL_HINT}")
    print("wrk is missing: installing Debian's package `wrk` (apt-get update && apt-get install -y wrk)…", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise WrkMissing(f"`{' '.join(command)}` failed: {done.stderr.strip()[-400:]}; {INSTALL_HINT}")
    found = wrk_path()
    if not found:
        raise WrkMissing(f"apt-get installed wrk but it is not on PATH; {INSTALL_HINT}")
    return found


def wrk_version() -> str:
    path = wrk_path()
    if path is None:
        return "not installed"
    done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].strip() if first else "unknown"


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    duration_s: float
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # from the Lua's BENCH_COUNTS line
    server_cpu_ms_per_request: float | None = None  # filled in by the bench, not by wrk
    server_cpu_share: float | None = None
    other_cpu_share: float | None = None  # other processes on the machine during the run, in cores
    raw: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("raw")
        return data


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """Read wrk's own text output (run with --latency) into numbers."""
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output has no {pattern!r}:\n{output}")
        return match

    rate = float(find(r"^Requests/sec:\s+([\d.]+)").group(1))
    p50 = _duration_ms(find(r"^\s+50%\s+(\S+)").group(1))
    p99 = _duration_ms(find(r"^\s+99%\s+(\S+)").group(1))
    total = find(r"^\s+(\d+) requests in ([\d.]+\w+),")
    non_2xx_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors_match = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = {}
    if errors_match:
        errors = dict(zip(("connect", "read", "write", "timeout"), map(int, errors_match.groups()), strict=True))
    counts_match = re.search(r"^BENCH_COUNTS (\{.*\})$", output, re.MULTILINE)
    counts = {k: int(v) for k, v in json.loads(counts_match.group(1)).items()} if counts_match else {}
    return WrkResult(
        requests_per_s=rate, p50_ms=p50, p99_ms=p99, requests=int(total.group(1)),
        duration_s=_duration_ms(total.group(2)) / 1000, non_2xx=int(non_2xx_match.group(1)) if non_2xx_match else 0,
        socket_errors=errors, counts=counts, raw=output,
    )


def wrk_command(
    url: str, script: Path, *, duration_s: float, connections: int, threads: int, cpu: int | None,
    timeout_s: float = 5.0,
) -> list[str]:
    path = wrk_path() or "wrk"
    command = [path, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s",
               f"--timeout={timeout_s:g}s", "--latency", "-s", str(script), url]
    return pinned(command, cpu)


def pinned(command: Sequence[str], cpu: int | None) -> list[str]:
    """The command under `taskset -c CPU` when a CPU is given and taskset exists."""
    if cpu is None or shutil.which("taskset") is None:
        return list(command)
    return ["taskset", "-c", str(cpu), *command]


def run_wrk(
    url: str, script: Path, *, duration_s: float, connections: int, threads: int, cpu: int | None,
    log: Path | None = None, timeout_s: float = 5.0,
) -> WrkResult:
    command = wrk_command(url, script, duration_s=duration_s, connections=connections, threads=threads, cpu=cpu,
                          timeout_s=timeout_s)
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          timeout=duration_s * 4 + timeout_s + 60)
    output = done.stdout + ("\n" + done.stderr if done.stderr.strip() else "")
    if log is not None:
        log.write_text(" ".join(command) + "\n\n" + output, encoding="utf-8")
    if done.returncode != 0 or ".lua:" in done.stderr:
        raise RuntimeError(f"wrk exited {done.returncode} (or its script failed): {output[-800:]}")
    return parse_wrk(output)
