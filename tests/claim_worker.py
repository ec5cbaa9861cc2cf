"""A separate process that claims outbox rows until none is left; prints the ids it claimed.

Used by tests/test_outbox_claims.py to race several processes over one database.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

from store import outbox
from store.db import Database


async def main(url: str, worker: str, now_iso: str) -> None:
    db = Database(url)
    now = datetime.fromisoformat(now_iso).astimezone(UTC)
    claimed: list[int] = []
    try:
        while True:
            async with db.transaction() as session:
                rows = await outbox.claim(session, worker=worker, now=now, lease=timedelta(hours=1), limit=100)
            if not rows:
                break
            claimed += [row.id for row in rows]
    finally:
        await db.dispose()
    print(" ".join(str(i) for i in claimed))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
