"""WebSocket control frames (ping, pong, close) are inspected both ways, like messages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from wsproto.events import CloseConnection, Ping, Pong, TextMessage

from tests.integration.proxy.conftest import PLACEHOLDER, REAL_KEY, Port
from tests.support.proxy import ProxyProcess
from tests.support.rawws import FrameRecorder, RawClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
AWS_KEY = "AKIAQ4MZVKD7TR3XW5PL"


@pytest.fixture(scope="module")
def recorder() -> Iterator[FrameRecorder]:
    with FrameRecorder() as server:
        yield server


@pytest.fixture(scope="module")
def more_ports(recorder: FrameRecorder) -> list[Port]:
    return [(recorder.port, "http")]


def _client(proxy: ProxyProcess, recorder: FrameRecorder, host: str, path: str) -> RawClient:
    return RawClient(proxy.port, host, recorder.port, path)


def _audit_line(proxy: ProxyProcess, path: str, frame: str) -> dict[str, object]:
    return proxy.wait_for_audit(
        lambda r: (
            r["kind"] == "websocket"
            and r["path"] == path
            and r.get("extra", {}).get("frame") == frame
        )
    )


@pytest.mark.parametrize(
    ("kind", "secret"), [("ping", AWS_KEY), ("pong", AWS_KEY), ("ping", REAL_KEY)]
)
def test_secret_in_a_ping_or_pong_from_the_agent_closes_both_sides(
    kind: str, secret: str, proxy: ProxyProcess, recorder: FrameRecorder
) -> None:
    path = f"/{kind}-leak-{secret[:4]}"
    payload = f"x {secret}".encode()
    with _client(proxy, recorder, "github.com", path) as ws:
        ws.send(Ping(payload) if kind == "ping" else Pong(payload))
        closed = ws.until_closed()
    assert closed.code == 1008
    assert closed.reason and closed.reason.startswith("blocked by agentcage")
    session = recorder.session(path)
    assert session.frames == [("close", (1008, closed.reason))]
    line = _audit_line(proxy, path, kind)
    assert line["verdict"] == "block"
    assert line["extra"] == {"direction": "to_server", "frame": kind}
    assert secret not in proxy.audit_text()


def test_secret_in_a_close_reason_from_the_agent_is_not_relayed(
    proxy: ProxyProcess, recorder: FrameRecorder
) -> None:
    with _client(proxy, recorder, "github.com", "/close-leak") as ws:
        ws.send(CloseConnection(1000, f"bye {AWS_KEY}"))
        closed = ws.until_closed()
    assert closed.code == 1008
    [(kind, (code, reason))] = recorder.session("/close-leak").frames  # type: ignore[misc]
    assert (kind, code) == ("close", 1008)
    assert AWS_KEY not in reason
    line = _audit_line(proxy, "/close-leak", "close")
    assert line["verdict"] == "block"
    assert line["extra"]["close_code"] == 1000  # type: ignore[index]


def test_placeholder_in_a_control_frame_is_never_injected(
    proxy: ProxyProcess, recorder: FrameRecorder
) -> None:
    with _client(proxy, recorder, "api.anthropic.com", "/ping-placeholder") as ws:
        ws.send(Ping(PLACEHOLDER.encode()))
        assert ws.receive() == Pong(PLACEHOLDER.encode())
        ws.send(CloseConnection(1000, "done"))
        ws.until_closed()
    frames = recorder.session("/ping-placeholder").frames
    assert frames[0] == ("ping", PLACEHOLDER.encode())
    assert REAL_KEY not in repr(frames)


def test_placeholder_in_a_ping_to_another_host_is_blocked(
    proxy: ProxyProcess, recorder: FrameRecorder
) -> None:
    with _client(proxy, recorder, "github.com", "/ping-wrong-host") as ws:
        ws.send(Ping(PLACEHOLDER.encode()))
        assert ws.until_closed().code == 1008
    assert recorder.session("/ping-wrong-host").frames[0][0] == "close"
    line = _audit_line(proxy, "/ping-wrong-host", "ping")
    assert line["inspector"] == "secret-injection"


@pytest.mark.parametrize("kind", ["ping", "pong"])
def test_server_pings_and_pongs_are_scrubbed(
    kind: str, proxy: ProxyProcess, recorder: FrameRecorder
) -> None:
    path = f"/server-{kind}"
    with _client(proxy, recorder, "api.anthropic.com", path) as ws:
        # Injected on the way out: the server sends the real value back in a control frame.
        ws.send(TextMessage(f"send-{kind} key={PLACEHOLDER}"))
        got = ws.receive()
        ws.send(CloseConnection(1000))
        ws.until_closed()
    expected = f"key={PLACEHOLDER}".encode()
    assert got == (Ping(expected) if kind == "ping" else Pong(expected))
    assert recorder.session(path).frames[0] == ("text", f"send-{kind} key={REAL_KEY}")
    line = _audit_line(proxy, path, kind)
    assert line["extra"] == {"direction": "to_client", "frame": kind}
    assert REAL_KEY not in proxy.audit_text()


def test_server_close_reason_is_scrubbed(proxy: ProxyProcess, recorder: FrameRecorder) -> None:
    with _client(proxy, recorder, "api.anthropic.com", "/server-close") as ws:
        ws.send(TextMessage(f"send-close key={PLACEHOLDER}"))
        closed = ws.until_closed()
    assert (closed.code, closed.reason) == (4000, f"key={PLACEHOLDER}")
    _audit_line(proxy, "/server-close", "close")


def test_plain_pings_and_closes_go_through(proxy: ProxyProcess, recorder: FrameRecorder) -> None:
    with _client(proxy, recorder, "github.com", "/ping-fine") as ws:
        ws.send(Ping(b"hello"))
        assert ws.receive() == Pong(b"hello")
        ws.send(TextMessage("still open"))
        assert ws.receive() == TextMessage("still open")
        ws.send(CloseConnection(1000, "done"))
        closed = ws.until_closed()
    assert (closed.code, closed.reason) == (1000, "done")
    session = recorder.session("/ping-fine")
    assert session.frames == [
        ("ping", b"hello"),
        ("text", "still open"),
        ("close", (1000, "done")),
    ]
    ping = _audit_line(proxy, "/ping-fine", "ping")
    assert (ping["verdict"], ping["bytes_out"]) == ("allow", 5)
    pong = _audit_line(proxy, "/ping-fine", "pong")
    assert pong["extra"] == {"direction": "to_client", "frame": "pong"}


def test_frames_read_together_keep_their_order(
    proxy: ProxyProcess, recorder: FrameRecorder
) -> None:
    with _client(proxy, recorder, "github.com", "/quiet-together") as ws:
        ws.send(TextMessage("one"), Ping(b"two"), TextMessage("three"), Ping(AWS_KEY.encode()))
        # The upstream answers nothing, so the proxy's close is a FIN, never a reset.
        closed = ws.until_closed()
    assert closed.code == 1008
    frames = recorder.session("/quiet-together").frames
    assert frames[:3] == [("text", "one"), ("ping", b"two"), ("text", "three")]
    assert [kind for kind, _ in frames[3:]] == ["close"]
    assert AWS_KEY not in repr(frames)
