"""Responses on their way back to the agent: real secret values become placeholders."""

from __future__ import annotations

import logging

from mitmproxy import http

from agentcage.proxy.flows import block_response, header_pairs
from agentcage.proxy.runtime import RuntimeHolder

logger = logging.getLogger(__name__)


class ResponseScrubber:
    """Replaces real secret values in response headers and bodies; errors answer 502."""

    def __init__(self, holder: RuntimeHolder) -> None:
        self._holder = holder

    def response(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        if resp is None or resp.stream:
            return
        try:
            self._scrub(resp)
        except Exception as exc:
            logger.exception("scrubbing the response of %s failed", flow.id)
            flow.response = block_response(
                502,
                f"the response could not be checked for secrets: {type(exc).__name__}",
                "scrub",
                flow.request.host,
            )

    def _scrub(self, resp: http.Response) -> None:
        policy = self._holder.current.policy
        for name, value in header_pairs(resp.headers):
            clean = policy.scrub_text(value)
            if clean != value:
                resp.headers.set_all(
                    name, [policy.scrub_text(v) for v in resp.headers.get_all(name)]
                )
        raw = resp.raw_content
        if not raw:
            return
        if resp.headers.get("content-encoding", "identity").strip().lower() in ("", "identity"):
            clean_raw = policy.scrub(raw)
            if clean_raw != raw:
                resp.content = clean_raw
            return
        # Compressed: the secret is only visible decoded. An undecodable body
        # raises here and is answered with 502 rather than passed unchecked.
        decoded = resp.get_content(strict=True)
        assert decoded is not None
        clean_body = policy.scrub(decoded)
        if clean_body != decoded:
            resp.content = clean_body
