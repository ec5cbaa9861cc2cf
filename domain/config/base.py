"""The shared base of every config model."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
ID_RE = r"^[A-Za-z0-9_.-]{1,64}$"

Ident = Annotated[str, Field(pattern=ID_RE)]
EnvName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,99}$")]


class _Model(BaseModel):
    # Unknown keys are errors: a typo in the TOML must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)
