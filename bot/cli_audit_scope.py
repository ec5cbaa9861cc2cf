"""Which rows `dutybot audit export --item / --unit` keeps (bot/cli_audit.py).

--item N: the item's rows (12, #12, ＃12, 12号, as in the chat).
--unit U (id, name or alias): the rows of every item the unit is or was lead or co-unit of — an
item transferred away stays in the record of the unit that had it — and the unit's own rows about
no item: naming it (a 零报告), else by its people, else in its chats (a roll call missed there).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.cli_locate import CliError
from domain.config import Config
from domain.directory import Directory
from handlers.parsing import normalize, take_item_ref
from store import audit_export
from store import items as item_store
from store.audit_export import ExportedEvent, named_units
from store.db import Database

BAD_ITEM = "线索编号“{text}”格式不对，请写成 12、#12、＃12 或 12号。"
NO_ITEM = "没有编号为 #{n} 的线索。"
UNIT_NEEDS_CONFIG = "按单位筛选需要配置文件（单位与群、人员的对应关系），请用 --config 文件 指明。"
NO_UNIT = "配置中没有单位“{text}”。"
SIMILAR = "您是否要输入：{names}？"


@dataclass(frozen=True)
class Scope:
    item_id: int | None = None
    item_number: int | None = None
    unit_id: str | None = None
    unit_name: str = ""
    unit_items: frozenset[int] = frozenset()
    unit_chats: frozenset[str] = frozenset()
    unit_people: frozenset[str] = frozenset()

    def keeps(self, row: ExportedEvent) -> bool:
        """Whether the row is in scope (--item is already applied by the query)."""
        unit = self.unit_id
        if unit is None:
            return True
        event = row.event
        if event.item_id is not None:
            return event.item_id in self.unit_items
        # A row about no item is the unit's when it names the unit (a 零报告 names the unit whose it
        # is, wherever it was sent); a row naming none is its author's unit's, else its chat's.
        named = named_units(event.before or {}) | named_units(event.after or {})
        if named:
            return unit in named
        return event.actor in self.unit_people or event.chat_id in self.unit_chats

    def describe(self) -> str:
        """The filters for the closing line, e.g. "，单位：城关镇人民政府，线索：#12"; empty without."""
        parts = [f"，单位：{self.unit_name}"] if self.unit_id else []
        if self.item_number is not None:
            parts.append(f"，线索：#{self.item_number}")
        return "".join(parts)


def item_number(text: str) -> int:
    ref = take_item_ref(normalize(text))  # as in the chat: full-width ＃ and digits folded first
    if ref is None or ref[1]:
        raise CliError(BAD_ITEM.format(text=text))
    return ref[0]


def _unit(config: Config | None, text: str) -> tuple[Directory, str]:
    if config is None:
        raise CliError(UNIT_NEEDS_CONFIG)
    directory = Directory(config)
    unit = directory.find_unit(text)
    if unit is None:
        similar = directory.similar_units(text)
        hint = SIMILAR.format(names="、".join(u.name for u in similar)) if similar else ""
        raise CliError(NO_UNIT.format(text=text) + hint)
    return directory, unit.id


async def resolve_scope(url: str, config: Config | None, unit_text: str | None, item_text: str | None) -> Scope:
    """The filters checked against the config and the database before any output is written."""
    number = item_number(item_text) if item_text is not None else None
    unit = _unit(config, unit_text) if unit_text is not None else None
    db = Database(url)
    try:
        async with db.read() as session:
            item_id = None
            if number is not None:
                item = await item_store.by_number(session, number)
                if item is None:
                    raise CliError(NO_ITEM.format(n=number))
                item_id = item.id
            if unit is None:
                return Scope(item_id=item_id, item_number=number)
            directory, unit_id = unit
            items = await audit_export.unit_item_ids(session, unit_id)
    finally:
        await db.dispose()
    chats = frozenset(c.id for c in directory.config.chats if c.unit == unit_id)
    people = frozenset(p.id for p in directory.config.people if any(r.unit == unit_id for r in p.roles))
    return Scope(item_id, number, unit_id, directory.unit_name(unit_id), frozenset(items), chats, people)
