"""Only the pieces `notable` names get the unwrapper's own look; the others are sure
to need none, so the views are the same as when every piece is looked at."""

from __future__ import annotations

import base64
import gzip
import struct
import unittest.mock

from hypothesis import given, settings
from hypothesis import strategies as st

from agentcage.policy.leaks import Unwrapper, notable_pieces, unwrap
from agentcage.policy.leaks.notable_pieces import notable, python_notable
from agentcage.policy.leaks.unicode_fold import decode_wide, might_be_wide

# Decoded contents a base64 run may carry: random bytes, wide text, a compressed
# stream, a PNG, XOR-ed text, plain text.
_PNG = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + bytes(13)
_CONTENT = (
    st.binary(min_size=1, max_size=90)
    | st.text("hello wrld-", min_size=8, max_size=60).map(lambda t: t.encode("utf-16-le"))
    | st.text("hello wrld-", min_size=8, max_size=60).map(lambda t: t.encode("utf-16-be"))
    | st.text("hello wrld-", min_size=8, max_size=60).map(lambda t: gzip.compress(t.encode()))
    | st.binary(max_size=40).map(lambda b: _PNG + b)
    | st.text("hello wrld-", min_size=8, max_size=60).map(
        lambda t: bytes(c ^ 0xA5 for c in t.encode())
    )
    | st.text("hello wrld-", min_size=8, max_size=60).map(str.encode)
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_CONTENT, st.sampled_from(["", "x", "xy", "xyz"])), max_size=6))
def test_the_views_are_those_of_looking_at_every_piece(contents: list[tuple[bytes, str]]) -> None:
    # A prefix shifts the value inside its run, so all four alignments are exercised.
    data = b" ".join(prefix.encode() + base64.b64encode(content) for content, prefix in contents)
    screened = [(v.data, v.layers) for v in Unwrapper().views(data)]
    with unittest.mock.patch.object(unwrap, "notable", lambda pieces: list(range(len(pieces)))):
        every = [(v.data, v.layers) for v in Unwrapper().views(data)]
    assert screened == every


@settings(max_examples=1000, deadline=None)
@given(
    st.binary(max_size=700)
    | st.text("ab\0-", max_size=300).map(lambda t: t.encode("utf-16-le"))
    | st.text("ab\0-", max_size=300).map(lambda t: t.encode("utf-32-be"))
    | st.text("ab", max_size=300).map(lambda t: t.encode("utf-16"))
)
def test_might_be_wide_holds_wherever_wide_text_is_found(data: bytes) -> None:
    if decode_wide(data) is not None:
        assert might_be_wide(data)


def test_random_bytes_are_not_notable_and_the_kinds_that_need_a_look_are() -> None:
    random_piece = bytes.fromhex("3a5c7e91b2d4f60817293b4d5f61738597a9bbcddfe1f30415273849")
    kinds = [
        random_piece,
        gzip.compress(b"x"),  # a compressed stream's first byte
        _PNG,
        b"plain ascii text",
        bytes(c ^ 0xA5 for c in b"xor-ed text"),  # one top bit throughout
        "wide text here".encode("utf-16-le"),
        b"\xff\xfe" + random_piece,  # a BOM
        b"\x00\x01\x02\x03ftypisom",  # an MP4 box
    ]
    assert notable(kinds) == python_notable(kinds) == list(range(1, len(kinds)))
    assert notable_pieces.python_notable([b""]) == [0]
