"""Guesses at junk characters interleaved with a value, for the `interleaved` view.

A value with one junk character after each real one is every other character of
its token run; with two after each, every third. One junk character after every
two, three or four real ones is the run with every third, fourth or fifth character
taken out, at each phase: 2 + 3 + 4 copies of the run, so those are read only in
small views (where the text spellings are read too) and from runs of 16 characters
on. These are guesses, not decodings: only known values are looked for in them.
"""

from __future__ import annotations

from agentcage.policy.leaks.textcodes import SEARCHED_BELOW

_EVERY_OTHER_FROM = 32  # shortest token run read a character in two or three
_PERIODS = (3, 4, 5)  # a junk character after every 2, 3 or 4 real ones


def deinterleaved(run: bytes, view_size: int) -> list[bytes]:
    """The readings of `run` (a token run of a view of `view_size` bytes) with
    interleaved junk taken out."""
    out: list[bytes] = []
    if len(run) >= _EVERY_OTHER_FROM:
        out += (run[0::2], run[1::2], run[0::3], run[1::3], run[2::3])
    if view_size < SEARCHED_BELOW:
        out += (_without(run, period, junk) for period in _PERIODS for junk in range(period))
    return out


def _without(run: bytes, period: int, junk: int) -> bytes:
    """`run` without the characters at `junk`, `junk + period`, ...: slice
    assignment in C rather than a loop over bytes."""
    rest = run[junk + 1 :]
    keep = period - 1
    whole, tail = divmod(len(rest), period)
    out = bytearray(whole * keep + min(tail, keep))
    for lane in range(keep):
        out[lane::keep] = rest[lane::period]
    return run[:junk] + bytes(out)
