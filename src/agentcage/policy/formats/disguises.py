"""Credential formats written backwards, under a letter cipher or in another case.

A format is found by its anchor (`ghp_`, `sk-ant-`, `AKIA`): an agent that
reverses the key, puts it under a letter cipher (rot13, any other Caesar shift,
atbash) or swaps its case keeps everything but the anchor.
`DisguiseFinder` looks for each anchor so disguised, in the same token windows
the scanner searches, with one automaton pass; around each hit it cuts a window
and undoes the disguise (reverses it, shifts it back), for the scanner to match as
usual. A case change cannot be undone (which case was it?): those windows are
matched with the formats' regexes made case-insensitive instead.

Only anchors of four characters or more are looked for disguised: shorter ones
(`SK`, `SG.`) occur by chance in every long token.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import ahocorasick_rs

from agentcage.policy.formats.pattern import CredentialPattern

MIN_ANCHOR = 4
_BEFORE = 64  # window bytes before a forward anchor (a prefix such as `token=`)
_SPAN = 512  # window bytes the token itself may take (longer than any short format)
_MAX_HITS = 32  # windows undone per payload

_LOWER = b"abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()


def _shift(n: int) -> bytes:
    return bytes.maketrans(_LOWER + _UPPER, _LOWER[n:] + _LOWER[:n] + _UPPER[n:] + _UPPER[:n])


ROT13 = _shift(13)
# Each cipher: (how it disguises, how it is undone).
_CIPHERS: dict[str, tuple[bytes, bytes]] = {
    "rot13": (ROT13, ROT13),
    "atbash": (bytes.maketrans(_LOWER + _UPPER, _LOWER[::-1] + _UPPER[::-1]),) * 2,
    **{f"caesar{n}": (_shift(n), _shift(26 - n)) for n in range(1, 26) if n != 13},
}


@dataclass(frozen=True, slots=True)
class Disguised:
    """A window with the disguise undone, the anchor it was found by, and the disguise."""

    how: str  # "reversed" | "case-changed" | a cipher: "rot13", "caesar3", "atbash"...
    anchor: bytes
    window: bytes


class DisguiseFinder:
    def __init__(self, patterns: Sequence[CredentialPattern]) -> None:
        # Thousands of variants: each is kept as one number (its anchor's index times
        # the number of disguises, plus its disguise's), not as a tuple; the automaton
        # holds its own copy of their bytes (about 0.5 MiB less per finder).
        variants: dict[bytes, int] = {}
        anchors: dict[bytes, int] = {}
        for pattern in patterns:
            if pattern.anywhere or pattern.shape is not None:
                continue
            for anchor in pattern.anchors:
                if len(anchor) < MIN_ANCHOR or anchor in anchors:
                    continue
                anchors[anchor] = len(anchors)
                for how, variant in enumerate(_variants(anchor)):
                    if variant != anchor:
                        variants.setdefault(variant, anchors[anchor] * len(_HOWS) + how)
        self._anchors = tuple(anchors)
        self._meaning = array("I", variants.values())
        self._search = ahocorasick_rs.BytesAhoCorasick(list(variants)) if variants else None

    def find(self, data: bytes, spans: Sequence[tuple[int, int]]) -> Iterator[Disguised]:
        """Each disguised anchor in `spans` of `data`, with its window undone."""
        if self._search is None:
            return
        view = memoryview(data)
        hits = 0
        for lo, hi in spans:
            for index, start, end in self._search.find_matches_as_indexes(
                view[lo:hi], overlapping=True
            ):
                which, how_index = divmod(self._meaning[index], len(_HOWS))
                how = _HOWS[how_index]
                window = _undo(how, data, lo + start, lo + end)
                yield Disguised(how, self._anchors[which], window)
                hits += 1
                if hits >= _MAX_HITS:
                    return


# Every disguise, in the order `_variants` gives them.
_HOWS = ("reversed", *_CIPHERS, "case-changed", "case-changed", "case-changed")


def _variants(anchor: bytes) -> list[bytes]:
    return [
        anchor[::-1],
        *(anchor.translate(table) for table, _ in _CIPHERS.values()),
        anchor.swapcase(),
        anchor.upper(),
        anchor.lower(),
    ]


def _undo(how: str, data: bytes, start: int, end: int) -> bytes:
    if how == "reversed":
        # The key ends with the reversed anchor: it lies before the hit.
        return data[max(0, end - _SPAN) : end + _BEFORE][::-1]
    window = data[max(0, start - _BEFORE) : start + _SPAN]
    cipher = _CIPHERS.get(how)
    return window.translate(cipher[1]) if cipher else window


def case_folded(pattern: CredentialPattern) -> re.Pattern[bytes]:
    """`pattern`'s regex matching in any case."""
    return re.compile(pattern.regex.pattern, pattern.regex.flags | re.IGNORECASE)
