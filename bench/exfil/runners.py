"""Run cases through the real proxy (to a recording loopback sink) or the policy directly.

`ProxyRunner` starts `agentcage proxy run` as a subprocess in front of a fake
internet on 127.0.0.1: a DNS server answering every name the cases use and an
HTTPS/HTTP/WebSocket server recording everything that reaches it. A malicious
case leaked if every one of its carriers is found in what the sink recorded
(request lines, host names, the headers the case set, bodies with Content-Encoding
undone, WebSocket messages, DNS questions), whatever the proxy logged. What the
harness and the client library add (the sink's port in Host, User-Agent, Accept)
is left out: a two-character carrier such as `72` would otherwise be "found" in a
port like 37203 and a refused piece counted as leaked.

DNS questions an agent sends to the cage's resolver never pass the HTTP proxy;
those steps are judged as the DNS sidecar judges protected values, by the name
fingerprints the proxy publishes for it, and reported so.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import re
import ssl
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trustme
from bench.exfil.cases import Case, Step
from bench.exfil.world import ATTACKER, BENIGN_HOSTS, Secret, config_yaml, proxy_env, validate
from tests.support.fake_dns import FakeDns
from tests.support.proxy import ProxyProcess
from tests.support.upstream import Received, Upstream
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from agentcage.policy.decoding import DecodeError, decode_body
from agentcage.policy.engine import Policy
from agentcage.policy.leaks.fingerprints import fingerprint_values
from agentcage.policy.leaks.protected import protected_values
from agentcage.policy.types import Frame, Headers, Request, Verdict

_WS_DEADLINE = 30.0
_PORT = re.compile(r":\d+$")


@dataclass
class Outcome:
    case: Case
    blocked: bool  # the proxy (or policy) refused at least one step
    leaked: bool  # malicious: every carrier reached the far side
    errors: int = 0  # steps that failed for other reasons (5xx, connection errors)
    via: str = "proxy"
    reason: str = ""  # why the first refused step was refused


class PolicyRunner:
    """In-process: a step is delivered unless `Policy` blocks it."""

    via = "policy"

    def __init__(self, mode: str, secrets: list[Secret], named_fields: str | None = None) -> None:
        config = validate(config_yaml(mode, secrets, "127.0.0.1:53", named_fields=named_fields))
        env = proxy_env(mode, secrets)
        injected = {k: v for k, v in env.items() if k == "ANTHROPIC_API_KEY"}
        self.policy = Policy.from_config(config, injected, environ=env)
        # What `proxy run --name-fingerprints` writes for the DNS sidecar.
        self.names = fingerprint_values(protected_values(config, injected, env))

    def run(self, case: Case) -> Outcome:
        blocked = any(self.step_blocked(step) for step in case.steps)
        return Outcome(case, blocked, case.malicious and not blocked, via=self.via)

    def step_blocked(self, step: Step) -> bool:
        if step.kind == "dns":
            return self.names.match(step.host) is not None
        scheme, port = ("http", 80) if step.plain else ("https", 443)
        if step.kind == "ws":
            for message in step.messages:
                payload = message.encode() if isinstance(message, str) else message
                frame = Frame(step.host, port, step.path, payload, isinstance(message, str))
                if self.policy.check_frame(frame).verdict is Verdict.BLOCK:
                    return True
            return False
        request = Request(
            step.method, scheme, step.host, port, step.path, Headers(step.headers), step.body
        )
        return self.policy.check_request(request).verdict is Verdict.BLOCK


class ProxyRunner:
    """The real `agentcage proxy run` subprocess, a fake DNS and a recording upstream."""

    via = "proxy"

    def __init__(
        self, mode: str, secrets: list[Secret], hosts: list[str], named_fields: str | None = None
    ) -> None:
        self._stack = contextlib.ExitStack()
        self._dir = Path(self._stack.enter_context(tempfile.TemporaryDirectory()))
        ca = trustme.CA()
        names = sorted({ATTACKER, *BENIGN_HOSTS, *hosts})
        self.dns = self._stack.enter_context(FakeDns({name: ["127.0.0.1"] for name in names}))
        self.upstream = self._stack.enter_context(Upstream(ca, names))
        config = self._dir / "cage.yaml"
        served = (self.upstream.tls_port, self.upstream.plain_port)
        config.write_text(config_yaml(mode, secrets, self.dns.address, served, named_fields))
        self.proxy = ProxyProcess(
            config, self._dir, upstream_ca=self.upstream.ca_pem, env=proxy_env(mode, secrets)
        ).start(timeout=60)
        self._stack.callback(self.proxy.stop)
        self._tls = ssl.create_default_context(cafile=str(self.proxy.ca_cert))
        self.client = self._stack.enter_context(
            httpx.Client(proxy=self.proxy.url, verify=self._tls, timeout=20)
        )
        self._dns_judge = PolicyRunner(mode, secrets, named_fields)

    def close(self) -> None:
        self._stack.close()

    def run(self, case: Case) -> Outcome:
        seen_http, seen_dns = len(self.upstream.received), len(self.dns.queries)
        blocked, errors, via = False, 0, "proxy"
        self._reason = ""
        resolved: list[tuple[str, str]] = []  # DNS questions the resolver would pass on
        for step in case.steps:
            if step.kind == "dns":
                via = "proxy+policy(dns)"
                if self._dns_judge.step_blocked(step):
                    blocked = True
                else:
                    resolved.append((step.host, "A"))
                continue
            result = self._ws_bounded(step) if step.kind == "ws" else self._http(step)
            blocked |= result == "blocked"
            errors += result == "error"
        arrived = self._arrived(
            self.upstream.received[seen_http:],
            self.dns.queries[seen_dns:] + resolved,
            {name.lower() for step in case.steps for name, _value in step.headers},
        )
        leaked = case.malicious and all(carrier in arrived for carrier in case.carriers)
        return Outcome(case, blocked, leaked, errors, via, self._reason)

    def _url(self, step: Step, ws: bool = False) -> str:
        if step.host not in self.dns.records:
            self.dns.set(step.host, "127.0.0.1")
        scheme = ("ws" if ws else "http") + ("" if step.plain else "s")
        port = self.upstream.plain_port if step.plain else self.upstream.tls_port
        return f"{scheme}://{step.host}:{port}{step.path}"

    def _http(self, step: Step) -> str:
        try:
            response = self.client.request(
                step.method, self._url(step), headers=list(step.headers), content=step.body
            )
        except httpx.HTTPError:
            return "error"
        if response.status_code in (403, 429):
            self._reason = self._reason or response.text[:200]
            return "blocked"
        return "ok" if response.status_code < 400 else "error"

    def _ws_bounded(self, step: Step) -> str:
        # The websockets client can wait forever on a proxy tunnel that never
        # answers; a stuck step counts as an error (its thread is abandoned).
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        try:
            return pool.submit(self._ws, step).result(timeout=_WS_DEADLINE)
        except concurrent.futures.TimeoutError:
            return "error"
        finally:
            pool.shutdown(wait=False)

    def _ws(self, step: Step) -> str:
        try:
            with connect(
                self._url(step, ws=True),
                proxy=self.proxy.url,
                ssl=None if step.plain else self._tls,
                open_timeout=10,
                close_timeout=2,
            ) as ws:
                for message in step.messages:
                    ws.send(message)
                    ws.recv(timeout=10)
        except ConnectionClosed:
            return "blocked"
        except InvalidStatus as exc:
            return "blocked" if exc.response.status_code in (403, 429) else "error"
        except (OSError, TimeoutError):
            return "error"
        return "ok"

    @staticmethod
    def _arrived(
        received: list[Received], queries: list[tuple[str, str]], headers: set[str]
    ) -> bytes:
        parts: list[bytes] = []
        for item in received:
            path = item.path.encode("latin-1", "replace")
            host = _PORT.sub("", item.host)  # the name as sent: case may carry data
            parts += [path, urllib.parse.unquote_to_bytes(path), host.encode()]
            parts += [v.encode("latin-1", "replace") for k, v in item.headers if k in headers]
            parts.append(item.body)
            encoding = item.header("content-encoding")
            if encoding and item.body:
                with contextlib.suppress(DecodeError):
                    parts.append(decode_body(item.body, encoding))
            parts += [m.encode() if isinstance(m, str) else m for m in item.ws_messages]
        parts += [name.encode() for name, _type in queries]
        return b"\n\x00\n".join(parts)


def make_runner(
    via: str, mode: str, secrets: list[Secret], cases: list[Case], named_fields: str | None = None
) -> Any:
    if via == "policy":
        return PolicyRunner(mode, secrets, named_fields)
    # The upstream's certificate names every host reached over TLS.
    hosts = [s.host for c in cases for s in c.steps if s.kind != "dns" and not s.plain]
    return ProxyRunner(mode, secrets, hosts, named_fields)
