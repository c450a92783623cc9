"""A base64 or hex run decoded from each offset a wrapped value could start at.

A value encoded inside a longer run starts wherever its writer put it, so a run is
decoded from each of its first four offsets (base64) or two (hex), and only from
its start when long: an image or a pack is then decoded once, not four times.
"""

from __future__ import annotations

import binascii

from agentcage.policy.accelerator import native

# Runs this long are decoded at all alignments; longer ones (images, packs) only
# where they start, so a multi-megabyte blob is decoded once.
ALIGN_ALL_BELOW = 4096
_URLSAFE = bytes.maketrans(b"-_", b"+/")


def b64_alignments(run: bytes) -> list[bytes]:
    """`run` decoded as base64 from each of its first four offsets (from the first
    only when long), the empty results and those that are no base64 left out."""
    if native is None:
        return python_b64_alignments(run)
    return native.b64_pieces(run, ALIGN_ALL_BELOW, binascii.a2b_base64, binascii.Error)


def python_b64_alignments(run: bytes) -> list[bytes]:
    """`b64_alignments` without the accelerator (and the definition it is tested against). The
    padding is stripped and a URL-safe run translated once for all four; a lone last
    character encodes nothing and is dropped; only the last group is padded (copies
    of a megabyte run are the cost here)."""
    body = run.rstrip(b"=")
    if b"-" in body or b"_" in body:
        body = body.translate(_URLSAFE)
    pieces = []
    for offset in range(4) if len(run) < ALIGN_ALL_BELOW else range(1):
        part = body[offset:] if offset else body
        usable = len(part) - (len(part) % 4 == 1)
        whole = usable - usable % 4
        try:
            piece = binascii.a2b_base64(memoryview(part)[:whole])
            if whole < usable:
                piece += binascii.a2b_base64(part[whole:usable] + b"=" * (whole + 4 - usable))
        except binascii.Error:
            continue
        if piece:
            pieces.append(piece)
    return pieces


def hex_alignments(run: bytes) -> list[bytes]:
    """`run` (hex digits only) decoded from its first two offsets (the first only when
    long), the empty results left out."""
    offsets = range(2) if len(run) < ALIGN_ALL_BELOW else range(1)
    return [piece for offset in offsets if (piece := _hex_of(run[offset:]))]


def _hex_of(body: bytes) -> bytes:
    return binascii.unhexlify(body[: len(body) - len(body) % 2])
