"""A validated config as plain frozen objects: what the serving proxy reads.

The serving proxy must not import pydantic: its import alone (pydantic, pydantic_core's
library, their helpers) costs several MiB in every cage (docs/cages.md). So the child that
validates its config (proxy/checked_config.py) sends `snapshot_of(config)` instead of the
models: one `Snapshot` per model, holding every field and the value of every property,
read the same way (`config.domains.learn_notice`). A model's methods are not carried:
serving code reads fields and properties only, and a method asked for is an
AttributeError, so the proxy fails closed rather than guess.

This module imports nothing of the schema: `snapshot_of` finds models by duck typing.
"""

from __future__ import annotations

from typing import Any


class Snapshot:
    """One validated model's fields and properties, immutable like the model.

    It has no public attribute of its own, so none can hide a field of the same name;
    `snapshot_kind` gives its model's class name.
    """

    def __init__(self, kind: str, values: dict[str, Any]) -> None:
        vars(self).update(values)  # plain attributes: as fast to read as the model's
        vars(self)[_KIND] = kind

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{snapshot_kind(self)} is frozen: cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{snapshot_kind(self)} is frozen: cannot delete {name}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Snapshot) and vars(self) == vars(other)

    def __hash__(self) -> int:
        # Like a frozen model's: a TypeError if a value (a list) is not hashable.
        return hash(tuple(vars(self).items()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in _values(self).items())
        return f"{snapshot_kind(self)}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Snapshot, (snapshot_kind(self), _values(self)))


_KIND = "_snapshot_kind"  # no field's name: pydantic refuses names that start with _


def snapshot_kind(snapshot: Snapshot) -> str:
    """The class name of the model `snapshot` was made of (`CageConfig`, ...)."""
    return str(vars(snapshot)[_KIND])


def _values(snapshot: Snapshot) -> dict[str, Any]:
    return {k: v for k, v in vars(snapshot).items() if k != _KIND}


def snapshot_of(value: Any) -> Any:
    """`value` with every pydantic model in it, however deep, made a `Snapshot`."""
    kind = type(value)
    fields = getattr(kind, "model_fields", None)
    if isinstance(fields, dict) and not isinstance(value, type):
        values = {name: snapshot_of(getattr(value, name)) for name in fields}
        for name in _properties(kind):
            values[name] = snapshot_of(getattr(value, name))
        return Snapshot(kind.__name__, values)
    if isinstance(value, dict):
        return {k: snapshot_of(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snapshot_of(v) for v in value]
    if isinstance(value, tuple):  # a NamedTuple of the schema's too: its class stays behind
        return tuple(snapshot_of(v) for v in value)
    if isinstance(value, frozenset):
        return frozenset(snapshot_of(v) for v in value)
    if isinstance(value, set):
        return {snapshot_of(v) for v in value}
    return value


def _properties(kind: type) -> list[str]:
    """The public properties the schema's own classes define (not pydantic's)."""
    names: list[str] = []
    for cls in kind.__mro__:
        if not cls.__module__.startswith("agentcage."):
            continue
        names += [
            name
            for name, member in vars(cls).items()
            if isinstance(member, property) and not name.startswith("_") and name not in names
        ]
    return names
