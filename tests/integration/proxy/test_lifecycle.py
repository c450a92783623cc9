"""`agentcage proxy run` as a process: bad config, reload on SIGHUP, clean SIGTERM."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.proxy.conftest import ports_of, start_proxy, write_config
from tests.support.dns_sidecar import free_port
from tests.support.fake_dns import FakeDns
from tests.support.notify import NotifySocket
from tests.support.proxy import ProxyProcess, agentcage_command
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*agentcage_command(), "proxy", "run", *args],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_bad_config_exits_2_before_listening(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("name: Bad_Name\ncontainer: {image: x}\ndomains: {allow: [a.com]}\n")
    result = _run("-c", str(config), "--listen", "127.0.0.1:0", "--ca-dir", str(tmp_path))
    assert result.returncode == 2
    assert "error: invalid config" in result.stderr
    assert "name" in result.stderr
    assert "listening on" not in result.stderr


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = _run("-c", str(tmp_path / "nope.yaml"), "--ca-dir", str(tmp_path))
    assert result.returncode == 2
    assert "no such file" in result.stderr


def test_bad_listen_address_exits_2(tmp_path: Path, fake_dns: FakeDns) -> None:
    config = write_config(tmp_path / "config.yaml", fake_dns)
    result = _run("-c", str(config), "--listen", "nowhere", "--ca-dir", str(tmp_path))
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr


def test_broken_plugin_exits_2(tmp_path: Path, fake_dns: FakeDns) -> None:
    plugin = tmp_path / "broken.py"
    plugin.write_text("raise ImportError('nope')\n")
    config = tmp_path / "config.yaml"
    write_config(config, fake_dns)
    config.write_text(
        config.read_text().replace(
            "inspectors:\n", f"inspectors:\n  - name: broken\n    path: {plugin}\n"
        )
    )
    result = _run("-c", str(config), "--listen", "127.0.0.1:0", "--ca-dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "broken" in result.stderr


def test_sighup_reloads_config_and_sigterm_exits_cleanly(
    tmp_path: Path, fake_dns: FakeDns, upstream: Upstream
) -> None:
    proxy = start_proxy(tmp_path, fake_dns, upstream)
    try:
        verify = ssl.create_default_context(cafile=str(proxy.ca_cert))
        url = f"https://attacker.example:{upstream.tls_port}/after-reload"
        with httpx.Client(proxy=proxy.url, verify=verify, timeout=10) as client:
            assert client.get(url).status_code == 403
            text = proxy.config.read_text()
            proxy.config.write_text(text.replace("example.com]", "example.com, attacker.example]"))
            proxy.signal(signal.SIGHUP)
            _wait_for(lambda: "reloaded" in proxy.stderr, proxy)
            assert client.get(url).status_code == 200
            # A broken config on reload keeps the running policy.
            proxy.config.write_text("name: [oops\n")
            proxy.signal(signal.SIGHUP)
            _wait_for(lambda: "reload failed" in proxy.stderr, proxy)
            assert client.get(url).status_code == 200
    finally:
        code = proxy.stop()
    assert code == 0, proxy.stderr


def _wait_for(condition: object, proxy: ProxyProcess, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; proxy stderr:\n{proxy.stderr}")
        time.sleep(0.05)


def test_secret_file_wins_over_environment(
    tmp_path: Path, fake_dns: FakeDns, upstream: Upstream
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ANTHROPIC_API_KEY").write_text("sk-ant-from-the-secrets-dir-0123456789\n")
    config = write_config(tmp_path / "config.yaml", fake_dns, served=ports_of(upstream))
    proxy = ProxyProcess(
        config,
        tmp_path,
        upstream_ca=upstream.ca_pem,
        env={"ANTHROPIC_API_KEY": "sk-ant-from-the-environment-0123456789"},
        secrets_dir=secrets,
    ).start()
    try:
        upstream.clear()
        verify = ssl.create_default_context(cafile=str(proxy.ca_cert))
        with httpx.Client(proxy=proxy.url, verify=verify, timeout=10) as client:
            response = client.get(
                f"https://api.anthropic.com:{upstream.tls_port}/secret-file",
                headers={"x-api-key": "{{ANTHROPIC_API_KEY}}"},
            )
        assert response.status_code == 200
        assert upstream.received[-1].header("x-api-key") == "sk-ant-from-the-secrets-dir-0123456789"
    finally:
        assert proxy.stop() == 0, proxy.stderr


def test_unwritable_audit_log_exits_2(tmp_path: Path, fake_dns: FakeDns) -> None:
    config = write_config(tmp_path / "config.yaml", fake_dns)
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = _run(
        "-c", str(config), "--listen", "127.0.0.1:0", "--ca-dir", str(tmp_path / "ca"),
        "--audit-log", str(blocker / "audit.jsonl"),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "cannot open the audit log" in result.stderr
    assert "hint: pass a writable --audit-log path" in result.stderr


def test_upstream_ca_that_is_not_pem_exits_2(tmp_path: Path, fake_dns: FakeDns) -> None:
    config = write_config(tmp_path / "config.yaml", fake_dns)
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    result = _run(
        "-c", str(config), "--listen", "127.0.0.1:0", "--ca-dir", str(tmp_path / "ca"),
        "--upstream-ca", str(bogus),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "no PEM certificate" in result.stderr


def test_tells_systemd_it_is_ready_once_it_listens(tmp_path: Path, fake_dns: FakeDns) -> None:
    # `Notify=true`: the cage's agent starts right after this READY=1, so it must come only
    # once the listening socket is bound.
    config = write_config(tmp_path / "c.yaml", fake_dns)
    with NotifySocket(tmp_path) as notify, ProxyProcess(config, tmp_path, env=notify.env) as proxy:
        assert notify.receive() == b"READY=1"
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5).close()


def _held(tmp_path: Path, fake_dns: FakeDns, notify: NotifySocket) -> tuple[ProxyProcess, int]:
    """A proxy on a port of its own that says READY=1 to `notify` (not started)."""
    config = write_config(tmp_path / "c.yaml", fake_dns)
    port = free_port()
    argv = ["--listen", f"127.0.0.1:{port}"]
    return ProxyProcess(config, tmp_path, env=notify.env, extra_args=argv), port


_UNLISTED = b"GET http://unlisted.example/ HTTP/1.1\r\nHost: unlisted.example\r\n\r\n"


def test_a_connection_made_at_ready_waits_for_the_whole_chain(
    tmp_path: Path, fake_dns: FakeDns
) -> None:
    # READY=1 comes once the sockets are bound, before mitmproxy has loaded
    # (proxy/early_start.py). The agent's first connection may arrive before mitmproxy
    # serves: it must wait and be inspected, neither pass unchecked nor be refused.
    with NotifySocket(tmp_path) as notify:
        proxy, port = _held(tmp_path, fake_dns, notify)
        starting = threading.Thread(target=proxy.start)
        starting.start()
        try:
            assert notify.receive() == b"READY=1"
            with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
                conn.sendall(_UNLISTED)
                reply = conn.recv(65536)
            assert reply.startswith(b"HTTP/1.1 403"), reply[:300]
            starting.join()
            line = proxy.wait_for_audit(lambda r: r["host"] == "unlisted.example")
            assert line["verdict"] == "block"
        finally:
            starting.join()
            proxy.stop()


def test_a_sighup_while_mitmproxy_loads_is_a_reload_not_the_end(
    tmp_path: Path, fake_dns: FakeDns
) -> None:
    # `secret set` right after `cage create` signals a proxy that said READY=1 but is
    # still loading mitmproxy (a microVM's guest under TCG takes seconds). SIGHUP's
    # default action would end it; it must reload once mitmproxy serves.
    with NotifySocket(tmp_path) as notify:
        proxy, port = _held(tmp_path, fake_dns, notify)
        failed: list[BaseException] = []

        def start() -> None:
            try:
                proxy.start()
            except BaseException as exc:  # the proxy died: said below
                failed.append(exc)

        starting = threading.Thread(target=start)
        starting.start()
        try:
            assert notify.receive() == b"READY=1"
            proxy.signal(signal.SIGHUP)
            starting.join()
            assert not failed, failed
            _wait_for(lambda: "reloaded" in proxy.stderr, proxy)
            with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
                conn.sendall(_UNLISTED)
                assert conn.recv(65536).startswith(b"HTTP/1.1 403")
        finally:
            starting.join()
            code = proxy.stop()
    assert code == 0, proxy.stderr
