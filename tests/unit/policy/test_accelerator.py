"""The C accelerator: built into every install, and equal to the Python definitions."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import os
import re
import unittest.mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcage.policy import runs, shannon
from agentcage.policy.accelerator import native
from agentcage.policy.formats import anchor_search
from agentcage.policy.formats.shapes import prefix_table, python_words
from agentcage.policy.leaks import alignments, encodings, interleave, notable_pieces
from agentcage.policy.leaks.encodings import SEPARATORS, canonical, python_canonical
from agentcage.policy.leaks.gram_filter import GramFilter, python_grams
from agentcage.policy.runs import BASE64_TABLE, byte_table, long_runs, python_long_runs
from agentcage.policy.shannon import python_entropy, shannon_entropy
from tests.unit.policy.helpers import policy, request

# Bytes that exercise every branch: separators, the escape letters, a backslash,
# upper case, token characters, NUL and high bytes.
_INTERESTING = sorted(set(SEPARATORS) | set(b"\\nrtNRTaZz09+/_-=%{}\x00\x80\xff"))
_DATA = st.lists(st.sampled_from(_INTERESTING), max_size=400).map(bytes) | st.binary(max_size=400)


def test_the_accelerator_is_built_unless_the_build_was_told_to_skip_it() -> None:
    # CI builds it like every user install does; a missing compiler must fail the run.
    if os.environ.get("AGENTCAGE_NO_NATIVE") == "1":
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    assert native is not None


@settings(max_examples=500, deadline=None)
@given(_DATA)
def test_canonical_matches_the_python_definition(data: bytes) -> None:
    assert canonical(data) == python_canonical(data)


# From 512 bytes the C pass takes 16 bytes at a time (SSSE3): escapes and separators
# at every offset of those groups, and groups of nothing but kept or dropped bytes.
_LONG_DATA = st.lists(st.sampled_from(_INTERESTING), min_size=512, max_size=2000).map(bytes) | (
    st.binary(min_size=512, max_size=2000)
)


@settings(max_examples=500, deadline=None)
@given(_LONG_DATA | st.tuples(_DATA, st.integers(520, 700)).map(lambda p: p[0] * p[1]))
def test_canonical_of_long_data_matches_the_python_definition(data: bytes) -> None:
    assert canonical(data) == python_canonical(data)


@settings(max_examples=200, deadline=None)
@given(_LONG_DATA, st.binary(min_size=1, max_size=4))
def test_canonical_with_other_tables_matches_its_definition(data: bytes, dropped: bytes) -> None:
    # Tables the vector pass was not written for (high bytes dropped, nothing folded)
    # go through the byte loop, which reads them as given.
    if native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    fold = bytes(range(256))
    keep = bytes(b not in dropped + b"\\" for b in range(256))
    expected = re.sub(rb"\\[nrt]", b"", data).translate(fold, dropped + b"\\")
    assert native.canonical(data, fold, keep) == expected


@settings(max_examples=500, deadline=None)
@given(_DATA, st.sampled_from([1, 2, 3, 7, 8, 9, 16, 20, 64, 100]))
def test_runs_match_the_python_definition(data: bytes, min_len: int) -> None:
    for table in (BASE64_TABLE, byte_table(b"\\n\x00"), byte_table(bytes(range(256)))):
        assert list(long_runs(data, table, min_len)) == list(python_long_runs(data, table, min_len))


def test_large_inputs_and_edges() -> None:
    body = (b"prose with words " * 5000) + b"x" * 70_000 + b" tail\\n" * 1000
    assert canonical(body) == python_canonical(body)
    assert list(long_runs(body, BASE64_TABLE, 16)) == list(python_long_runs(body, BASE64_TABLE, 16))
    assert canonical(b"") == b""
    assert canonical(b"\\") == b""
    assert canonical(b"a\\") == b"a"
    assert list(long_runs(b"", BASE64_TABLE, 1)) == []


def test_bad_tables_are_refused_not_read_past() -> None:
    if native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    with pytest.raises(ValueError, match="256 bytes"):
        native.runs(b"data", b"short", 1)
    with pytest.raises(ValueError, match="256 bytes"):
        native.canonical(b"data", b"short", bytes(256))
    with pytest.raises(ValueError, match="at least 1"):
        native.runs(b"data", bytes(256), 0)


@settings(max_examples=300, deadline=None)
@given(_DATA)
def test_entropy_matches_the_python_definition(data: bytes) -> None:
    assert abs(shannon_entropy(data) - python_entropy(data)) < 1e-9


def test_the_policy_without_the_accelerator_decides_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A build with AGENTCAGE_NO_NATIVE=1 takes the Python paths everywhere.
    key = "sk-ant-api03-" + "Zq8Xv2Lm4Nc6Bt1Ry3Wu5Ks7Hd9Jf0Gp2Ea4Tb6" * 2
    bodies = [
        json.dumps({"note": "plain text about files and tools " * 200}).encode(),
        json.dumps({"blob": base64.b64encode(key.encode()).decode()}).encode(),
        " ".join(key).encode(),  # spaced out
        bytes(range(256)) * 64,
    ]

    def decisions() -> list[tuple[str, tuple[str, ...]]]:
        engine = policy(
            {"ANTHROPIC_API_KEY": key},
            secret_injection=[{"env": "ANTHROPIC_API_KEY", "inject_to": ["api.anthropic.com"]}],
            domains={"mode": "blocklist", "list": []},
        )
        out = []
        for body in bodies:
            decision = engine.check_request(request("files.example.com", body=body))
            out.append((decision.verdict.value, decision.rules))
        return out

    accelerated = decisions()
    for module in (runs, encodings, shannon, interleave, anchor_search, alignments, notable_pieces):
        monkeypatch.setattr(module, "native", None)
    assert decisions() == accelerated
    assert [verdict for verdict, _ in accelerated][1:3] == ["block", "block"]


_TOKEN_CHARS = st.sampled_from(list(b"AZaz09+/-_Qm7fFgG"))
_HEX_TABLE = byte_table(b"0123456789abcdefABCDEF")
_GAP_CHARS = st.sampled_from(list(b" .=\\\n\x00\x80\xff\x7f@[`{"))
_STRETCH = st.tuples(st.booleans(), st.integers(1, 70), _TOKEN_CHARS, _GAP_CHARS)


@settings(max_examples=400, deadline=None)
@given(st.lists(_STRETCH, max_size=40), st.sampled_from([16, 17, 20, 31, 64]))
def test_long_token_runs_match_the_python_definition(
    stretches: list[tuple[bool, int, int, int]], min_len: int
) -> None:
    # Long runs of the base64 alphabet between gaps of every kind, including bytes
    # that are negative as signed chars: the vector path's territory.
    data = b"".join(
        bytes([token if is_run else gap]) * length for is_run, length, token, gap in stretches
    )
    for table in (BASE64_TABLE, _HEX_TABLE):
        assert list(long_runs(data, table, min_len)) == list(python_long_runs(data, table, min_len))


_WORDY = st.lists(st.sampled_from(sorted(set(b"abnrt \\,\"'A_9.\n"))), max_size=400).map(bytes)
_GROUPS = byte_table(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -")


@settings(max_examples=500, deadline=None)
@given(_DATA | _WORDY, st.sampled_from([8, 14, 15, 16, 20]))
def test_capital_and_digit_runs_match_the_python_definition(data: bytes, min_len: int) -> None:
    # This alphabet has its own vector path (card numbers and IBANs).
    assert list(long_runs(data, _GROUPS, min_len)) == list(python_long_runs(data, _GROUPS, min_len))


@settings(max_examples=800, deadline=None)
@given(
    _WORDY | _DATA,
    st.sampled_from([(1, 3, 2, 2), (3, 8, 4, 3), (2, 5, 1, 2), (3, 8, 4, 12)]),
    st.integers(0, 70),
)
def test_word_stretches_match_the_python_definition(
    data: bytes, rules: tuple[int, int, int, int], shift: int
) -> None:
    if native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    data = b"x" * shift + data  # cross the 64-byte blocks at every offset
    assert native.words(data, b"", *rules) == python_words(data, b"", *rules)
    table = prefix_table()
    assert native.words(data, table, *rules) == python_words(data, table, *rules)


# Listed (BIP-39) words, unlisted ones, short words and breaking bytes: runs of
# twelve listed words come and go at every offset of the 64-byte blocks, so the C
# pass's skipping lookups (it looks up a word only where a run could end) are
# tested against the definition, which looks up every word.
_LISTED = st.sampled_from([b"legal", b"winner", b"thank", b"year", b"wave", b"zoo", b"tool"])
_UNLISTED = st.sampled_from(
    [b"the", b"xylem", b"qwerty", b"a", b"of", b"12", b"Zed", b"verylongword"]
)
_GAP = st.sampled_from([b" ", b"  ", b"\\n", b",", b'"', b"\n", b" . ", b"     "])
_PHRASE = st.lists(
    st.tuples(st.lists(_LISTED, min_size=1, max_size=16) | _UNLISTED.map(lambda w: [w]), _GAP),
    max_size=40,
).map(lambda parts: b"".join(b" ".join(words) + gap for words, gap in parts))


@settings(max_examples=600, deadline=None)
@given(_PHRASE, st.integers(0, 70))
def test_word_stretches_of_listed_words_match_the_python_definition(
    data: bytes, shift: int
) -> None:
    if native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    data = b"x" * shift + b" " + data
    table = prefix_table()
    for rules in [(3, 8, 4, 12), (3, 8, 4, 3), (1, 3, 2, 2), (3, 8, 4, 1)]:
        assert native.words(data, table, *rules) == python_words(data, table, *rules)
        assert native.words(data, b"", *rules) == python_words(data, b"", *rules)


def test_the_tightest_stretch_is_found_at_every_offset() -> None:
    # Twelve three-letter words one space apart between two breaks: the fewest bytes
    # (47) a stretch spans, which the C pass's skipping of whole blocks must not miss.
    if native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    phrase = b" ".join([b"zoo", b"act", b"add", b"age", b"aim", b"air"] * 2)
    eleven = phrase[:-4]
    table = prefix_table()
    for shift in range(130):
        for middle in (phrase, eleven):
            data = b"1" * shift + b"." + middle + b"." + b"1" * 64 + b" zoo act." * 20
            found = native.words(data, table, 3, 8, 4, 12)
            assert found == python_words(data, table, 3, 8, 4, 12)
            assert found == ([(shift + 1, shift + 48)] if middle is phrase else [])


def test_word_stretches_on_large_inputs() -> None:
    if native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    phrase = b"legal winner thank year wave sausage worth useful legal winner thank yellow"
    body = (b"prose with a few words " * 3000) + phrase + b". " + phrase.replace(b" ", b"\\n")
    # The full stop keeps a random lower-case byte from gluing onto "yellow".
    body += b". " + os.urandom(70_000) + b" " + phrase
    table = prefix_table()
    found = native.words(body, table, 3, 8, 4, 12)
    assert found == python_words(body, table, 3, 8, 4, 12)
    assert len(found) == 3
    with pytest.raises(ValueError, match="27"):
        native.words(body, b"short", 3, 8, 4, 12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=8, max_size=40), min_size=1, max_size=8), _DATA)
def test_gram_hits_match_the_python_definition(keys: list[bytes], data: bytes) -> None:
    if native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    tables = GramFilter(keys).tables
    data += b"".join(keys) + data  # hits, at every alignment the data's length gives
    assert native.grams(data, *tables, 13) == python_grams(data, *tables, 13)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(min_size=8, max_size=24), min_size=1, max_size=4),
    st.binary(max_size=300),
    st.integers(min_value=0, max_value=300),
)
def test_gram_windows_hold_every_key_wherever_it_lies(
    keys: list[bytes], data: bytes, at: int
) -> None:
    # Keys of 8-10 bytes have no whole gram 4 bytes after some offsets: their first
    # gram alone must make the hit, and at the end of the data too.
    gram_filter = GramFilter(keys)
    for key in keys:
        placed = data[:at] + key + data[at:]
        start = min(at, len(data))
        windows = gram_filter.windows(placed)
        assert any(lo <= start and start + len(key) <= hi for lo, hi in windows)
        assert windows == _python_windows(gram_filter, placed)


def _python_windows(gram_filter: GramFilter, data: bytes) -> list[tuple[int, int]]:
    import agentcage.policy.leaks.gram_filter as module

    saved, module.native = module.native, None  # type: ignore[assignment]
    try:
        return gram_filter.windows(data)
    finally:
        module.native = saved


def test_a_gram_common_in_prose_is_no_hit_without_the_gram_after_it() -> None:
    # Gram pairs, not single grams: a value spelled with "thef" made a hit at every
    # aligned "thef" of prose (264 windows a MiB of the proxy bench's body).
    gram_filter = GramFilter([b"thefoxjumpsover"])
    prose = b"read thefile and thefolder " * 4000
    assert gram_filter.windows(prose) == []
    placed = prose + b"..thefoxjumpsover"
    [(lo, hi)] = gram_filter.windows(placed)
    assert lo <= placed.find(b"thefoxjumpsover") and hi == len(placed)


def test_gram_windows_hold_every_key_and_bad_tables_are_refused() -> None:
    keys = [b"0123456789abcdef", b"zyxwvuts"]
    body = os.urandom(50_000)
    for shift in range(8):
        data = body[:shift] + keys[0] + body + keys[1]
        windows = GramFilter(keys).windows(data)
        for key in keys:
            at = data.find(key)
            assert any(lo <= at and at + len(key) <= hi for lo, hi in windows)
    with pytest.raises(ValueError, match="8 bytes"):
        GramFilter([b"short"])
    if native is not None:
        with pytest.raises(ValueError, match="2\\*\\*"):
            native.grams(b"data", b"short", b"short", b"short", 13)


@settings(max_examples=500, deadline=None)
@given(_DATA | _LONG_DATA, st.lists(st.integers(2, 9), min_size=1, max_size=4).map(bytes))
def test_dejunked_copies_match_the_python_definition(data: bytes, periods: bytes) -> None:
    if native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    expected = b"\0".join(
        interleave._without(data, period, junk) for period in periods for junk in range(period)
    )
    assert native.dejunked(data, periods) == expected


def test_the_dejunked_view_is_the_periodic_copies_joined(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"s.k-a.n-t-.a.p.i" * 40 + b"xyz"
    for size in (0, 1, 2, 3, 4, 5, 6, len(data)):
        joined = b"\0".join(interleave.periodic(data[:size]))
        assert interleave.dejunked(data[:size]) == joined
        monkeypatch.setattr(interleave, "native", None)
        assert interleave.dejunked(data[:size]) == joined
        monkeypatch.undo()


def test_a_period_below_two_is_refused() -> None:
    if native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    with pytest.raises(ValueError):
        native.dejunked(b"abc", b"\x03\x01")


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(list(b"\\%=u7xA0 a\n\x80")), max_size=200).map(bytes),
    st.sampled_from(list(b"\\%=")),
    st.sets(st.sampled_from(list(b"u7xA0a\\")), max_size=4),
    st.integers(0, 40),
)
def test_followed_matches_the_python_definition(
    data: bytes, lead: int, marked: set[int], shift: int
) -> None:
    # A lead byte at every offset of the 16-byte groups, the last byte of the data too.
    if native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    data = b" " * shift + data
    marks = bytes(b in marked for b in range(256))
    expected = any(a == lead and marks[b] for a, b in itertools.pairwise(data))
    assert native.followed(data, lead, marks) is expected


@settings(max_examples=1500, deadline=None)
@given(
    # The token alphabet with `=` anywhere: a2b_base64's non-strict mode stops at some
    # padding and skips other, and the C must call it on the very same bytes.
    st.text("AZaz09+/-_=", max_size=90).map(str.encode)
    | st.text(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=", max_size=90
    ).map(str.encode),
    st.sampled_from([0, 1, 5, 40, 4096]),
)
def test_base64_pieces_match_the_python_definition(run: bytes, all_below: int) -> None:
    if native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    with unittest.mock.patch.object(alignments, "ALIGN_ALL_BELOW", all_below):
        expected = alignments.python_b64_alignments(run)
    found = native.b64_pieces(run, all_below, binascii.a2b_base64, binascii.Error)
    assert found == expected


# Pieces as decoded base64 gives them: random bytes, and the kinds `notable` must name
# (a first byte it marks, `ftyp` at 4, one top bit throughout, BOMs, NUL-heavy text).
_PIECE = (
    st.binary(min_size=0, max_size=80)
    | st.lists(st.sampled_from([0, 0, 0, 0x41, 0x80, 0xFE, 0xFF, 0x1F, 0x78]), max_size=80).map(
        bytes
    )
    | st.binary(max_size=40).map(lambda b: b[:4].ljust(4, b"\x01") + b"ftyp" + b[4:])
    | st.binary(max_size=60).map(lambda b: bytes(x | 0x80 for x in b))
    | st.binary(max_size=60).map(lambda b: bytes(x & 0x7F for x in b))
    | st.text("ab\0", max_size=600).map(lambda t: t.encode("utf-16-le"))
    | st.binary(min_size=500, max_size=700)
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_PIECE, max_size=6))
def test_notable_pieces_match_the_python_definition(pieces: list[bytes]) -> None:
    if native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    found = native.notable(
        pieces,
        notable_pieces.FIRST_BYTES,
        notable_pieces.WIDE_SAMPLE,
        notable_pieces.WIDE_SHARE,
    )
    assert found == notable_pieces.python_notable(pieces)


def test_notable_pieces_refuses_what_is_not_a_list_of_bytes() -> None:
    if native is None:
        pytest.skip("built with AGENTCAGE_NO_NATIVE=1")
    with pytest.raises(TypeError):
        native.notable([b"x", "x"], notable_pieces.FIRST_BYTES, 512, 0.9)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="256"):
        native.notable([b"x"], b"\0" * 255, 512, 0.9)
