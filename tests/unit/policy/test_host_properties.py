"""Property tests: every spelling of an address reaches the same verdict."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from agentcage.policy.canonical_hosts import canonical_host
from agentcage.policy.inspectors.domain import DomainInspector

addresses = st.integers(min_value=0, max_value=2**32 - 1)


def _spellings(value: int) -> list[str]:
    octets = list(ipaddress.IPv4Address(value).packed)
    a, b, c, d = octets
    return [
        str(ipaddress.IPv4Address(value)),
        str(value),
        hex(value),
        ".".join(f"0{o:o}" for o in octets),
        ".".join(hex(o) for o in octets),
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}",
        f"[::ffff:{ipaddress.IPv4Address(value)}]",
        str(ipaddress.IPv4Address(value)) + ".",
    ]


@given(addresses)
def test_all_spellings_canonicalize_to_one_address(value: int) -> None:
    expected = ipaddress.IPv4Address(value)
    for spelling in _spellings(value):
        host = canonical_host(spelling)
        assert host.address is not None
        mapped = getattr(host.address, "ipv4_mapped", None)
        assert (mapped or host.address) == expected, spelling


@given(addresses)
def test_no_spelling_escapes_the_allowlist(value: int) -> None:
    inspector = DomainInspector("allowlist", ["example.com"])
    for spelling in _spellings(value):
        assert inspector.check(spelling) is not None, spelling


@given(st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}", fullmatch=True))
def test_subdomains_match_and_lookalike_suffixes_do_not(label: str) -> None:
    inspector = DomainInspector("allowlist", ["example.com"])
    assert inspector.check(f"{label}.example.com") is None
    assert inspector.check(f"{label}example.com") is not None
    assert inspector.check(f"example.com.{label}") is not None
