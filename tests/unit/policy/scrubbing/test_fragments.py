"""Pieces of a real value are masked one byte for one, wherever they sit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agentcage.policy.scrubbing.fragments import FragmentMask

VALUE = b"sk-test-REALvalue0123456789abcdefXYZ"
MASK = FragmentMask([VALUE])


def _windows(value: bytes, size: int = 6) -> set[bytes]:
    return {value[i : i + size] for i in range(len(value) - size + 1)}


def test_every_six_byte_piece_is_masked_and_lengths_kept() -> None:
    for start in range(len(VALUE) - 5):
        piece = VALUE[start : start + 6]
        assert MASK.mask(b"<" + piece + b">") == b"<******>", piece


def test_a_longer_piece_is_masked_whole() -> None:
    ten = VALUE[3:13]
    assert MASK.mask(b"range: " + ten + b" end") == b"range: " + b"*" * 10 + b" end"
    assert MASK.mask(VALUE) == b"*" * len(VALUE)


def test_shorter_pieces_and_clean_data_pass_unchanged() -> None:
    clean = b"an ordinary body " + VALUE[:5] + b" with five bytes of the value"
    assert MASK.mask(clean) is clean
    assert MASK.mask_text("nothing here") == "nothing here"


def test_adjacent_pieces_merge_into_one_masked_run() -> None:
    joined = VALUE[20:26] + VALUE[0:6]
    assert MASK.mask(joined) == b"*" * 12


def test_an_empty_mask_and_values_too_short() -> None:
    assert not FragmentMask([])
    assert not FragmentMask([b"short"])
    data = b"short"
    assert FragmentMask([b"short"]).mask(data) is data


def test_text_is_masked_as_its_bytes() -> None:
    assert MASK.mask_text("Content-Disposition: " + VALUE[4:14].decode()) == (
        "Content-Disposition: " + "*" * 10
    )


@given(
    start=st.integers(min_value=0, max_value=len(VALUE) - 6),
    size=st.integers(min_value=6, max_value=len(VALUE)),
    before=st.binary(max_size=40),
    after=st.binary(max_size=40),
)
def test_no_piece_survives(start: int, size: int, before: bytes, after: bytes) -> None:
    piece = VALUE[start : start + size]
    out = MASK.mask(before + piece + after)
    assert len(out) == len(before + piece + after)
    assert not any(window in out for window in _windows(VALUE))
