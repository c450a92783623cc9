"""The C accelerator: built into every install, and equal to the Python definitions."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcage.policy.accelerator import native
from agentcage.policy.leaks.encodings import SEPARATORS, canonical, python_canonical
from agentcage.policy.payload import python_entropy, shannon_entropy
from agentcage.policy.runs import BASE64_TABLE, byte_table, long_runs, python_long_runs

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
