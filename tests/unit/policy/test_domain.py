from __future__ import annotations

import pytest

from agentcage.errors import PolicyError
from agentcage.policy.inspectors.domain import DomainInspector
from agentcage.policy.types import Verdict
from tests.unit.policy.helpers import frame, policy, request


def test_allowlist_allows_listed_domains_and_subdomains() -> None:
    inspector = DomainInspector("allowlist", ["example.com"])
    assert inspector.check("example.com") is None
    assert inspector.check("api.EXAMPLE.com.") is None
    blocked = inspector.check("notexample.com")
    assert blocked is not None and blocked.verdict is Verdict.BLOCK
    assert "not in the domain allowlist" in blocked.reason
    # The reason says how to let it through (a package manager prints only "403").
    assert "add it to domains.allow" in blocked.reason


def test_empty_allowlist_blocks_everything() -> None:
    inspector = DomainInspector("allowlist", [])
    for host in ("example.com", "localhost", "127.0.0.1"):
        finding = inspector.check(host)
        assert finding is not None and finding.verdict is Verdict.BLOCK


def test_blocklist_blocks_listed_only() -> None:
    inspector = DomainInspector("blocklist", ["evil.com"])
    assert inspector.check("good.org") is None
    finding = inspector.check("cdn.evil.com")
    assert finding is not None and finding.rules == ("blocklisted",)


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "0x7f.1", "[::1]", "::ffff:7f00:1"])
def test_ip_literals_blocked_unless_covered(host: str) -> None:
    bare = DomainInspector("allowlist", ["example.com"])
    finding = bare.check(host)
    assert finding is not None and finding.rules == ("ip-literal",)
    covered = DomainInspector("allowlist", ["127.0.0.0/8", "::1"])
    assert covered.check(host) is None
    assert DomainInspector("blocklist", []).check(host) is not None


def test_unicode_lookalike_does_not_match_ascii_entry() -> None:
    inspector = DomainInspector("allowlist", ["example.com"])
    # U+0435 (Cyrillic ie) in place of the Latin one: a different (punycode) name.
    assert inspector.check("\u0435xample.com") is not None
    assert inspector.check("example\uff0ecom") is None  # full-width dot is just a dot


def test_invalid_host_is_blocked_not_raised() -> None:
    finding = DomainInspector("allowlist", ["example.com"]).check("1.2.3.999999")
    assert finding is not None and finding.rules == ("invalid-host",)


def test_live_add_and_remove_through_the_facade() -> None:
    engine = policy(domains={"allow": ["example.com"]})
    assert engine.check_request(request("api.github.com")).verdict is Verdict.BLOCK
    engine.add_domain("github.com")
    assert engine.check_request(request("api.github.com")).verdict is Verdict.ALLOW
    engine.remove_domain("github.com")
    engine.remove_domain("github.com")  # removing twice is harmless
    assert engine.check_request(request("api.github.com")).verdict is Verdict.BLOCK
    engine.add_domain("192.0.2.0/24")
    assert engine.check_request(request("192.0.2.10")).verdict is Verdict.ALLOW
    with pytest.raises(PolicyError) as info:
        engine.add_domain("not a host")
    assert info.value.hint


def test_frames_are_rechecked_so_removal_cuts_open_sockets() -> None:
    engine = policy(domains={"allow": ["example.com"]})
    assert engine.check_frame(frame(b"hi", "ws.example.com")).verdict is Verdict.ALLOW
    engine.remove_domain("example.com")
    assert engine.check_frame(frame(b"hi", "ws.example.com")).verdict is Verdict.BLOCK


def test_live_entries_are_spelled_as_in_the_config() -> None:
    engine = policy(domains={"allow": []})
    engine.add_domain("*.Example.COM.")
    assert engine.check_request(request("api.example.com")).verdict is Verdict.ALLOW
    engine.remove_domain(".example.com")
    assert engine.check_request(request("api.example.com")).verdict is Verdict.BLOCK
    for bad in ("https://example.com/", "exa mple.com", "10.0.0.0/33", ""):
        with pytest.raises(PolicyError):
            engine.add_domain(bad)
