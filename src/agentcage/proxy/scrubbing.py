"""Responses on their way back to the agent: real secret values become placeholders.

Responses from hosts a secret is injected into also have packed bodies unpacked
and pieces of values masked (`agentcage.policy.scrubbing.echoes`).
"""

from __future__ import annotations

import logging

from mitmproxy import http

from agentcage.policy.decoding import DecodeError
from agentcage.policy.scrubbing.echoes import EchoGuard
from agentcage.proxy.flow_state import flow_state
from agentcage.proxy.flows import block_response, folded, header_pairs
from agentcage.proxy.runtime import RuntimeHolder

logger = logging.getLogger(__name__)
_ENCODING = frozenset({b"content-encoding"})


class Unscrubbable(Exception):
    """The response cannot be checked for secrets (the message says why)."""


class ResponseScrubbing:
    """Replaces real secret values in response headers and bodies; errors answer 502.

    Streamed bodies are scrubbed chunk by chunk by `streaming.StreamScrub`.
    """

    def __init__(self, holder: RuntimeHolder) -> None:
        self._holder = holder

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        # Headers are scrubbed before they are sent, whether the body is streamed or not.
        resp = flow.response
        if resp is None:
            return
        try:
            self._scrub_headers(self._guard(flow, resp), resp)
            # Headers are an immutable tuple replaced on every change: holding it
            # lets `response` skip a second scan when nothing touched them since.
            flow_state(flow).scrubbed_headers = resp.headers.fields
        except Exception as exc:
            self._fail(flow, exc)

    def response(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        if resp is None or resp.stream:
            return
        try:
            guard = self._guard(flow, resp)
            if flow_state(flow).scrubbed_headers is not resp.headers.fields:
                self._scrub_headers(guard, resp)  # the response was replaced or changed since
            self._scrub_body(guard, resp)
        except Exception as exc:
            self._fail(flow, exc)

    def _guard(self, flow: http.HTTPFlow, resp: http.Response) -> EchoGuard:
        policy = self._holder.current.policy
        return policy.echo_guard(flow.request.host, partial=resp.status_code == 206)

    def _fail(self, flow: http.HTTPFlow, exc: Exception) -> None:
        if isinstance(exc, Unscrubbable | DecodeError):
            # Our own messages: they name the format, never the content.
            reason = f"the response could not be checked for secrets: {exc}"
            logger.warning("refusing the response of %s: %s", flow.id, exc)
        else:
            reason = f"the response could not be checked for secrets: {type(exc).__name__}"
            logger.exception("scrubbing the response of %s failed", flow.id)
        flow.response = block_response(502, reason, "scrub", flow.request.host)
        flow_state(flow).response_block = ("scrub", reason)

    @staticmethod
    def _scrub_headers(guard: EchoGuard, resp: http.Response) -> None:
        pairs = header_pairs(resp.headers)
        # One pass over all values first: nearly every response has nothing to replace.
        joined = "\n".join(value for _, value in pairs)
        if guard.scrub_text(joined) == joined:
            return
        for name, value in pairs:
            if guard.scrub_text(value) != value:
                values = resp.headers.get_all(name)
                resp.headers.set_all(name, [guard.scrub_text(v) for v in values])

    @staticmethod
    def _scrub_body(guard: EchoGuard, resp: http.Response) -> None:
        encoding = folded(resp.headers, _ENCODING).get(b"content-encoding", "identity")
        encoding = encoding.strip().lower()
        refusal = guard.refusal(encoding)
        if refusal is not None:
            raise Unscrubbable(refusal)
        raw = resp.raw_content
        if not raw:
            return
        if encoding in ("", "identity"):
            clean_raw = guard.scrub(raw)
            if clean_raw != raw:
                resp.content = clean_raw
            return
        # Compressed: the secret is only visible decoded. An undecodable body
        # raises here and is answered with 502 rather than passed unchecked.
        decoded = resp.get_content(strict=True)
        assert decoded is not None
        clean_body = guard.scrub(decoded)
        if clean_body != decoded:
            resp.content = clean_body
