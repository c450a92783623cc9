"""Protocol errors mitmproxy meets get the cage's JSON block answer and an audit line.

mitmproxy 11.0.2 answers the errors it meets itself (a malformed request, a body
over `body_size_limit`, an upstream it cannot reach) with an HTML page of its own,
writes no audit line where no flow was made (an unparsable request line), and
crashes its HTTP/1 connection handler on chunked trailers (no answer: the client
waits until it gives up). `install` patches its HTTP layers narrowly (pinned like
`layer_patches`):

- Every error answer to the agent, HTTP/1 and HTTP/2, stops at a new blocking
  hook, `protocol_error`, whose `ErrorAnswer` carries the response to send;
  `ProtocolErrors` fills it in with `flows.block_response` and writes the line
  when no flow will. The default is already a JSON answer, so an addon failure
  still sends no HTML.
- HTTP/1 trailers: request trailers reach the flow (the gate refuses such
  requests: the policy never sees trailers); response trailers are dropped, which
  RFC 9112 7.1.2 allows a recipient to do.
- An HTTP/1 body that breaks the framing (a bad chunk) is answered 400 before the
  connection closes, instead of a silent close.
- A request head still unfinished past `MAX_HEAD_BYTES` is answered 431; mitmproxy
  would buffer it without end.
- Errors in the agent's own request are tagged `MALFORMED`, so the flow's `error`
  hook can tell them from an upstream failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import h11
from mitmproxy import connection, http
from mitmproxy.flow import Error
from mitmproxy.net.http import status_codes
from mitmproxy.net.http.http1 import assemble_response
from mitmproxy.proxy import commands, events
from mitmproxy.proxy.layers import http as http_layer
from mitmproxy.proxy.layers.http import _http1, _http2
from mitmproxy.proxy.layers.http._base import ReceiveHttp
from mitmproxy.proxy.layers.http._events import (
    RequestEndOfMessage,
    RequestProtocolError,
    RequestTrailers,
    ResponseProtocolError,
)
from mitmproxy.proxy.layers.http._hooks import HttpErrorHook

from agentcage.audit.record import AuditRecord
from agentcage.audit.writer import AuditWriter
from agentcage.policy.types import Verdict
from agentcage.proxy.flow_state import flow_state
from agentcage.proxy.flows import block_response, peer_of, record
from agentcage.proxy.mitmproxy_pin import patches_mitmproxy
from agentcage.proxy.runtime import RuntimeHolder

MALFORMED = "malformed request: "
# Far above any head the gate lets through (64 KiB of headers) with a long URL:
# only a head that never ends gets here.
MAX_HEAD_BYTES = 1024 * 1024
MAX_DETAIL = 200
_SENTENCE_END = re.compile(r"(?<=\.) (?=[A-Z])")

Commands = Generator[Any, Any, None]


@dataclass
class ErrorAnswer:
    """An error about to be answered to the agent; `response` is what it will get.

    `request` is None when nothing could be parsed. `flow_logs` says a flow's
    `error` hook writes the line (else the `protocol_error` hook must). `message`
    is mitmproxy's wording and may quote bytes from either peer.
    """

    client: connection.Connection  # the agent's
    request: http.Request | None
    status: int
    message: str
    flow_logs: bool = False
    response: http.Response = field(init=False)

    def __post_init__(self) -> None:
        self.response = _fallback(self.status, self.request)


def _fallback(status: int, request: http.Request | None) -> http.Response:
    """The answer if no addon gives a better one: JSON all the same, quoting nothing."""
    inspector = "protocol" if status < 500 else "upstream"
    reason = f"the proxy could not handle this exchange (HTTP {status})"
    return block_response(status, reason, inspector, request.host if request else "")


@dataclass
class ProtocolErrorHook(commands.StartHook):  # type: ignore[no-untyped-call]
    """An HTTP error is about to be answered to the agent (or its HTTP/2 connection ends)."""

    answer: ErrorAnswer


class _ErrorPage(bytes):
    """mitmproxy's error page, made by us and marked so `_rewrite` replaces it."""

    status: int
    message: str


@patches_mitmproxy
def install() -> None:
    reader = _http1.make_body_reader
    validate = http_layer.validate_request

    def make_body_reader(expected_size: int | None) -> Any:
        return _TrailerAwareReader(reader(expected_size))

    def validate_request(
        mode: http_layer.HTTPMode, request: http.Request, validate_inbound_headers: bool
    ) -> str | None:
        error = validate(mode, request, validate_inbound_headers)
        return None if error is None else MALFORMED + error

    _http1.make_body_reader = make_body_reader
    _http1.make_error_response = _error_page
    http_layer.validate_request = validate_request
    _patch_request_headers()
    _patch_http1_server()
    _patch_http2_server()


def _error_page(status_code: int, message: str = "") -> bytes:
    page = _ErrorPage(_wire(_fallback(status_code, None)))
    page.status, page.message = status_code, message
    return page


def _wire(response: http.Response) -> bytes:
    response.headers["connection"] = "close"
    return bytes(assemble_response(response))  # type: ignore[no-untyped-call]


def _relay(inner: Commands, rewrite: Callable[[Any], Commands]) -> Commands:
    """Yield `inner`'s commands (answers to blocking ones go back in), each after
    whatever `rewrite(command)` yields first."""
    sent: Any = None
    while True:
        try:
            command = inner.send(sent)
        except StopIteration:
            return
        yield from rewrite(command)
        sent = yield command


def _patch_request_headers() -> None:
    """An error answered before the flow has an error gets one, and its error hook.

    mitmproxy answers a request with no destination (no Host header) 400 without
    either, so no line would be written.
    """
    original = http_layer.HttpStream.state_wait_for_request_headers

    def state_wait_for_request_headers(self: Any, event: events.Event) -> Commands:
        def rewrite(command: Any) -> Commands:
            if (
                isinstance(command, http_layer.SendHttp)
                and isinstance(command.event, ResponseProtocolError)
                and self.flow.error is None
                and self.flow.response is None
            ):
                self.flow.error = Error(MALFORMED + command.event.message)
                yield HttpErrorHook(self.flow)

        yield from _relay(original(self, event), rewrite)

    http_layer.HttpStream.state_wait_for_request_headers = state_wait_for_request_headers  # type: ignore[method-assign]


class _TrailerAwareReader:
    """h11's body reader with trailers kept aside (mitmproxy raises on them)."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self.trailers: http.Headers | None = None
        self.failed = False

    def __call__(self, buf: Any) -> Any:
        return self._strip(self._reader, buf)

    def read_eof(self) -> Any:
        return self._strip(self._reader.read_eof)

    def _strip(self, read: Callable[..., Any], *args: Any) -> Any:
        try:
            event = read(*args)
        except h11.ProtocolError:
            self.failed = True
            raise
        if isinstance(event, h11.EndOfMessage) and event.headers:
            self.trailers = http.Headers([(bytes(k), bytes(v)) for k, v in event.headers])
            return h11.EndOfMessage()
        return event


def _patch_http1_server() -> None:
    original = _http1.Http1Server._handle_event

    def _handle_event(self: _http1.Http1Server, event: events.Event) -> Commands:
        yield from _relay(original(self, event), lambda command: _rewrite(self, event, command))
        if self.state == self.read_headers and len(self.buf) > MAX_HEAD_BYTES:
            message = f"request head still unfinished after {MAX_HEAD_BYTES} bytes"
            yield from _answer(self, ErrorAnswer(self.conn, None, 431, message))
            yield commands.CloseConnection(self.conn)
            self.state = self.done

    _http1.Http1Server._handle_event = _handle_event  # type: ignore[method-assign,assignment]


def _rewrite(server: _http1.Http1Server, event: events.Event, command: Any) -> Commands:
    """What goes out before `command`: our answers, trailers; tags on the agent's errors."""
    if isinstance(command, commands.SendData) and isinstance(command.data, _ErrorPage):
        # From a stream (its flow has had its error hook), or from reading the head
        # (a flow follows if the head was parsed).
        flow_logs = isinstance(event, ResponseProtocolError) or server.request is not None
        page = command.data
        answer = ErrorAnswer(server.conn, server.request, page.status, page.message, flow_logs)
        yield ProtocolErrorHook(answer)
        command.data = _wire(answer.response)
    elif isinstance(command, ReceiveHttp):
        received = command.event
        if isinstance(received, RequestProtocolError) and received.code == 400:
            received.message = MALFORMED + received.message
        elif isinstance(received, RequestEndOfMessage):
            trailers = getattr(_reader(server), "trailers", None)
            if trailers:
                yield ReceiveHttp(RequestTrailers(received.stream_id, trailers))
    elif (
        isinstance(command, commands.CloseConnection)
        and isinstance(event, events.DataReceived)
        and server.response is None
        and getattr(_reader(server), "failed", False)
    ):
        message = "the request body breaks HTTP/1.1 framing"
        yield from _answer(server, ErrorAnswer(server.conn, server.request, 400, message, True))


def _reader(server: _http1.Http1Server) -> object:
    return getattr(server, "body_reader", None)  # set once a request head is read


def _answer(server: _http1.Http1Server, answer: ErrorAnswer) -> Commands:
    yield ProtocolErrorHook(answer)
    if server.conn.state & connection.ConnectionState.CAN_WRITE:
        yield commands.SendData(server.conn, _wire(answer.response))


def _patch_http2_server() -> None:
    original_event = _http2.Http2Server._handle_event
    original_error = _http2.Http2Server.protocol_error

    def _handle_event(self: _http2.Http2Server, event: events.Event) -> Commands:
        if isinstance(event, ResponseProtocolError) and _h2_can_answer(self, event):
            yield from _h2_answer(self, event)
        else:
            yield from original_event(self, event)

    def protocol_error(self: _http2.Http2Server, message: str, *args: Any) -> Commands:
        # The whole connection ends with a GOAWAY: nothing to answer, but a line.
        yield ProtocolErrorHook(ErrorAnswer(self.conn, None, 400, message))
        yield from original_error(self, message, *args)

    _http2.Http2Server._handle_event = _handle_event  # type: ignore[method-assign]
    _http2.Http2Server.protocol_error = protocol_error  # type: ignore[method-assign,assignment]


def _h2_can_answer(server: _http2.Http2Server, event: ResponseProtocolError) -> bool:
    """mitmproxy's own test for sending an error page rather than resetting the stream."""
    if server.is_closed(event.stream_id) or event.code == status_codes.NO_RESPONSE:
        return False
    stream = server.h2_conn.streams[event.stream_id]
    return server.is_open_for_us(event.stream_id) and not stream.state_machine.headers_sent


def _h2_answer(server: _http2.Http2Server, event: ResponseProtocolError) -> Commands:
    # A stream's error: its flow has had its error hook and line.
    answer = ErrorAnswer(server.conn, None, event.code, event.message, flow_logs=True)
    yield ProtocolErrorHook(answer)
    if not server.is_open_for_us(event.stream_id):  # reset while the hook ran
        return
    response = answer.response
    headers = [(b":status", b"%d" % response.status_code), *response.headers.fields]
    server.h2_conn.send_headers(event.stream_id, headers)
    server.h2_conn.send_data(event.stream_id, response.raw_content or b"", end_stream=True)
    yield commands.SendData(server.conn, server.h2_conn.data_to_send())


class ProtocolErrors:
    """Fills in each error answer, and writes the lines no other addon writes.

    `protocol_error`: the JSON answer, its reason scrubbed of real secret values
    (mitmproxy's wording may quote the upstream's bytes), and the line when no
    flow writes one. `error`: the line for a flow refused for the agent's own
    malformed request, which `ClosingLines` would record as allowed; so this addon
    goes before it.
    """

    def __init__(self, holder: RuntimeHolder, audit: AuditWriter) -> None:
        self._holder = holder
        self._audit = audit

    def protocol_error(self, answer: ErrorAnswer) -> None:
        runtime = self._holder.current
        request = answer.request
        status, inspector, reason = self._describe(answer.status, answer.message)
        detail = self._detail(answer.message)
        told = f"{reason}: {detail}" if detail and inspector in ("protocol", "upstream") else reason
        answer.response = block_response(status, told, inspector, request.host if request else "")
        if answer.flow_logs:
            return
        self._audit.write(
            AuditRecord(
                kind="http",
                verdict=Verdict.BLOCK.value,
                cage=runtime.cage,
                client=peer_of(answer.client),
                method=request.method if request else "",
                scheme=request.scheme if request else "",
                host=request.host if request else "",
                port=request.port if request else 0,
                path=runtime.policy.scrub_text(request.path) if request else "",
                inspector=inspector,
                reason=reason,
                extra={"error": detail} if detail else {},
            )
        )

    def error(self, flow: http.HTTPFlow) -> None:
        state = flow_state(flow)
        if state.audited or flow.error is None:
            return
        if not flow.error.msg.startswith(MALFORMED):
            return
        state.audited = True
        runtime = self._holder.current
        line = record(
            flow,
            runtime.cage,
            Verdict.BLOCK,
            inspector="protocol",
            reason=MALFORMED.removesuffix(": "),
            path=runtime.policy.scrub_text(flow.request.path),
            extra={"error": self._detail(flow.error.msg)},
        )
        self._audit.write(line)

    def _describe(self, status: int, message: str) -> tuple[int, str, str]:
        """(status, inspector, reason) for an answer; the reason quotes nothing."""
        if message.startswith("egress "):  # refused by EgressPinning; our own words
            return 403, "egress", message
        if status == 413:
            limit = self._holder.current.config.max_request_body
            return 413, "body-size", f"request body larger than max_request_body ({limit} bytes)"
        if status == 431:
            return 431, "header-size", f"request head larger than {MAX_HEAD_BYTES} bytes"
        if status < 500:
            return status, "protocol", MALFORMED.removesuffix(": ")
        return status, "upstream", "the upstream server could not be reached or failed"

    def _detail(self, message: str) -> str:
        """mitmproxy's first sentence (the rest is advice for mitmproxy users), scrubbed."""
        text = _SENTENCE_END.split(message.removeprefix(MALFORMED), maxsplit=1)[0]
        return self._holder.current.policy.scrub_text(text)[:MAX_DETAIL]
