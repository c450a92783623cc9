"""The response scrubber scans headers once unless something changed them afterwards."""

from __future__ import annotations

from pathlib import Path

from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from agentcage.config import LoadContext, parse_config
from agentcage.policy.scrubbing.echoes import EchoGuard
from agentcage.proxy.egress import AddressGuard, Resolver
from agentcage.proxy.runtime import Runtime, RuntimeHolder, Sources
from agentcage.proxy.scrubbing import ResponseScrubbing

CONFIG = "name: unit\ncontainer: {image: x}\ndomains: {allow: [example.com]}\n"
SECRET = "real-secret-value"


class CountingScrub:
    """Replaces SECRET with its placeholder and counts the header scans."""

    def __init__(self) -> None:
        self.text_calls = 0

    def scrub_text(self, text: str) -> str:
        self.text_calls += 1
        return text.replace(SECRET, "{{S}}")

    def scrub(self, data: bytes) -> bytes:
        return data.replace(SECRET.encode(), b"{{S}}")

    def echo_guard(self, host: str, *, partial: bool = False) -> EchoGuard:
        return EchoGuard(self)


def scrubber() -> tuple[ResponseScrubbing, CountingScrub]:
    policy = CountingScrub()
    config = parse_config(CONFIG, "unit.yaml", context=LoadContext())
    runtime = Runtime(config, policy, AddressGuard(), Resolver(["127.0.0.1"]))  # type: ignore[arg-type]
    return ResponseScrubbing(RuntimeHolder(Sources(Path("unit.yaml")), runtime)), policy


def _flow() -> http.HTTPFlow:
    flow = tflow.tflow(resp=tutils.tresp(content=b"plain body"))
    assert flow.response is not None
    flow.response.headers["x-note"] = "nothing secret"
    return flow


def test_unchanged_headers_are_not_scanned_twice() -> None:
    addon, policy = scrubber()
    flow = _flow()
    with taddons.context():
        addon.responseheaders(flow)
        scans = policy.text_calls
        addon.response(flow)
    assert scans == 1
    assert policy.text_calls == scans


def test_a_header_set_after_responseheaders_is_scrubbed() -> None:
    addon, _ = scrubber()
    flow = _flow()
    with taddons.context():
        addon.responseheaders(flow)
        assert flow.response is not None
        flow.response.headers["x-token"] = SECRET
        addon.response(flow)
    assert flow.response.headers["x-token"] == "{{S}}"


def test_a_replaced_response_is_scrubbed() -> None:
    addon, _ = scrubber()
    flow = _flow()
    with taddons.context():
        addon.responseheaders(flow)
        flow.response = http.Response.make(200, SECRET, {"x-token": SECRET})
        addon.response(flow)
    assert flow.response.headers["x-token"] == "{{S}}"
    assert flow.response.content == b"{{S}}"
