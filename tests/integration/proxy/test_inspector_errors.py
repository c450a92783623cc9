"""A custom inspector raising anything, BaseException included, blocks that request only."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from wsproto.events import Ping, TextMessage

from tests.integration.proxy.conftest import Port
from tests.support.proxy import ProxyProcess
from tests.support.rawws import FrameRecorder, RawClient
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration


RAISED = ["SystemExit", "KeyboardInterrupt", "GeneratorExit", "CancelledError", "Escaping"]


@pytest.fixture(scope="module")
def recorder() -> Iterator[FrameRecorder]:
    with FrameRecorder() as server:
        yield server


@pytest.fixture(scope="module")
def more_ports(recorder: FrameRecorder) -> list[Port]:
    return [(recorder.port, "http")]


@pytest.mark.parametrize("name", RAISED)
def test_inspector_raising_blocks_promptly_and_the_proxy_keeps_serving(
    name: str, client: httpx.Client, upstream: Upstream, proxy: ProxyProcess
) -> None:
    # The client's 10 s timeout stands for "promptly": unfixed, the request hung for
    # 20 s (or the proxy exited).
    response = client.get(f"https://github.com:{upstream.tls_port}/raise/{name}")
    assert response.status_code == 403
    assert response.headers["x-agentcage-blocked"] == "tripwire"
    assert response.json() == {
        "blocked": True,
        "reason": f"inspector-error: {name}",
        "inspector": "tripwire",
        "host": "github.com",
    }
    line = proxy.wait_for_audit(lambda r: r["path"] == f"/raise/{name}")
    assert (line["verdict"], line["inspector"]) == ("block", "tripwire")
    assert upstream.received == []
    after = client.get(f"https://github.com:{upstream.tls_port}/after-{name}")
    assert after.status_code == 200


@pytest.mark.parametrize("kind", ["message", "ping"])
@pytest.mark.parametrize("name", RAISED)
def test_inspector_raising_on_a_frame_closes_that_socket_only(
    kind: str, name: str, proxy: ProxyProcess, recorder: FrameRecorder
) -> None:
    path = f"/ws-raise-{kind}-{name}"
    payload = f"raise:{name}"
    with RawClient(proxy.port, "github.com", recorder.port, path) as ws:
        ws.send(TextMessage(payload) if kind == "message" else Ping(payload.encode()))
        closed = ws.until_closed()
    assert closed.code == 1008
    assert closed.reason == f"blocked by agentcage (tripwire): inspector-error: {name}"
    assert recorder.session(path).frames == [("close", (1008, closed.reason))]
    line = proxy.wait_for_audit(lambda r: r["kind"] == "websocket" and r["path"] == path)
    assert (line["verdict"], line["inspector"]) == ("block", "tripwire")
    with RawClient(proxy.port, "github.com", recorder.port, f"{path}-after") as ws:
        ws.send(TextMessage("still serving"))
        assert ws.receive() == TextMessage("still serving")
