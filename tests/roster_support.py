"""Helpers for the roster tests: load a roster file into a running bot through the same code as the CLI."""

from __future__ import annotations

import csv
import io

from handlers.roster_import import COLUMNS, validate
from handlers.roster_service import Roster, apply_import
from tests.conftest import ROOT, Bot

EXAMPLE_ROSTER = ROOT / "bot" / "examples" / "roster.example.csv"
EXAMPLE_TEXT = EXAMPLE_ROSTER.read_text(encoding="utf-8-sig")


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def csv_text(*rows: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


async def load_roster(bot: Bot, text: str = EXAMPLE_TEXT, extra: str = "") -> None:
    """Import a roster (CSV text, plus extra rows without header) as of the bot's clock."""
    text = text + extra
    batch, errors = validate(rows_of(text), bot.config, {})
    assert not errors, errors
    roster = Roster.build(bot.config, bot.runtime.directory)
    async with bot.runtime.db.transaction() as session:
        await apply_import(roster, session, batch, bot.clock.now(), "test")
