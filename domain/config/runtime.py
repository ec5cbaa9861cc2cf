"""Runtime sections: the bot, the server, the database, delivery, the spool and the intake API."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from domain.config.base import _Model


class BotSection(_Model):
    name: str = "舆情值班助手"


class ServerSection(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # The local channel and /sim let anyone who reaches them speak as any configured person:
    # always on for `dutybot demo`; for `dutybot serve` only when turned on here, and then only
    # for clients on this machine (loopback) unless simulator_remote is also set.
    simulator: bool = False
    simulator_remote: bool = False


class DeliverySection(_Model):
    """How the outbox delivers: timeouts, the per-webhook budget, leases, digests."""

    # One webhook call may take this long before it counts as failed (and is retried).
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    # The platforms allow 20 messages per robot in any 60 seconds (failed sends included).
    rate_limit: int = Field(default=20, ge=1)
    rate_window_seconds: int = Field(default=60, ge=1)
    # Counted on top of the window: the platform stamps posts with its own clocks when they
    # arrive, which we never see; a margin keeps jitter between its clocks and ours from ever
    # letting a 21st post into its 60 seconds.
    rate_skew_seconds: float = Field(default=2, ge=0, le=30)
    # More messages than this waiting for one chat's budget are folded into one digest.
    digest_after: int = Field(default=10, ge=2)
    # A claimed message whose worker died is taken over after this long.
    lease_seconds: int = Field(default=120, ge=5)
    # How often the scheduler sweeps the clocks and the outbox.
    tick_seconds: float = Field(default=1, gt=0, le=60)
    # On SIGTERM, posts in flight may finish for this long; the process exits within it plus 2 s.
    shutdown_seconds: float = Field(default=10, gt=0, le=300)
    # Messages a robot refused for a configuration reason are held; this often one of them is
    # tried again per chat, and once the robot accepts it the rest follow.
    held_probe_seconds: int = Field(default=60, ge=5)

    @model_validator(mode="after")
    def _lease_outlives_a_post(self) -> DeliverySection:
        # A claim must outlive the post it covers and the write after it: a lease that runs out
        # while the platform is still answering lets another replica take the row and post it again.
        if self.lease_seconds < 2 * self.timeout_seconds:
            raise ValueError(
                f"lease_seconds（{self.lease_seconds}）应不小于 timeout_seconds（{self.timeout_seconds:g}）的两倍，"
                "否则一次较慢的发送尚未结束，租约已到期，别的实例会重复发送"
            )
        return self


def check_database_url(value: str) -> str:
    """The URL if dutybot can use it: PostgreSQL through asyncpg, or an SQLite *file* (the store
    runs SQLite statements on its own connections to that file; an in-memory database would be a
    different, empty database on each of them)."""
    sqlite_path = value.removeprefix("sqlite+aiosqlite:///") if value.startswith("sqlite+aiosqlite:///") else None
    if value.startswith("postgresql+asyncpg://") or (sqlite_path and sqlite_path.split("?")[0] != ":memory:"):
        return value
    raise ValueError("数据库 URL 应为 sqlite+aiosqlite:///文件路径 或 postgresql+asyncpg://用户@主机/库名")


class SpoolSection(_Model):
    """Where a platform message is kept while the database cannot be written (bot/spool.py)."""

    # One file per process in this directory (relative paths: from the working directory).
    directory: str = "var/spool"
    # A process's file stops taking messages at this size; callbacks then get 503 and are retried.
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
    # How long a platform message may wait for the database before it is spooled instead
    # (WeCom retries a callback not answered within 5 seconds).
    write_budget_seconds: float = Field(default=3.0, gt=0, le=30)


class ApiSection(_Model):
    """The intake API (/api/v1) for monitoring systems and the 12345 platform. It answers only
    requests with a valid token (`dutybot api token create`): with no token, no open door."""

    # Requests per token per minute; more get 429 with Retry-After.
    rate_limit_per_minute: int = Field(default=600, ge=1, le=100_000)
    # The largest request body accepted (bytes); larger ones get 413 before they are read.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Items in one POST /api/v1/items:batch.
    batch_max_items: int = Field(default=500, ge=1, le=500)
    # GET /api/v1/items: items per page (default and most).
    page_size: int = Field(default=50, ge=1, le=500)


class DatabaseSection(_Model):
    url: str = "sqlite+aiosqlite:///var/dutybot.db"

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        return check_database_url(value)
