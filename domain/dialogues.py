"""The bot's multi-step dialogues: a question it put to someone and waits for, one kind per question
and one model per kind for what the answer needs (the payload).

Stored by store/pending.py (one open question per person and chat), answered by the one resolver in
handlers/dialogues.py. A payload is validated when the question is put and again when it is read
back: a row written by an older release, or edited by hand, that no longer fits its model is
reported as unreadable (and closed politely), never taken for an answer it is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, ValidationError

from domain.vocab import Role


class DialogueKind(StrEnum):
    """What the bot asked (stored in pending_questions.kind as these words)."""

    GRADE = "grade"  # the grade question after a report: a bare 1/2/3 (handlers/grading.py)
    SWAP = "swap"  # 换班 asked of the other person: 同意 / 拒绝 (handlers/roster_swap.py)
    OFFER_REPORT = "offer_report"  # "回复“1”登记为线索" after a verb-less report (handlers/offer.py)


# Written as Python's isoformat (an offset, never "Z"), as the rows and audit entries always were.
Instant = Annotated[AwareDatetime, PlainSerializer(datetime.isoformat, return_type=str)]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    KIND: ClassVar[DialogueKind]


class GradeQuestion(_Payload):
    """Which item the bare grade answers."""

    KIND: ClassVar[DialogueKind] = DialogueKind.GRADE
    number: int = Field(gt=0)


class ShiftPart(BaseModel):
    """One role of one shift over [start, end), moving from `giver` to `taker` (a 换班, 代班 or 替班)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    day: date
    shift: str = Field(min_length=1)
    role: Role
    start: Instant
    end: Instant
    giver: str = Field(alias="from", min_length=1)
    taker: str = Field(alias="to", min_length=1)


class SwapQuestion(_Payload):
    """A 换班 asked by `asker` of `target`: one part, or two for an exchange."""

    KIND: ClassVar[DialogueKind] = DialogueKind.SWAP
    asker: str = Field(alias="from", min_length=1)
    target: str = Field(alias="to", min_length=1)
    parts: tuple[ShiftPart, ...] = Field(min_length=1, max_length=2)


class OfferQuestion(_Payload):
    """The text offered for registration, and the item whose grade question the offer replaced."""

    KIND: ClassVar[DialogueKind] = DialogueKind.OFFER_REPORT
    text: str = Field(min_length=1)
    message_id: str | None = None
    waiting: int | None = None


DialoguePayload = GradeQuestion | SwapQuestion | OfferQuestion
MODELS: dict[DialogueKind, type[DialoguePayload]] = {
    model.KIND: model for model in (GradeQuestion, SwapQuestion, OfferQuestion)
}


class UnreadableDialogue(ValueError):
    """A stored kind this release does not know, or a payload that does not fit its kind's model."""


def read_payload(kind: str, raw: object) -> DialoguePayload:
    """The payload of a question of `kind` (its model, or the stored mapping), validated against
    that kind's model."""
    try:
        model = MODELS[DialogueKind(kind)]
    except ValueError as exc:
        raise UnreadableDialogue(f"unknown dialogue kind {kind!r}") from exc
    if isinstance(raw, BaseModel):
        if not isinstance(raw, model):
            raise UnreadableDialogue(f"a {type(raw).__name__} is not the payload of {kind!r}")
        return raw
    if raw is not None and not isinstance(raw, Mapping):
        raise UnreadableDialogue(f"payload of {kind!r} is a {type(raw).__name__}, not an object")
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as exc:
        raise UnreadableDialogue(f"payload of {kind!r} does not fit: {exc.error_count()} error(s)") from exc


def dump_payload(payload: DialoguePayload) -> dict[str, Any]:
    """The stored JSON of a payload (the field names the rows have always used)."""
    return payload.model_dump(mode="json", by_alias=True)
