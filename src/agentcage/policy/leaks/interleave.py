"""Guesses at junk characters interleaved with a value, for the `interleaved` and
`dejunked` views.

A value with one junk character after each real one is every other character of
its token run; with two after each, every third. One junk character after every
two, three or four real ones is the data with every third, fourth or fifth character
taken out, at each phase: 2 + 3 + 4 copies of it, so those are read only in
the request's own small views (under 16 KiB, where the text spellings are read too;
not beneath other decodings) and are not decoded further. These are guesses, not
decodings: only known values are looked for in them.
"""

from __future__ import annotations

from agentcage.policy.accelerator import native

_EVERY_OTHER_FROM = 32  # shortest token run read a character in two or three
_PERIODS = (3, 4, 5)  # a junk character after every 2, 3 or 4 real ones
_PERIOD_BYTES = bytes(_PERIODS)


def every_other(run: bytes) -> list[bytes]:
    """One or two junk characters after each real one: every other character of
    `run`, twice, and every third, three times."""
    if len(run) < _EVERY_OTHER_FROM:
        return []
    return [run[0::2], run[1::2], run[0::3], run[1::3], run[2::3]]


def periodic(data: bytes) -> list[bytes]:
    """One junk character after every two, three or four real ones: `data` without
    every third, fourth or fifth character, at each phase. Taken over the whole data
    rather than run by run: a dozen slicings instead of a dozen per run."""
    return [_without(data, period, junk) for period in _PERIODS for junk in range(period)]


def dejunked(data: bytes) -> bytes:
    """The `periodic` copies of `data`, NUL-joined: the `dejunked` view. In C when the
    accelerator is built (nine slicings of a 1 KiB body took 0.027 ms, the one C pass
    0.004), else as `periodic` defines it."""
    if native is not None:
        return native.dejunked(data, _PERIOD_BYTES)
    return b"\0".join(periodic(data))


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
