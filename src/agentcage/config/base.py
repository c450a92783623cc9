"""The base every config model shares: unknown keys are errors, values are immutable.

Each model builds its validator on its first validation, not when its class is made
(`defer_build`): the serving proxy gets its config already validated, by a child
process (proxy/checked_config.py), and so never builds any.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        validate_default=False,
        populate_by_name=True,
        defer_build=True,
    )


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside a field's annotation (`X | None`, `list[X]`, ...), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = model_in(arg)
        if found is not None:
            return found
    return None
