"""Recovering a real value from a host that stores and echoes it: every known way, replayed.

An agent that can have a real value injected into a body stored by an allowed host
tried to read it back in pieces (`Range`), compressed (uploaded with a
`Content-Encoding`, or packed by the host itself) and base64-wrapped in a JSON echo.
The agent must never receive the value, nor any 6-byte piece of it.

This module runs its own proxy: ANTHROPIC_API_KEY with the default places (header
values only) toward anthropic.com, STORE_TOKEN also into bodies toward example.com.
`/store/KEY` on the upstream is the careless storage API (see tests/support/upstream.py).
"""

from __future__ import annotations

import base64
import gzip
import lzma
from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest

from agentcage.policy.decoding import encode_body
from agentcage.policy.scrubbing.packing import unpack
from tests.integration.proxy.conftest import (
    PLACEHOLDER,
    REAL_KEY,
    fresh_client,
    send_placeholder_everywhere,
    serving,
    start_proxy,
)
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration
STORE_VALUE = "st0re-TOKEN-value-9f8e7d6c5b4a3210ZYXWvuts"
STORE_PLACEHOLDER = "{{STORE_TOKEN}}"
# Long enough that every packing codes the value's bytes (short inputs are often
# stored as raw literals, which a byte scrubber would see anyway).
PROSE = (
    "lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 10
    + "key: {}\n"
    + ("sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. " * 10)
)
INJECTION = """
  - env: ANTHROPIC_API_KEY
    inject_to: [anthropic.com]
  - env: STORE_TOKEN
    inject_to: [example.com]
    places: [headers, body]
"""


@pytest.fixture(scope="module")
def echo_proxy(
    tmp_path_factory: pytest.TempPathFactory, fake_dns: FakeDns, upstream: Upstream
) -> Iterator[ProxyProcess]:
    proc = start_proxy(
        tmp_path_factory.mktemp("echo-proxy"),
        fake_dns,
        upstream,
        "rate_limit: false",
        env={"STORE_TOKEN": STORE_VALUE},
        injection=INJECTION,
    )
    yield from serving(proc)


@pytest.fixture
def agent(echo_proxy: ProxyProcess, upstream: Upstream) -> Iterator[httpx.Client]:
    yield from fresh_client(echo_proxy, upstream)


def pieces(data: bytes, value: str = STORE_VALUE) -> list[bytes]:
    """The 6-byte pieces of `value` found in `data`."""
    raw = value.encode()
    return [raw[i : i + 6] for i in range(len(raw) - 5) if raw[i : i + 6] in data]


def store_url(upstream: Upstream, key: str, host: str = "example.com") -> str:
    return f"https://{host}:{upstream.tls_port}/store/{key}"


def store_value(
    agent: httpx.Client, upstream: Upstream, key: str, text: str = "note: {} end"
) -> bytes:
    """Have the proxy inject STORE_TOKEN into a body the upstream keeps; the stored bytes."""
    sent = text.format(STORE_PLACEHOLDER).encode()
    assert agent.put(store_url(upstream, key), content=sent).status_code == 201
    stored = upstream.stored[key].body
    assert stored == text.format(STORE_VALUE).encode()
    return stored


def store_header_value(agent: httpx.Client, upstream: Upstream, key: str) -> None:
    """The same through a header, toward a host that receives the value in headers only."""
    url = store_url(upstream, key, "api.anthropic.com") + "?header=x-api-key"
    assert agent.put(url, headers={"x-api-key": PLACEHOLDER}).status_code == 201
    assert upstream.stored[key].body == REAL_KEY.encode()


def test_default_places_inject_header_values_only(agent: httpx.Client, upstream: Upstream) -> None:
    response, seen = send_placeholder_everywhere(agent, upstream)
    assert seen.header("x-api-key") == REAL_KEY
    # Body, path and query reach the host as the agent wrote them: not injected, not blocked.
    assert seen.body == f'{{"key": "{PLACEHOLDER}"}}'.encode()
    assert unquote(seen.path) == f"/reflect/{PLACEHOLDER}?key={PLACEHOLDER}"
    assert response.content == seen.body


@pytest.mark.parametrize("size", [10, 6])
def test_range_reads_of_a_stored_body_give_no_piece_of_the_value(
    agent: httpx.Client, upstream: Upstream, size: int
) -> None:
    stored = store_value(agent, upstream, f"range-{size}")
    got = []
    for start in range(0, len(stored), size):
        response = agent.get(
            store_url(upstream, f"range-{size}"),
            headers={"range": f"bytes={start}-{start + size - 1}", "if-range": '"x"'},
        )
        # The proxy dropped Range toward a host that may store the value, so the
        # host answered with the whole body, which the scrubber recognises.
        assert response.status_code == 200
        assert response.content == f"note: {STORE_PLACEHOLDER} end".encode()
        got.append(response.content)
    reads = [seen for seen in upstream.received if seen.method == "GET"]
    assert reads and all(not seen.header("range") and not seen.header("if-range") for seen in reads)
    assert not pieces(b"".join(got))


@pytest.mark.parametrize("size", [10, 6])
def test_partial_reads_from_a_host_the_value_goes_to_are_masked(
    agent: httpx.Client, upstream: Upstream, size: int
) -> None:
    store_header_value(agent, upstream, f"partial-{size}")
    got = b""
    for start in range(0, len(REAL_KEY), size):
        last = min(start + size, len(REAL_KEY)) - 1
        response = agent.get(
            store_url(upstream, f"partial-{size}", "api.anthropic.com"),
            headers={"range": f"bytes={start}-{last}"},
        )
        assert response.status_code == 206
        # Masked one byte for one: the range the host stated still holds.
        assert response.headers["content-range"] == f"bytes {start}-{last}/{len(REAL_KEY)}"
        assert len(response.content) == last - start + 1
        got += response.content
    assert REAL_KEY.encode() not in got
    assert not pieces(got, REAL_KEY)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_a_compressed_upload_of_a_placeholder_is_blocked(
    agent: httpx.Client, upstream: Upstream, echo_proxy: ProxyProcess, coding: str
) -> None:
    body = encode_body(f"note: {STORE_PLACEHOLDER}".encode(), coding)
    url = store_url(upstream, f"packed-{coding}")
    response = agent.put(url, content=body, headers={"content-encoding": coding})
    assert response.status_code == 403
    assert response.json()["inspector"] == "secret-injection"
    assert "send the body uncompressed" in response.json()["reason"]
    assert upstream.received == []
    assert agent.get(url).status_code == 404  # nothing was stored to read back raw
    echo_proxy.wait_for_audit(lambda line: line["path"] == f"/store/packed-{coding}")
    assert STORE_VALUE not in echo_proxy.audit_text()


def test_a_compressed_body_toward_a_headers_only_host_goes_unchanged(
    agent: httpx.Client, upstream: Upstream
) -> None:
    body = gzip.compress(f"source: {PLACEHOLDER}".encode())
    response = agent.post(
        f"https://api.anthropic.com:{upstream.tls_port}/reflect",
        content=body,
        headers={"content-encoding": "gzip"},
    )
    assert response.status_code == 200
    assert upstream.received[-1].body == body


def test_a_json_echo_of_the_body_gives_nothing_back(
    agent: httpx.Client, upstream: Upstream
) -> None:
    url = f"https://example.com:{upstream.tls_port}/json-echo"
    sent = f"token={STORE_PLACEHOLDER}".encode()
    packed = agent.post(url, content=gzip.compress(sent), headers={"content-encoding": "gzip"})
    assert packed.status_code == 403  # the compressed form is refused at upload
    response = agent.post(url, content=sent)
    assert upstream.received[-1].body == f"token={STORE_VALUE}".encode()
    echoed = base64.b64decode(response.json()["data"])
    assert echoed == sent
    assert not pieces(response.content) and not pieces(echoed)


@pytest.mark.parametrize("packing", ["gzip", "zlib", "zstd", "bzip2", "xz", "zip"])
def test_a_value_the_host_packs_itself_is_unpacked_and_scrubbed(
    agent: httpx.Client, upstream: Upstream, packing: str
) -> None:
    store_value(agent, upstream, "pack", PROSE)
    response = agent.get(store_url(upstream, "pack") + f"?pack={packing}")
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    unpacked = unpack(response.content, packing, 1 << 20)  # type: ignore[arg-type]
    assert unpacked == [PROSE.format(STORE_PLACEHOLDER).encode()]


def test_a_packed_value_from_a_headers_only_host_is_unpacked_too(
    agent: httpx.Client, upstream: Upstream
) -> None:
    store_header_value(agent, upstream, "pack-header")
    response = agent.get(store_url(upstream, "pack-header", "api.anthropic.com") + "?pack=gzip")
    assert gzip.decompress(response.content) == PLACEHOLDER.encode()


def test_a_streamed_packed_value_is_held_and_scrubbed_whole(
    agent: httpx.Client, upstream: Upstream
) -> None:
    store_value(agent, upstream, "stream-pack", PROSE)
    response = agent.get(store_url(upstream, "stream-pack") + "?pack=xz&chunked=1")
    assert response.status_code == 200
    assert lzma.decompress(response.content) == PROSE.format(STORE_PLACEHOLDER).encode()


def test_pieces_served_by_other_means_are_masked_streamed_or_not(
    agent: httpx.Client, upstream: Upstream
) -> None:
    stored = store_value(agent, upstream, "slices")
    start = stored.index(STORE_VALUE.encode()) + 4
    for extra in ("", "&chunked=1"):
        url = store_url(upstream, "slices") + f"?slice=bytes={start}-{start + 9}{extra}"
        response = agent.get(url)
        assert response.status_code == 200
        assert response.content == b"*" * 10, extra


def test_a_partial_packed_body_cannot_be_checked_and_is_refused(
    agent: httpx.Client, upstream: Upstream, echo_proxy: ProxyProcess
) -> None:
    store_header_value(agent, upstream, "partial-pack")
    url = store_url(upstream, "partial-pack", "api.anthropic.com") + "?pack=gzip"
    response = agent.get(url, headers={"range": "bytes=0-29"})
    assert response.status_code == 502
    assert response.json()["inspector"] == "scrub"
    assert "truncated" in response.json()["reason"]
    line = echo_proxy.wait_for_audit(
        lambda r: r["path"].startswith("/store/partial-pack") and r["verdict"] == "block"
    )
    assert line["inspector"] == "scrub"


def test_a_partial_response_with_a_content_encoding_is_refused(
    agent: httpx.Client, upstream: Upstream
) -> None:
    url = store_url(upstream, "partial-encoded", "api.anthropic.com")
    body = gzip.compress(b"anything at all, no placeholder here")
    assert agent.put(url, content=body, headers={"content-encoding": "gzip"}).status_code == 201
    response = agent.get(url, headers={"range": "bytes=0-9", "accept-encoding": "gzip"})
    assert response.status_code == 502
    assert "206" in response.json()["reason"]


def test_a_streamed_packed_body_that_does_not_unpack_is_cut_off(
    agent: httpx.Client, upstream: Upstream, echo_proxy: ProxyProcess
) -> None:
    store_value(agent, upstream, "stream-broken")
    url = store_url(upstream, "stream-broken") + "?pack=gzip&chunked=1&slice=bytes=0-30"
    with pytest.raises(httpx.HTTPError):
        agent.get(url).read()
    line = echo_proxy.wait_for_audit(
        lambda r: r["path"].startswith("/store/stream-broken?") and r["verdict"] == "block"
    )
    assert line["inspector"] == "scrub"
    assert STORE_VALUE not in echo_proxy.audit_text()
