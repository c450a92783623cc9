"""The optional C accelerator for the hottest byte passes (see `_native.c`).

Built into the wheel by `hatch_build.py`. Where it is missing (a build with
AGENTCAGE_NO_NATIVE=1), the pure-Python versions give the same results, slower;
`agentcage proxy run` says so when it starts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol


class Native(Protocol):
    ANCHORS_IN_VECTORS: int

    def canonical(self, data: bytes, fold: bytes, keep: bytes, /) -> bytes: ...

    def runs(self, data: bytes, marks: bytes, min_len: int, /) -> list[tuple[int, int]]: ...

    def entropy(self, data: bytes, /) -> float: ...

    def followed(self, data: bytes, lead: int, marks: bytes, /) -> bool: ...

    def words(
        self,
        data: bytes,
        prefixes: bytes,
        shortest: int,
        longest: int,
        max_gap: int,
        min_words: int,
        /,
    ) -> list[tuple[int, int]]: ...

    def grams(
        self, data: bytes, first: bytes, second: bytes, solo: bytes, shift: int, /
    ) -> list[int]: ...

    def dejunked(self, data: bytes, periods: bytes, /) -> bytes: ...

    def b64_pieces(
        self,
        run: bytes,
        all_below: int,
        decode: Callable[[bytes | memoryview], bytes],
        error: type[Exception],
        /,
    ) -> list[bytes]: ...

    def notable(
        self, pieces: list[bytes], first: bytes, sample: int, share: float, /
    ) -> list[int]: ...

    def anchors(
        self, data: bytes, needles: Sequence[bytes], buckets: bytes, lo: int, hi: int, /
    ) -> dict[bytes, list[int]]: ...


def _load() -> Native | None:
    try:
        from agentcage.policy import _native
    except ImportError:
        return None
    return _native


native = _load()
