"""The records' settings (issue #16): 舆情日志, 零报告, 定期通报 — when each is made, and the bar of the
on-time rates below which a unit is named in the 定期通报."""

from __future__ import annotations

from datetime import time

from pydantic import Field

from domain.config.base import _Model


class RecordsSection(_Model):
    """`[records]`: every setting of the records of issue #16, in local time of `timezone`."""

    # 舆情日志: posted to each duty chat at this time, covering the 24 hours before it.
    daily_log: bool = True
    daily_log_time: time = time(8, 30)
    # 零报告: units that have neither reported an item nor sent 零报告 today are reminded at this time.
    zero_report_reminder: bool = True
    zero_report_reminder_time: time = time(17, 0)
    # 定期通报 to the coordinators' chat(s): weekly on `weekly_weekday` (1 = Monday … 7 = Sunday),
    # covering the previous Monday–Sunday; monthly on `monthly_day` (a shorter month: its last day),
    # covering the previous calendar month.
    weekly: bool = True
    weekly_weekday: int = Field(default=1, ge=1, le=7)
    weekly_time: time = time(9, 0)
    monthly: bool = True
    monthly_day: int = Field(default=1, ge=1, le=31)
    monthly_time: time = time(9, 0)
    # A unit whose on-time 签收 or 回应 rate is below this (0–1) is named in the 定期通报.
    on_time_threshold: float = Field(default=0.9, ge=0.0, le=1.0)
