"""Building blocks for the platform payload models (wecom_payloads.py, dingtalk_payloads.py).

Platforms add fields without notice and send some fields loosely typed, so the models follow one
rule: a field the bot cannot do without is strict (a message id that is not a non-empty string
refuses the payload with a 400), a field it only uses when it makes sense is lenient (a value of
the wrong type is treated as absent), and unknown fields are ignored.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, ValidationError, ValidatorFunctionWrapHandler
from pydantic.functional_validators import PlainValidator, WrapValidator

# Strings are checked by these plain validators rather than pydantic's own: JSON may carry a lone
# surrogate ("\ud800"), which pydantic refuses as a string, while the bot keeps such text cleaned
# (domain.messages.clean_text) and de-duplicates such ids by their exact value (message_key).


def _required(value: object) -> str:
    if isinstance(value, str) and value:
        return value
    raise ValueError("must be a non-empty string")


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    raise ValueError("must be a string")


def _string_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# A required identifier: a JSON string, not empty (never a number turned into a string).
Required = Annotated[str, PlainValidator(_required)]
# Text as sent (may be empty).
Text = Annotated[str, PlainValidator(_text)]


def _none_on_error(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


# An optional string: anything but a non-empty string reads as absent.
Loose = Annotated[str | None, PlainValidator(_string_or_none)]
# Wrap an optional model or list in this to read a malformed value as absent: Lenient[Part | None].
Lenient = WrapValidator(_none_on_error)


class Payload(BaseModel):
    """Base of every platform payload: immutable, unknown fields ignored, wire names kept."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


def error_fields(exc: ValidationError) -> str:
    """The JSON paths of a validation error for a log line: field names only, never a value
    (a signed payload's values may be anything, up to 64 KiB)."""
    paths = set()
    for error in exc.errors(include_input=False):
        path = ".".join(str(part) for part in error["loc"])
        # A model validator's own ValueError names the fields itself (see RobotPayload._readable).
        if not path and error["type"] == "value_error":
            path = str(error.get("ctx", {}).get("error", "")) or "(root)"
        paths.add(path or "(root)")
    return ", ".join(sorted(paths))[:200]
