"""Processes, ports, CPU pinning and machine facts for the bench."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.wrk import pinned, wrk_version

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
WORK = BENCH / "work"  # scratch: configs, logs, SQLite files, wrk scripts (git-ignored)
PROFILES = BENCH / "profiles"
PYTHON = sys.executable  # every server runs in this Python (the peer: a venv made from it)
HOST = "127.0.0.1"  # loopback only

# The secrets the bench gives dutybot (env vars of config.example.toml's dingtalk channel).
APP_SECRET = "bench-app-secret-Qh7Zx81"
ROBOT_TOKEN = "b3nch0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7"
ROBOT_SECRET = "SECbench0123456789abcdef0123456789abcdef0123456789abcdef0123"


class Skip(Exception):
    """A scenario cannot run here; the message says why (printed, recorded, not a crash)."""


@dataclass(frozen=True)
class Cores:
    server: int | None
    load: int | None

    @property
    def pinned(self) -> bool:
        return self.server is not None


def cpu_plan() -> Cores:
    """Server on one core, wrk and the fake platform on another, when there are at least two."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = list(range(os.cpu_count() or 1))
    if len(cores) >= 2:
        return Cores(server=cores[0], load=cores[1])
    return Cores(server=None, load=None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """A server the bench started; stopped by its own pid (never by name)."""

    def __init__(self, name: str, command: Sequence[str], *, cpu: int | None, env: Mapping[str, str] | None = None,
                 cwd: Path = ROOT, log: Path | None = None) -> None:
        self.name = name
        self.command = pinned(command, cpu)
        self.log = log or (WORK / f"{name}.log")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("w", encoding="utf-8")
        self.popen = subprocess.Popen(
            self.command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=self._log_file,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def server_pid(self) -> int:
        """The Python process itself: taskset execs its command, so the pid is the same."""
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_port(self, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; see {self.log}:\n"
                                   + self.tail())
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen on {HOST}:{port} within {timeout:.0f} s; see {self.log}")

    def tail(self, lines: int = 30) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log_file.close()
        return self.popen.returncode


@contextlib.contextmanager
def running(*processes: Process) -> Iterator[None]:
    try:
        yield
    finally:
        for process in reversed(processes):
            process.stop()


def rss_mb(pid: int) -> float:
    """Resident set size of one process, from /proc (MiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Processes whose CPU is part of a measurement, not a disturbance.
OWN_NAMES = frozenset({"wrk", "py-spy"})
BENCH_DATABASE_PREFIX = "dutybot_bench_"


def _postgres_is_ours(pid: int) -> bool:
    """A PostgreSQL backend serving one of the bench's databases, or one of the server's own
    processes (checkpointer, WAL writer…); a backend of another database is someone else's."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").split()
    except OSError:
        return True
    # "postgres: 15/main: USER DATABASE HOST(PORT) STATE" for a backend
    backend = len(title) >= 5 and title[0] == "postgres:" and ("(" in title[4] or title[4] == "[local]")
    if not backend:
        return True  # the postmaster or a background process, shared by all
    return title[3].startswith(BENCH_DATABASE_PREFIX)


def process_cpu() -> dict[int, tuple[str, float]]:
    """pid → (name, CPU seconds so far) for every process on the machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        if name == "postgres":
            name = "postgres (bench)" if _postgres_is_ours(int(entry.name)) else "postgres (other)"
        fields = text.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return found


def other_cpu_seconds(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
                      own_pids: set[int]) -> float:
    """CPU used between two snapshots by processes that are not part of the measurement: another
    job on a shared machine shows up here (the figures of such a run are disturbed)."""
    used = 0.0
    for pid, (name, seconds) in after.items():
        if pid in own_pids or name in OWN_NAMES or name == "postgres (bench)":
            continue
        used += seconds - before.get(pid, (name, 0.0))[1]
    return max(used, 0.0)


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # loopback only
        return json.loads(response.read())


# -- machine facts and versions ----------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_facts() -> dict[str, Any]:
    cores = cpu_plan()
    return {
        "cpu": _cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "pinning": (f"server on CPU {cores.server}, wrk and the fake platform on CPU {cores.load} (taskset)"
                    if cores.pinned else "not pinned (fewer than two cores)"),
    }


def versions() -> dict[str, str]:
    found = {
        "python": platform.python_version(),
        "dutybot": _version("dutybot"),
        "aiohttp": _version("aiohttp"),
        "SQLAlchemy": _version("SQLAlchemy"),
        "aiosqlite": _version("aiosqlite"),
        "asyncpg": _version("asyncpg"),
        "wrk": wrk_version(),
    }
    import sqlite3

    found["sqlite"] = sqlite3.sqlite_version
    return found
