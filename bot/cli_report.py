"""`dutybot report daily|item|period`: the records of issue #16 on demand (舆情日志, 专报, 定期通报).

Each subcommand lives in its own module (bot/cli_report_daily.py, cli_report_item.py,
cli_report_period.py) and adds its parser here; like every CLI command they find the
configuration and the database as `dutybot audit export` does (bot/cli_locate.py)."""

from __future__ import annotations

import argparse
from typing import Any

from bot.cli_report_daily import add_daily_command
from bot.cli_report_item import add_item_command
from bot.cli_report_period import add_period_command


def add_report_commands(sub: Any) -> None:
    report: argparse.ArgumentParser = sub.add_parser("report", help="舆情日志、专报、定期通报")
    report_sub = report.add_subparsers(dest="report_command", required=True, metavar="报告")
    # each record's module adds its subcommand here (issue #16)
    add_daily_command(report_sub)
    add_period_command(report_sub)
    add_item_command(report_sub)
