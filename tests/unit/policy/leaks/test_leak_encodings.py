from __future__ import annotations

import base64
import os

import pytest

from agentcage.policy.leaks.encodings import base32_core, base64_core, canonical, variants

VALUE = b"sk-ant-api03-Zx9Qw3Er5Ty7"


@pytest.mark.parametrize("offset", [0, 1, 2])
@pytest.mark.parametrize("length", [8, 9, 10, 11, 40])
def test_base64_core_appears_whatever_surrounds_the_value(offset: int, length: int) -> None:
    value = os.urandom(length)
    core = base64_core(value, offset)
    assert len(core) >= (8 * length) // 6 - 2
    for _ in range(20):
        prefix, suffix = os.urandom(3 * 5 + offset), os.urandom(int.from_bytes(os.urandom(1)) % 4)
        assert core in base64.b64encode(prefix + value + suffix)


@pytest.mark.parametrize("offset", range(5))
def test_base32_core_appears_whatever_surrounds_the_value(offset: int) -> None:
    value = os.urandom(23)
    core = base32_core(value, offset)
    for _ in range(20):
        prefix = os.urandom(5 * 3 + offset)
        assert core in base64.b32encode(prefix + value + os.urandom(3))


def test_offsets_outside_a_group_are_refused() -> None:
    with pytest.raises(ValueError):
        base64_core(VALUE, 3)
    with pytest.raises(ValueError):
        base32_core(VALUE, 5)


def test_canonical_form_drops_separators_and_distributes_over_concatenation() -> None:
    assert canonical(b"s-k.a n\nt_x/y+z=") == b"skantxyz"
    a, b = b"ab-c", b".d e"
    assert canonical(a + b) == canonical(a) + canonical(b)


def test_variants_cover_every_technique_the_matcher_promises() -> None:
    names = {v.technique.split("@")[0] for v in variants(VALUE)}
    assert names == {
        "raw",
        "reversed",
        "rot13",
        "html-entity",
        "lowercase",
        "hex",
        "hex-escape",
        "percent",
        "percent2",
        "json",
        "unicode-escape",
        "base64",
        "base64url",
        "base32",
    }


def test_variants_are_deterministic_and_structurally_equal_across_values() -> None:
    # The scrubber pairs the i-th spelling of a value with the i-th of its placeholder.
    first, second = variants(VALUE), variants(b"{{PLACEHOLDER}}")
    assert [v.technique for v in first] == [v.technique for v in second]
    assert variants(VALUE) == first
