"""Prometheus metrics of one bot process, on a registry of its own (no process-wide default)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reminder_lateness = Histogram(
            "dutybot_reminder_lateness_seconds", "Seconds between a reminder's due time and its delivery",
            buckets=LATENESS_BUCKETS, registry=self.registry,
        )
        self.deliveries = Counter(
            "dutybot_deliveries_total", "Outbox deliveries by outcome", ["outcome"], registry=self.registry,
        )
        self.rate_limit_waits = Counter(
            "dutybot_rate_limit_waits_total", "Messages deferred by the per-webhook rate limit",
            registry=self.registry,
        )
        self.digests = Counter(
            "dutybot_digests_total", "Digests made of a backlog over the rate budget", registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "dutybot_outbox_depth", "Outbox messages pending or claimed", registry=self.registry,
        )
        self.outbox_oldest_age = Gauge(
            "dutybot_outbox_oldest_age_seconds", "Age of the oldest due, undelivered outbox message",
            registry=self.registry,
        )
        self.sweeps = Counter(
            "dutybot_deadline_sweeps_total", "Deadline sweeps run", registry=self.registry,
        )
        self.engine_runs = Counter(
            "dutybot_engine_runs_total", "Engine module runs (each one or more cycles) by outcome",
            ["module", "outcome"], registry=self.registry,
        )
        self.engine_seconds = Histogram(
            "dutybot_engine_run_seconds", "Seconds an engine module's run took", ["module"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=self.registry,
        )
        self.engine_late = Counter(
            "dutybot_engine_late_occurrences_total", "Scheduled occurrences run after their time (补发)",
            ["module"], registry=self.registry,
        )
        self.spooled = Counter(
            "dutybot_spooled_total", "Platform messages kept in the local spool (database not writable)",
            registry=self.registry,
        )
        self.spool_depth = Gauge(
            "dutybot_spool_depth", "Messages waiting in the local spool for the database", registry=self.registry,
        )
        self.spool_oldest_age = Gauge(
            "dutybot_spool_oldest_age_seconds", "Age of the oldest message waiting in the local spool",
            registry=self.registry,
        )
        self.write_probe_ok = Gauge(
            "dutybot_database_writable", "1 when the last database write probe succeeded", registry=self.registry,
        )
        self.signature_reuse_refused = Counter(
            "dutybot_callback_signature_reuse_refused_total",
            "DingTalk callbacks refused: a signature (timestamp+sign) came back with another msgId after 2 s",
            ["channel"], registry=self.registry,
        )
        self.foreign_robot_refused = Counter(
            "dutybot_callback_foreign_robot_refused_total",
            "DingTalk messages refused: robotCode or chatbotCorpId not the configured app's",
            ["channel"], registry=self.registry,
        )
        self.reply_urls_dropped = Counter(
            "dutybot_reply_urls_dropped_total",
            "Reply URLs from callbacks dropped because they were not the platform's own endpoint",
            ["channel"], registry=self.registry,
        )
        self.simulator_refused = Counter(
            "dutybot_simulator_refused_total",
            "Requests the local simulator channel refused (other machine, Host not loopback, foreign Origin)",
            ["reason"], registry=self.registry,
        )
