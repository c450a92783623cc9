"""Refuse user patterns that can backtrack catastrophically, before they meet a body.

Python's `re` backtracks; a repeat inside a repeat (`(a+)+`, `(\\w+\\s?)*`) can
take exponential time on a crafted payload, and the agent controls the payload.
The check walks the parsed pattern and rejects an unbounded repeat nested in
another repeat of more than a few iterations. Possessive and atomic forms
(`(?>...)`, `a++`) cannot backtrack and are allowed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

# The stdlib's own regex parser (3.11+; the old `sre_parse` alias is deprecated and
# typeshed has no stub for the private name, hence the dynamic import).
sre_parse: Any = importlib.import_module("re._parser")

MAXREPEAT = sre_parse.MAXREPEAT

_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT}
_OUTER_LIMIT = 16  # an outer repeat bounded this low keeps the work polynomial and small


def nested_quantifier(pattern: str) -> bool:
    """True if `pattern` has an unbounded repeat inside a repeat of more than a few rounds."""
    return _scan(sre_parse.parse(pattern), inside_repeat=False)


def _scan(items: Iterable[tuple[Any, Any]], inside_repeat: bool) -> bool:
    for op, arg in items:
        if op in _REPEATS:
            _, high, body = arg
            if inside_repeat and high == MAXREPEAT:
                return True
            outer = high == MAXREPEAT or high > _OUTER_LIMIT
            if _scan(body, inside_repeat or outer):
                return True
        elif any(_scan(child, inside_repeat) for child in _children(op, arg)):
            return True
    return False


def _children(op: Any, arg: Any) -> list[Any]:
    if op is sre_parse.SUBPATTERN:
        return [arg[-1]]
    if op is sre_parse.BRANCH:
        return list(arg[1])
    if op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
        return [arg[1]]
    # ATOMIC_GROUP and POSSESSIVE_REPEAT never backtrack into themselves: not walked.
    return []
