from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agentcage.dns.render import Listen, render
from agentcage.errors import DnsError
from tests.unit.dns.builders import cage_config

SERVERS = Path("/run/agentcage-dns/servers.conf")
LOCAL = Listen.parse("127.0.0.1:5353")


def test_allowlist_forwards_entries_and_sinkholes_the_rest() -> None:
    config = cage_config(dns_servers=["127.0.0.1:5300", "[::1]:5301", "192.0.2.53"])
    rendered = render(config, LOCAL, SERVERS)
    main = rendered.main.splitlines()
    for line in (
        "no-resolv",
        "no-hosts",
        "log-facility=-",
        "address=/#/198.51.100.1",
        "address=/#/2001:db8::1",
        "listen-address=127.0.0.1",
        "bind-interfaces",
        "port=5353",
        f"servers-file={SERVERS}",
    ):
        assert line in main
    assert not any(line.startswith("server=") for line in main)  # no default upstream
    assert not any(line.startswith("dhcp") for line in main)
    assert not any(line.startswith("log-queries") for line in main)  # the front logs queries
    servers = rendered.servers.splitlines()
    assert "server=/allowed.example/127.0.0.1#5300" in servers
    assert "server=/allowed.example/::1#5301" in servers
    assert "server=/workers.dev/192.0.2.53#53" in servers
    assert not any("10.0.0.0" in line for line in servers)  # CIDR entries are the proxy's
    assert len([s for s in servers if s.startswith("server=")]) == 6


def test_blocked_zones_are_refused_in_allowlist_mode() -> None:
    rendered = render(cage_config(), LOCAL, SERVERS, blocked_zones=["evil.workers.dev"])
    assert "server=/evil.workers.dev/#" in rendered.servers.splitlines()


def test_blocklist_is_the_mirror_image() -> None:
    config = cage_config(domains={"block": ["pastebin.com", "evil.example"]})
    rendered = render(config, LOCAL, SERVERS, blocked_zones=["t.tunnel.example"])
    main = rendered.main.splitlines()
    assert "address=/#/198.51.100.1" not in main
    for name in ("pastebin.com", "evil.example"):
        assert f"address=/{name}/198.51.100.1" in main
        assert f"address=/{name}/2001:db8::1" in main
        assert f"server=/{name}/" in main  # other types answered locally, never forwarded
    servers = rendered.servers.splitlines()
    assert "server=127.0.0.1#5300" in servers
    assert "server=/t.tunnel.example/" in servers


def test_no_user_switch_is_rendered_and_wildcard_listens_everywhere() -> None:
    # dnsmasq is started as its account (files.RunAs), never told to switch to one.
    rendered = render(cage_config(), Listen.parse("0.0.0.0:53"), SERVERS)
    main = rendered.main.splitlines()
    assert not any(line.startswith(("user=", "group=")) for line in main)
    assert not any(line.startswith("listen-address") for line in main)


def test_no_upstream_is_an_error_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    config = cage_config(dns_servers=None)
    monkeypatch.setattr(type(config), "effective_dns_servers", lambda self: [])
    with pytest.raises(DnsError) as err:
        render(config, LOCAL, SERVERS)
    assert err.value.hint is not None and "dns_servers" in err.value.hint
    # An empty allowlist needs no upstream at all.
    render(cage_config(dns_servers=[], domains={"allow": []}), LOCAL, SERVERS)


@pytest.mark.parametrize("zone", ["evil.com/1.2.3.4", "a\nserver=1.2.3.4", "a b", "x#y"])
def test_nothing_can_inject_a_directive(zone: str) -> None:
    with pytest.raises(DnsError):
        render(cage_config(), LOCAL, SERVERS, blocked_zones=[zone])


def test_servers_file_path_must_be_plain() -> None:
    with pytest.raises(DnsError):
        render(cage_config(), LOCAL, Path("/tmp/a b/servers.conf"))
    with pytest.raises(DnsError):
        render(cage_config(), LOCAL, Path("relative.conf"))


@pytest.mark.parametrize(
    ("text", "shown"),
    [("127.0.0.1:5353", "127.0.0.1:5353"), ("[::1]:53", "[::1]:53"), ("10.0.0.1", "10.0.0.1:53")],
)
def test_listen_parse(text: str, shown: str) -> None:
    assert str(Listen.parse(text)) == shown


@pytest.mark.parametrize("text", ["localhost:53", "127.0.0.1:99999", "1.2.3.4:x"])
def test_listen_parse_rejects(text: str) -> None:
    with pytest.raises(DnsError):
        Listen.parse(text)


def test_an_entry_inside_a_blocked_zone_loses_its_upstream() -> None:
    # A tunnel straight under an entry blocks the entry itself. dnsmasq 2.90 lets the
    # `#` line win over an upstream line for the same domain, but the file should not
    # depend on that choice: the upstream line goes.
    config = cage_config(domains={"allow": ["workers.dev", "api.evil.example", "ok.example"]})
    rendered = render(config, LOCAL, SERVERS, blocked_zones=["workers.dev", "evil.example"])
    servers = rendered.servers.splitlines()
    assert not any(s.startswith(("server=/workers.dev/1", "server=/api.evil")) for s in servers)
    assert "server=/workers.dev/#" in servers and "server=/evil.example/#" in servers
    assert "server=/ok.example/127.0.0.1#5300" in servers


def test_an_entry_with_a_line_break_never_reaches_dnsmasq() -> None:
    # Whether the schema or the renderer refuses it, no config line may break.
    try:
        config = cage_config(domains={"allow": ["a\n.b.com"]})
    except ValidationError:
        return
    with pytest.raises(DnsError):
        render(config, LOCAL, SERVERS)


@pytest.mark.parametrize("listing", [{"allow": ["allowed.example"]}, {"block": ["pastebin.com"]}])
def test_learn_mode_forwards_everything_and_sinkholes_nothing(listing: dict[str, object]) -> None:
    config = cage_config(domains={**listing, "enforcement": "learn"})
    rendered = render(config, LOCAL, SERVERS, blocked_zones=["t.tunnel.example"])
    main = rendered.main.splitlines()
    assert not any(line.startswith("address=") for line in main)
    assert not any(line.startswith("server=") for line in main)
    servers = rendered.servers.splitlines()
    assert "server=127.0.0.1#5300" in servers  # a default upstream
    assert "server=/t.tunnel.example/" in servers  # NXDOMAIN, never the default upstream
