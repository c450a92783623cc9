"""Which pieces decoded from a base64 run the unwrapper must look at one by one.

Nearly every piece of a run (a hash, an ID, a random token) is random bytes that the
unwrapper only adds to the base64 view, and a 1 MiB lockfile has some 60,000 runs. A
piece needs the unwrapper's own tests only when it might start a media file or a
compressed stream (its first byte; `ftyp` at 4), might be XOR-ed text (one top bit
throughout) or might be UTF-16 or UTF-32 text (`might_be_wide`). `notable` names those
pieces, in C where the accelerator is built, so the rest join the view in one step.
"""

from __future__ import annotations

from agentcage.policy.accelerator import native
from agentcage.policy.leaks.unicode_fold import WIDE_SAMPLE, WIDE_SHARE, might_be_wide
from agentcage.policy.media import MEDIA_FIRST_BYTES
from agentcage.policy.scrubbing.packing import SIGNATURE_STARTS

FIRST_BYTES = bytes(b in MEDIA_FIRST_BYTES or b in SIGNATURE_STARTS for b in range(256))
_HIGH = bytes(range(0x80, 0x100))


def notable(pieces: list[bytes]) -> list[int]:
    """The indexes of `pieces` that need a look of their own, in order."""
    if native is None:
        return python_notable(pieces)
    return native.notable(pieces, FIRST_BYTES, WIDE_SAMPLE, WIDE_SHARE)


def python_notable(pieces: list[bytes]) -> list[int]:
    """`notable` without the accelerator (and the definition it is tested against)."""
    return [index for index, piece in enumerate(pieces) if _notable(piece)]


def _notable(piece: bytes) -> bool:
    return (
        not piece
        or FIRST_BYTES[piece[0]] == 1
        or piece[4:8] == b"ftyp"
        or keeps_one_top_bit(piece)
        or might_be_wide(piece)
    )


def keeps_one_top_bit(piece: bytes) -> bool:
    """Whether every byte of a (non-empty) `piece` has the same top bit, as XOR-ed text
    keeps it: `unxor` would find any other piece random, only slower."""
    # `lstrip` stops at the first low byte; `min` would walk the whole piece.
    return piece.isascii() or (piece[0] >= 0x80 and not piece.lstrip(_HIGH))
