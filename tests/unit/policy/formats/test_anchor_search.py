"""The one-pass search for the anchors of the formats searched anywhere."""

from __future__ import annotations

import base64
import platform
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcage.policy.formats import anchor_search
from agentcage.policy.formats.anchor_search import WideAnchorSearch, buckets, python_anchors
from agentcage.policy.formats.builtin import BUILTIN_PATTERNS
from agentcage.policy.formats.scanner import PatternScanner

# Few letters, so needles occur often, overlap, and share nibbles with other bytes
# (A and a, Q and q differ only in the high nibble; 1 and q only in the low one).
_ALPHABET = list(b"aAbqQ1~:/ \x00\x80\xff")
_NEEDLE = st.lists(st.sampled_from(_ALPHABET), min_size=1, max_size=6).map(bytes)


@st.composite
def _searches(draw: st.DrawFn) -> tuple[bytes, list[bytes], bytes, int, int]:
    data = bytes(draw(st.lists(st.sampled_from(_ALPHABET), max_size=300)))
    data = b"x" * draw(st.integers(0, 40)) + data  # every offset of the 16-byte blocks
    needles = draw(st.lists(_NEEDLE, max_size=30))
    assigned = bytes(
        draw(st.lists(st.integers(0, 7), min_size=len(needles), max_size=len(needles)))
    )
    lo = draw(st.integers(0, len(data)))
    hi = draw(st.integers(lo, len(data)))
    return data, needles, assigned, lo, hi


def _native() -> object:
    if anchor_search.native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    return anchor_search.native


@settings(max_examples=1000, deadline=None)
@given(_searches())
def test_the_one_pass_search_matches_the_python_definition(
    search: tuple[bytes, list[bytes], bytes, int, int],
) -> None:
    # Any bucket assignment gives the same result: the buckets only sort needles. The
    # needles repeat and overlap (few letters), and some are listed twice.
    _native()
    assert anchor_search.native is not None
    data, needles, assigned, lo, hi = search
    expected = python_anchors(data, needles, lo, hi)
    assert anchor_search.native.anchors(data, needles, assigned, lo, hi) == expected
    assert anchor_search.native.anchors(data, needles, buckets(needles), lo, hi) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=0, max_size=2000), st.lists(st.binary(min_size=1, max_size=4), max_size=12)
)
def test_any_bytes_and_needles_match_the_python_definition(
    data: bytes, needles: list[bytes]
) -> None:
    _native()
    assert anchor_search.native is not None
    found = anchor_search.native.anchors(data, needles, buckets(needles), 0, len(data))
    assert found == python_anchors(data, needles, 0, len(data))


def test_the_builtin_anchors_in_a_large_body_are_found_as_the_python_definition_finds_them() -> (
    None
):
    _native()
    assert anchor_search.native is not None
    rng = random.Random(7)
    scanner = PatternScanner(BUILTIN_PATTERNS, disguised=False)
    needles = sorted(
        {a for p in scanner.patterns if p.anywhere and p.shape is None for a in p.anchors}
    )
    words = [*needles, b"user", b"password", b"the", b"://x", b"Q~Q~", b"\n", b"PRIVATE KEY-"]
    data = b" ".join(rng.choice(words) for _ in range(20_000))
    found = anchor_search.native.anchors(data, needles, buckets(needles), 0, len(data))
    assert found == python_anchors(data, needles, 0, len(data))
    assert set(found) == set(needles)


def test_bad_arguments_are_refused() -> None:
    native = _native()
    assert native is anchor_search.native and native is not None
    with pytest.raises(ValueError, match="non-empty"):
        native.anchors(b"data", [b""], b"\0", 0, 4)
    with pytest.raises(ValueError, match="below 8"):
        native.anchors(b"data", [b"a"], b"\x08", 0, 4)
    with pytest.raises(ValueError, match="one byte per needle"):
        native.anchors(b"data", [b"a", b"b"], b"\0", 0, 4)
    with pytest.raises(ValueError, match="lo <= hi"):
        native.anchors(b"data", [b"a"], b"\0", 0, 5)
    with pytest.raises(ValueError, match="lo <= hi"):
        native.anchors(b"data", [b"a"], b"\0", 3, 2)
    with pytest.raises(ValueError, match="non-empty bytes"):
        native.anchors(b"data", [b"a", "b"], b"\0\0", 0, 4)
    assert native.anchors(b"data", [], b"", 0, 4) == {}
    # Bytes listed twice are one key, their places listed once.
    assert native.anchors(b"aXaa", [b"a", b"b", b"a"], b"\0\1\2", 0, 4) == {b"a": [0, 2, 3]}


def _bodies() -> list[bytes]:
    screenshot = base64.b64encode(random.Random(3).randbytes(30_000))
    return [
        b"",
        b"Q~",
        b"apikey=1 " * 100,  # small: one search for all
        b"prose about a machine and a service_account token " * 500,
        # A long token run: the gapped anchors skip its middle, the solid ones do not.
        b"x apikey " + screenshot[:9000] + b"OKENmachine" + screenshot[9000:] + b" PRIVATE KEY-",
        b"assword" + screenshot + b"://",
        random.Random(5).randbytes(40_000),
    ]


def test_the_search_with_and_without_the_accelerator_finds_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    solid = [b"apikey", b"OKEN", b"Q~"]
    gapped = [b"apikey", b"://", b"assword", b"PRIVATE KEY", b"machine", b"service_account"]
    search = WideAnchorSearch(solid, gapped)
    accelerated = [search.present(body) for body in _bodies()]
    monkeypatch.setattr(anchor_search, "native", None)
    assert [search.present(body) for body in _bodies()] == accelerated
    # Inside the long run only the solid anchors are looked for.
    assert accelerated[4][b"OKEN"] == [9009]
    assert b"machine" not in accelerated[4]
    assert set(accelerated[5]) == {b"assword", b"://"}


def test_the_vector_pass_is_taken_on_x86_64() -> None:
    # Without it (other CPUs) the automata are kept: the byte loop would be slower.
    native = _native()
    assert native is anchor_search.native and native is not None
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the 16-byte pass is written for x86-64")
    assert native.ANCHORS_IN_VECTORS == 1
