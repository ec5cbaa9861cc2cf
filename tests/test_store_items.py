"""store.items.add: a Core INSERT … RETURNING that leaves the item persistent and clean in the session."""

from __future__ import annotations

from sqlalchemy import inspect, select

from store import items
from store.db import Database
from store.models import Item
from tests.conftest import START


def _item(number: int) -> Item:
    # classified and referred_to are left to their column defaults on purpose.
    return Item(number=number, chat_id="wecom_duty", source="微博", summary="网友反映停水", category="民生",
                status="reported", reported_by="sun_li", reported_at=START, grade_due_at=START, updated_at=START)


async def test_an_added_item_is_persistent_complete_and_later_changes_are_written(db_url: str) -> None:
    db = Database(db_url)
    await db.upgrade()
    try:
        async with db.transaction() as session:
            item = await items.add(session, _item(7))
            state = inspect(item)
            assert state.persistent and not state.modified and not state.expired_attributes
            assert item.id is not None and item.classified is False and item.referred_to == []
            assert item.grade is None and item.next_reminder_at is None  # loaded, not lazy
            item.grade = "重大"  # a change in the same transaction is flushed as an UPDATE
            items.touch(item, START)  # the same instant: nothing to write
            assert list(session.dirty) == [item]
        async with db.read() as session:
            stored = (await session.execute(select(Item).where(Item.number == 7))).scalar_one()
        assert stored.id == item.id and stored.grade == "重大" and stored.referred_to == []
    finally:
        await db.dispose()
