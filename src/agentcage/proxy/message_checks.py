"""mitmproxy's type check of each HTTP message's fields, worked out once per class.

Every `Request` and `Response` mitmproxy makes (the agent's request as parsed, a kept
upstream connection's answer, a block page) checks the type of each of its twelve or
eight fields in `MessageData.__post_init__`, reading the field's annotation afresh
with `typing.get_origin` and friends each time: 20-25 us a request and 15-18 us a
response on the test machine, most of the cost of making one. The annotations are
plain classes and unions of them (`bytes`, `Headers | None`, `float`), so which types
each field accepts is fixed: here it is read once per message class, and each new
message is checked with one `isinstance` per field. What passes and what raises is
mitmproxy's (`float` takes an `int`, as `check_option_type` allows; the error names
the field as it does); a field annotated with anything else is checked by mitmproxy's
own function, and a Python run with `-O`, where mitmproxy leaves the check out, is left
without it as well.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from mitmproxy import http
from mitmproxy.utils import typecheck

from agentcage.proxy.mitmproxy_pin import patches_mitmproxy

# Per field: its name, its annotation (for the error), and the classes it accepts,
# or None where mitmproxy's own check must decide.
FieldCheck = tuple[str, Any, tuple[type, ...] | None]
_CHECKS: dict[type, tuple[FieldCheck, ...]] = {}


@patches_mitmproxy
def install() -> None:
    if hasattr(http.MessageData, "__post_init__"):
        http.MessageData.__post_init__ = _checked  # type: ignore[method-assign]


def accepted(annotation: Any) -> tuple[type, ...] | None:
    """The classes `check_option_type` lets through for `annotation`, if that is all
    it does: a plain class, or a union of plain classes (None for `NoneType`)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
    else:
        members = (annotation,)
    classes: list[type] = []
    for member in members:
        if member is None:
            member = type(None)
        plain = isinstance(member, type) and typing.get_origin(member) is None
        if not plain or member is typing.Any or issubclass(member, (tuple, list, typing.IO)):
            return None  # sequences, tuples, streams, `Any`: checked another way there
        classes.append(member)
        if member is float:
            classes.append(int)
    return tuple(classes)


def field_checks(cls: type) -> tuple[FieldCheck, ...]:
    checks = _CHECKS.get(cls)
    if checks is None:
        checks = tuple((f.name, f.type, accepted(f.type)) for f in dataclasses.fields(cls))
        _CHECKS[cls] = checks
    return checks


def _checked(self: http.MessageData) -> None:
    for name, annotation, classes in field_checks(type(self)):
        value = getattr(self, name)
        if classes is None:
            typecheck.check_option_type(name, value, annotation)
        elif not isinstance(value, classes):
            raise TypeError(f"Expected {annotation} for {name}, but got {type(value)}.")
