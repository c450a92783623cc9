"""`proxy run` binds its sockets and says READY=1 before it loads mitmproxy (early_start.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agentcage.errors import ConfigError
from agentcage.proxy.early_start import HeldListeners, ProxySettings, listen_addresses, start
from agentcage.proxy.runtime import Sources
from tests.support.notify import NotifySocket

CONFIG = """\
name: early
container: {image: x}
domains: {allow: [example.com]}
network:
  ports:
    - {host: api.example.com, port: 8443, protocol: https}
"""


def _config(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ready_comes_with_the_sockets_listening_and_mitmproxy_not_loaded(tmp_path: Path) -> None:
    # The name fingerprints are published before READY=1 too: the DNS sidecar answers
    # SERVFAIL to every name while they are missing, and the agent starts at READY=1.
    port, prints = _free_port(), tmp_path / "fingerprints.json"
    script = (
        "import json, socket, sys\n"
        "from pathlib import Path\n"
        "from agentcage.proxy.early_start import ProxySettings, start\n"
        "from agentcage.proxy.runtime import Sources\n"
        f"settings = ProxySettings(listen_port={port}, name_fingerprints=Path({str(prints)!r}))\n"
        f"early = start(settings, Sources(config_path=Path({str(_config(tmp_path))!r})))\n"
        # The agent connects right after READY=1: the kernel queues it, nothing reads it.
        f"socket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'mitmproxy')\n"
        "prints = settings.name_fingerprints.exists()\n"
        "print(json.dumps({'notified': early.notified, 'mitmproxy': loaded, 'prints': prints}))\n"
    )
    answer = _ready_then(tmp_path, script)
    assert answer == {"notified": True, "mitmproxy": [], "prints": True}


def test_ready_comes_before_asyncio_and_dnspython_load(tmp_path: Path) -> None:
    # Importing them (and ssl with asyncio) was a third of the proxy's CPU before
    # READY=1. With `dns_servers` set, building the resolver cannot fail on the
    # config, so it loads after READY=1, with mitmproxy; the deny listeners only bind.
    settings = f"listen_port={_free_port()}, transparent='127.0.0.1', deny_flows=True"
    config = _config(tmp_path, CONFIG + "dns_servers: [127.0.0.1]\n")
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from agentcage.proxy.early_start import ProxySettings, start\n"
        "from agentcage.proxy.runtime import Sources\n"
        f"early = start(ProxySettings({settings}), Sources(Path({str(config)!r})))\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('asyncio', 'dns', 'ssl'))\n"
        "deny = early.deny is not None\n"
        "early.runtime.resolver.load()\n"
        "after = 'dns.asyncresolver' in sys.modules\n"
        "print(json.dumps({'at_ready': loaded, 'deny': deny, 'after': after}))\n"
    )
    assert _ready_then(tmp_path, script) == {"at_ready": [], "deny": True, "after": True}


def _ready_then(tmp_path: Path, script: str) -> object:
    """What `script` prints as JSON, in a fresh Python that must have sent READY=1."""
    with NotifySocket(tmp_path) as notify:
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True, text=True, timeout=120, env={**_env(), **notify.env},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert notify.receive(timeout=5) == b"READY=1"
    return json.loads(result.stdout)


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}


def test_a_bad_config_fails_before_anything_listens_or_is_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    bad = _config(tmp_path, "name: Bad_Name\ncontainer: {image: x}\ndomains: {allow: [a.com]}\n")
    with NotifySocket(tmp_path) as notify:
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
        with pytest.raises(ConfigError):
            start(ProxySettings(listen_port=port), Sources(config_path=bad))
        with pytest.raises(TimeoutError):
            notify.receive(timeout=0.2)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


def test_a_taken_port_fails_with_no_ready_and_nothing_left_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listen, taken = _free_port(), socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    with taken, NotifySocket(tmp_path) as notify:
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
        settings = ProxySettings(listen_port=listen, transparent="127.0.0.1")
        config = _config(tmp_path, CONFIG.replace("8443", str(taken.getsockname()[1])))
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1:"):
            start(settings, Sources(config_path=config))
        with pytest.raises(TimeoutError):
            notify.receive(timeout=0.2)
    # The explicit listener, bound before the taken port failed, was closed again.
    with socket.socket() as again:
        again.bind(("127.0.0.1", listen))


def test_a_listen_host_that_is_a_name_waits_for_mitmproxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with NotifySocket(tmp_path) as notify:
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
        early = start(ProxySettings(listen_host="localhost"), Sources(_config(tmp_path)))
        assert not early.notified and early.held.sockets == {}
        with pytest.raises(TimeoutError):
            notify.receive(timeout=0.2)


def test_the_transparent_listeners_are_the_web_ports_and_the_configured_ones(
    tmp_path: Path,
) -> None:
    early = start(ProxySettings(listen_host="localhost"), Sources(_config(tmp_path)))
    settings = ProxySettings(listen_host="10.1.2.3", listen_port=8080, transparent="10.1.2.3")
    assert listen_addresses(settings, early.runtime.config) == [
        ("10.1.2.3", 8080), ("10.1.2.3", 80), ("10.1.2.3", 443), ("10.1.2.3", 8443),
    ]  # fmt: skip


def test_connections_accepted_on_a_held_socket_have_nagle_off() -> None:
    """asyncio sets TCP_NODELAY only where the socket's proto says TCP; without it a
    response's head and body leave as two writes, the body held for a delayed ACK."""
    held = HeldListeners()
    held.bind("127.0.0.1", 0)
    [sock] = held.sockets.values()
    seen: list[int] = []

    async def go() -> None:
        def accepted(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            seen.append(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=sock)  # as mitmproxy adopts it
        _, writer = await asyncio.open_connection(*sock.getsockname())
        while not seen:
            await asyncio.sleep(0.01)
        writer.close()
        server.close()

    try:
        asyncio.run(asyncio.wait_for(go(), 10))
    finally:
        held.close()
    assert seen == [1]


def test_ready_comes_before_the_builtin_regexes_compile_and_warm_compiles_them(
    tmp_path: Path,
) -> None:
    # The built-in formats' regexes (about 11 ms) and the disguise search (6 to 7 ms)
    # depend on no config: compiled right after READY=1 (`run`), not before.
    config = _config(tmp_path, CONFIG + "dns_servers: [127.0.0.1]\n")
    settings = f"ProxySettings(listen_port={_free_port()})"
    script = (
        "import json\n"
        "from pathlib import Path\n"
        "from agentcage.policy.formats.builtin import BUILTIN_PATTERNS\n"
        "from agentcage.proxy.early_start import ProxySettings, start\n"
        "from agentcage.proxy.runtime import Sources\n"
        f"early = start({settings}, Sources(Path({str(config)!r})))\n"
        "def compiled():\n"
        "    return sum(p.lazy_regex._compiled is not None for p in BUILTIN_PATTERNS)\n"
        "inspectors = early.runtime.policy.chain.inspectors\n"
        "scanner = next(i for i in inspectors if i.name == 'secrets').scanner\n"
        "at_ready = [compiled(), scanner._disguises is not None]\n"
        "early.runtime.policy.warm()\n"
        "warmed = [compiled(), scanner._disguises is not None]\n"
        "every = len(BUILTIN_PATTERNS)\n"
        "print(json.dumps({'at_ready': at_ready, 'warmed': warmed, 'all': every}))\n"
    )
    answer = _ready_then(tmp_path, script)
    assert isinstance(answer, dict)
    assert answer["at_ready"] == [0, False]
    assert answer["warmed"] == [answer["all"], True]


def test_an_extra_pattern_that_does_not_compile_still_fails_before_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The config's own patterns are compiled as they are read, not lazily: `(?u)` is a
    # valid str pattern (the schema's check passes) but no bytes pattern.
    port = _free_port()
    extra = "secrets:\n  extra_patterns:\n    - {name: mine, pattern: '(?u)tok_[a-z]{20}'}\n"
    config = _config(tmp_path, CONFIG + extra)
    with NotifySocket(tmp_path) as notify:
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
        words = r"extra_patterns 'mine': the pattern does not compile"
        with pytest.raises(ConfigError, match=words):
            start(ProxySettings(listen_port=port), Sources(config_path=config))
        with pytest.raises(TimeoutError):
            notify.receive(timeout=0.2)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
