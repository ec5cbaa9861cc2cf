"""SQLAlchemy 2 models. Times are stored as timezone-aware UTC.

The tables are defined by subject in store/schema/; this module gathers them, so that every
model is registered on `Base.metadata` and imported from one place. The schema itself is created
by Alembic migrations (store/migrations), never by create_all in production code; tests use the
same migrations.
"""

from store.schema.access import ApiToken
from store.schema.base import Base, BigId, UTCDateTime, table_of
from store.schema.delivery import (
    ChannelStatus,
    ChatMessage,
    EngineRun,
    InboundSeen,
    OutboxMessage,
    RateEvent,
    RateKey,
    SignatureUse,
)
from store.schema.items import Counter, Item, ItemEvent, ItemSource, ItemUnit, PendingQuestion
from store.schema.roster import (
    RosterAssignment,
    RosterLeave,
    RosterOverride,
    RosterRollCall,
    RosterRotation,
    RosterShift,
    RosterTemplate,
)

__all__ = [
    "ApiToken",
    "Base",
    "BigId",
    "ChannelStatus",
    "ChatMessage",
    "Counter",
    "EngineRun",
    "InboundSeen",
    "Item",
    "ItemEvent",
    "ItemSource",
    "ItemUnit",
    "OutboxMessage",
    "PendingQuestion",
    "RateEvent",
    "RateKey",
    "RosterAssignment",
    "RosterLeave",
    "RosterOverride",
    "RosterRollCall",
    "RosterRotation",
    "RosterShift",
    "RosterTemplate",
    "SignatureUse",
    "UTCDateTime",
    "table_of",
]
