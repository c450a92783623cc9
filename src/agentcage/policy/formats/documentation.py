"""Documentation and test values: shaped like a credential, granting nothing.

Source code, READMEs and tests are full of them (`AKIAIOSFODNN7EXAMPLE`,
`ghp_xxxx...`, `4242 4242 4242 4242`, `abandon ... about`), and agents send that
code to their LLM all day. `secrets.documentation_values: skip` (the default) lets
them pass; `block` treats them as the credentials they imitate.

A value is documentation when it is a published one (`published_examples.py`) or
when too little randomness is left in it once its fixed prefix and marker words
(EXAMPLE, FAKE, TEST...) are set aside: a real key hides nothing by carrying a
marker, since the random rest still has to be there.
"""

from __future__ import annotations

import itertools
import re

from agentcage.policy.formats.published_examples import published

_MARKERS = re.compile(
    rb"(?i:example|sample|dummy|fake|test|placeholder|changeme|redacted|your|here|secret"
    rb"|x{4,}|\*{3,}|\.{3,})"
)
_SEPARATORS = re.compile(rb"[_\-.:]")
_MIN_RANDOM = 12  # characters left after markers and fillers, in the shortest real key
_MIN_DISTINCT = 6
_SEQUENTIAL = 0.5  # share of neighbours one code point apart: ABCDEF..., 123456...


def token_example(value: bytes, anchors: tuple[bytes, ...] = ()) -> bool:
    """A token-like value (`prefix_random`) is a documentation stand-in."""
    if published(value):
        return True
    for anchor in sorted(anchors, key=len, reverse=True):
        if value.startswith(anchor):
            value = value[len(anchor) :]
            break
    rest = _MARKERS.sub(b"", _SEPARATORS.sub(b"", value))
    return filler(rest)


def never(value: bytes) -> bool:
    """For formats with no random part to judge (a key file's header)."""
    return False


def filler(text: bytes) -> bool:
    """Too short, too few distinct characters, or a counted sequence."""
    if len(text) < _MIN_RANDOM or len(set(text)) < _MIN_DISTINCT:
        return True
    steps = sum(1 for a, b in itertools.pairwise(text) if abs(b - a) == 1)
    return steps >= _SEQUENTIAL * (len(text) - 1)


def digits_example(digits: bytes) -> bool:
    """A number (a card, an account) that no issuer would hand out: published, or
    made of few digits, a long repeat or a counted sequence."""
    if published(digits):
        return True
    if len(set(digits)) <= 3:
        return True
    if re.search(rb"(.)\1{5}", digits):
        return True
    steps = sum(1 for a, b in itertools.pairwise(digits) if b - a in (1, -1))
    return steps >= _SEQUENTIAL * (len(digits) - 1)
