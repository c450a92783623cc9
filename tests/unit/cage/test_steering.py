"""The nftables table of the proxy's namespace (cage/steering.py); run for real in
tests/integration/proxy/test_deny.py."""

from __future__ import annotations

import pytest

from agentcage.cage import steering
from agentcage.cage.steering import TABLE, main, nft_ruleset


def test_the_ruleset_redirects_all_but_the_proxys_own_ports_and_never_forwards() -> None:
    rules = nft_ruleset("eth0", "10.213.0.35", [8080, 443, 80, 8443], 8079)
    # Replaces an earlier table of ours and nothing else.
    assert rules.startswith(f"table ip {TABLE}\ndelete table ip {TABLE}\n")
    assert 'iifname "eth0" ip daddr 10.213.0.35 tcp dport { 80, 443, 8079, 8080, 8443 } accept' in (
        rules
    )
    assert 'iifname "eth0" meta l4proto tcp redirect to :8079' in rules
    assert 'iifname "eth0" udp dport != 8079 dnat to ip daddr : 8079' in rules
    assert "snat to ip saddr : ct original proto-dst" in rules
    assert "type filter hook forward priority filter; policy drop;" in rules


def test_unknown_arguments_print_the_usage() -> None:
    assert main(["gateway"]) == 2


@pytest.mark.parametrize(
    ("raised", "reached"),
    [(ConnectionResetError, True), (ConnectionRefusedError, False), (TimeoutError, False)],
)
def test_a_reset_after_the_handshake_counts_as_the_deny_listener_answering(
    monkeypatch: pytest.MonkeyPatch, raised: type[OSError], reached: bool
) -> None:
    # On a busy host the listener's reset can beat `connect`'s report of success.
    def connect(*_args: object, **_kwargs: object) -> None:
        raise raised()

    monkeypatch.setattr(steering.socket, "create_connection", connect)
    assert steering.deny_listener_answers()[0] is reached


def test_beside_the_dns_sidecar_its_port_53_is_left_alone_before_any_redirect() -> None:
    """In a microVM guest the DNS sidecar's address sits on the proxy's own interface."""
    rules = nft_ruleset("cage0", "10.213.0.35", [8080], 8079, dns="10.213.0.34")
    dns = 'iifname "cage0" ip daddr 10.213.0.34 meta l4proto { tcp, udp } th dport 53 accept'
    udp, tcp = rules.split("chain udp_to_deny")[1], rules.split("chain tcp_to_deny")[1]
    assert udp.index(dns) < udp.index("dnat to")
    assert tcp.index(dns) < tcp.index("redirect to")
    assert "10.213.0.34" not in nft_ruleset("eth0", "10.213.0.35", [8080], 8079)


def test_the_dns_exception_is_the_proxy_namespaces_only(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    monkeypatch.setattr(steering, "steer_proxy", lambda *args: seen.append(args))
    assert main(["proxy", "10.213.0.35", "8079", "8080", "--dns", "10.213.0.34"]) == 0
    assert seen == [("10.213.0.35", [8080], 8079, "10.213.0.34")]
    assert main(["agent", "10.213.0.35", "--dns", "10.213.0.34"]) == 2


def test_the_dns_port_is_the_topologys() -> None:
    from agentcage.cage.topology import DNS_PORT

    assert steering.DNS_PORT == DNS_PORT
