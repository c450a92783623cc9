"""Replays a plan of requests from inside the agent container, for test_false_positives.

    podman exec -i -e PYTHONPATH=/e2e-site AGENT python3 /e2e/benign_agent.py < plan.json

The plan (stdin, JSON) holds `http` steps {id, method, url, headers, body (base64), http2} and
`ws` steps {id, url, messages}. Each goes out through the cage's proxy exactly as given:
bodies are sent as raw bytes, headers in order. Prints one JSON object, step id ->
outcome ({status, body} or {echoed, closed}, or {error}).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import sys
from collections.abc import Iterable
from typing import Any

import httpx
import websockets


def context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])


class OffersOnlyH2(ssl.SSLContext):
    """httpx offers http/1.1 before h2 and mitmproxy takes the client's first choice,
    so the HTTP/2 client offers h2 alone to get HTTP/2 between agent and proxy."""

    def set_alpn_protocols(self, protocols: Iterable[str]) -> None:
        super().set_alpn_protocols(["h2"])


def h2_context() -> ssl.SSLContext:
    tls = OffersOnlyH2(ssl.PROTOCOL_TLS_CLIENT)
    tls.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
    return tls


def send_http(client: httpx.Client, step: dict[str, Any]) -> dict[str, Any]:
    try:
        response = client.request(
            step["method"],
            step["url"],
            headers=[(k, v) for k, v in step["headers"]],
            content=base64.b64decode(step["body"]),
        )
    except httpx.HTTPError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "status": response.status_code,
        "version": response.http_version,
        "body": response.text[:2000],
    }


async def send_ws(step: dict[str, Any]) -> dict[str, Any]:
    echoed: list[str] = []
    try:
        async with websockets.connect(
            step["url"], ssl=context(), proxy=os.environ["HTTPS_PROXY"], max_size=2**24
        ) as ws:
            for message in step["messages"]:
                await ws.send(message)
                echoed.append(str(await asyncio.wait_for(ws.recv(), 10)))
    except websockets.ConnectionClosed as exc:
        return {"echoed": echoed, "closed": exc.rcvd.code if exc.rcvd else None}
    except Exception as exc:  # reported as the outcome
        return {"echoed": echoed, "error": f"{type(exc).__name__}: {exc}"}
    return {"echoed": echoed, "closed": None}


def main() -> None:
    plan = json.load(sys.stdin)
    results: dict[str, Any] = {}
    # One client per protocol for all steps: keep-alive, as a real agent's SDK would.
    # The proxy comes from the environment.
    with (
        httpx.Client(timeout=30, verify=context()) as http1,
        httpx.Client(timeout=30, verify=h2_context(), http2=True) as http2,
    ):
        for step in plan["http"]:
            results[step["id"]] = send_http(http2 if step["http2"] else http1, step)
    for step in plan["ws"]:
        results[step["id"]] = asyncio.run(send_ws(step))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
