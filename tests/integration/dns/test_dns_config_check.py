"""Every shape of rendered config is accepted by the installed `dnsmasq --test`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentcage.config.context import LoadContext
from agentcage.config.schema import CageConfig
from agentcage.dns import render_checked
from agentcage.dns.files import check
from agentcage.dns.render import Listen, Rendered, render
from agentcage.errors import DnsError

pytestmark = pytest.mark.integration

SERVERS = Path("/run/agentcage-dns/servers.conf")


def _config(**overrides: Any) -> CageConfig:
    data: dict[str, Any] = {
        "name": "check",
        "container": {"image": "docker.io/library/python:3.12-slim"},
        "dns_servers": ["192.0.2.53"],
    }
    data.update(overrides)
    return CageConfig.model_validate(data, context=LoadContext(check_paths=False))


CONFIGS = {
    "empty allowlist": _config(),
    "allowlist": _config(domains={"allow": ["anthropic.com", "github.com", "10.0.0.0/8"]}),
    "underscores and punycode": _config(
        domains={"allow": ["_acme-challenge.example.com", "xn--bcher-kva.example"]}
    ),
    "ipv6 upstreams with ports": _config(
        domains={"allow": ["example.com"]}, dns_servers=["[2001:db8::53]:5353", "2001:db8::54"]
    ),
    "many entries": _config(domains={"allow": [f"host{i}.example.com" for i in range(500)]}),
    "blocklist": _config(domains={"block": ["pastebin.com", "transfer.sh", "192.0.2.0/24"]}),
    "empty blocklist": _config(domains={"block": []}),
}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("listen", ["127.0.0.1:5353", "0.0.0.0:53", "[::1]:53"])
def test_dnsmasq_accepts_the_rendered_config(name: str, listen: str) -> None:
    rendered = render_checked(CONFIGS[name], Listen.parse(listen), SERVERS)
    assert rendered.main.count("\n") >= 10


def test_dnsmasq_accepts_blocked_zones() -> None:
    for config in (CONFIGS["allowlist"], CONFIGS["blocklist"]):
        rendered = render(
            config,
            Listen.parse("0.0.0.0:53"),
            SERVERS,
            blocked_zones=["evil.github.com", "t.attacker.example"],
        )
        check(rendered)


def test_check_reports_what_dnsmasq_rejects() -> None:
    with pytest.raises(DnsError) as err:
        check(Rendered(main="no-such-option\n", servers=""))
    assert "dnsmasq rejected the rendered config" in str(err.value)
    assert "no-such-option" in str(err.value)
