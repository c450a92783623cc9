"""The fake internet the corpus is replayed against, and the cage configs compared.

It runs inside a network namespace whose only interface is loopback
(`tests/support/netns.py`), so nothing a case names can be reached for real. Every
host name resolves (through a fake DNS server) to `OUTSIDE`, an address of the
benchmarking range added to loopback; one recording HTTPS/HTTP/WebSocket server
listens on ports 443 and 80 of every local address, so a request the proxy lets
through arrives there whether it named a host, 127.0.0.1, ::1 or (each IPv4
literal of the corpus also being given to loopback) 10.0.0.1. The proxy may
connect to `OUTSIDE` only (`network.allow_cidrs`): every other address is refused
by its egress rules as in a real cage.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import tempfile
import typing
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import trustme
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

from agentcage.config.inspection import SecretsConfig

OUTSIDE = "198.18.0.1"  # RFC 2544 benchmarking range: where every name resolves
_DOC_FIELD = "documentation_values"


@dataclass(frozen=True)
class Setting:
    """One cage config the corpus is run against."""

    label: str
    allow: tuple[str, ...] | None  # registrable domains; None: every domain but `block`
    block: tuple[str, ...] = ()
    documentation: str | None = None  # secrets.documentation_values; None: the default

    def yaml(self, dns: str) -> str:
        if self.allow is None:
            domains = "{block: [" + ", ".join(self.block) + "]}"
        else:
            domains = "{allow: [" + ", ".join(self.allow) + "]}"
        lines = [
            "name: egress-bench",
            "container: {image: 'docker.io/library/python:3.12-slim'}",
            f"domains: {domains}",
            f'dns_servers: ["{dns}"]',
            f"network: {{allow_cidrs: [{OUTSIDE}/32]}}",
            "rate_limit: false",
            "logging: {allowed_requests: true}",
        ]
        if self.documentation is not None:
            lines.append(f"secrets: {{{_DOC_FIELD}: {self.documentation}}}")
        return "\n".join(lines) + "\n"


def documentation_choices() -> tuple[str, ...]:
    """The settings of `secrets.documentation_values`, each reported."""
    return typing.get_args(SecretsConfig.model_fields[_DOC_FIELD].annotation)


def settings(allow: Iterable[str], block: Iterable[str]) -> list[Setting]:
    """The allowlist config (the benign cases' domains) and the allow-all one, the
    latter once per documentation-values setting."""
    out = [Setting("allowlist", tuple(sorted(set(allow))))]
    for choice in documentation_choices():
        out.append(Setting(f"allow-all, docs {choice}", None, tuple(sorted(set(block))), choice))
    return out


def extra_addresses(urls: Iterable[str]) -> list[str]:
    """`OUTSIDE` and every IPv4 address a URL names outside 127/8 and 0/8, which
    loopback must hold for a request that gets through to arrive."""
    out = [OUTSIDE]
    for url in urls:
        address = ipv4_of(urllib.parse.urlsplit(url).hostname or "")
        if address is not None and address.packed[0] not in (0, 127) and str(address) not in out:
            out.append(str(address))
    return out


def ipv4_of(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address `host` spells in any form a C resolver accepts (0x7f000001,
    0177.0.0.1, 2130706433), else None."""
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def registrable(host: str) -> str:
    return ".".join(host.lower().rstrip(".").split(".")[-2:])


class Sandbox:
    """The fake DNS and the recording server, shared by every config; a proxy per config."""

    def __init__(self, names: Iterable[str]) -> None:
        self._stack = contextlib.ExitStack()
        self.workdir = Path(self._stack.enter_context(tempfile.TemporaryDirectory()))
        hosts = sorted({n for n in names if n and ipv4_of(n) is None and ":" not in n})
        self.dns = self._stack.enter_context(FakeDns({h: [OUTSIDE] for h in hosts}))
        self.upstream = self._stack.enter_context(
            Upstream(trustme.CA(), hosts, address="::", ports=(443, 80))
        )

    def proxy(self, setting: Setting, index: int) -> ProxyProcess:
        folder = self.workdir / f"proxy{index}"
        folder.mkdir()
        config = folder / "cage.yaml"
        config.write_text(setting.yaml(self.dns.address))
        proxy = ProxyProcess(config, folder, upstream_ca=self.upstream.ca_pem)
        return proxy.start(timeout=60)

    def close(self) -> None:
        self._stack.close()
