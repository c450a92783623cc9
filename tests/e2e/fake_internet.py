"""The hermetic fake internet for end-to-end tests, run in a container the test starts.

One process on one address (a test-made Podman network, never a real one):
  * DNS on :53 answering every name in NAMES (and its subdomains) with that address;
  * HTTPS on :443 (certificate from the test's trustme CA) for HTTP and WebSocket.
Everything that arrives is appended to JSON lines in --log-dir (dns.jsonl, http.jsonl),
so the test asserts from the internet's side what did and did not get out. HTTP records
carry the body's SHA-256 and size beside its text, so binary bodies compare byte for byte.

Routes: with --site, the package registries tests/e2e/registries generated (files for
registry.npmjs.org, pypi.org, files.pythonhosted.org and deb.debian.org; `git
http-backend` for repositories on github.com; see site_server.py); /echo-key answers
with the request's x-api-key header (checks scrubbing), /echo-key-chunked the same
without Content-Length (chunked); anything else answers {"ok": true}. Each HTTP record
holds the status answered. WebSocket messages are echoed back.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import socket
import threading
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from hypercorn.asyncio import serve
from hypercorn.config import Config

from tests.e2e.site_server import GitSite, Reply, StaticSite

NAMES = (
    "api.anthropic.com",
    "anthropic.com",
    "github.com",
    "attacker.example",
    # The benign corpus's hosts (bench/exfil/benign.py), for test_false_positives.
    "api.github.com",
    "api.openai.com",
    "registry.npmjs.org",
    "pypi.org",
    "upload.pypi.org",
    "files.pythonhosted.org",
    "o1.ingest.sentry.io",
    "otlp.example.com",
    "oauth.example.com",
    "api.example.com",
    # The package registries (tests/e2e/registries), for test_packages.
    "files.pythonhosted.org",
    "deb.debian.org",
)


class Log:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        with self.lock, self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


def serve_dns(address: str, log: Log) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    while True:
        data, peer = sock.recvfrom(4096)
        try:
            query = dns.message.from_wire(data)
        except Exception:  # a fake server ignores garbage
            continue
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        qtype = dns.rdatatype.to_text(question.rdtype)
        log.write({"name": name, "type": qtype, "client": peer[0]})
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        known = any(name == n or name.endswith("." + n) for n in NAMES)
        if not known:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A:
            reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", address))
        sock.sendto(reply.to_wire(), peer)


class App:
    """ASGI: records every request and WebSocket message."""

    def __init__(self, log: Log, site: Path | None = None) -> None:
        self.log = log
        self.static = StaticSite(site / "www") if site else None
        self.git = GitSite(site / "git") if site else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        client = scope.get("client") or ("", 0)
        base = {
            "host": headers.get("host", ""),
            "path": scope["path"],  # percent-decoded, as the static sites look files up
            # as the bytes arrived: what the agent sent must reach the upstream unchanged
            "raw_path": (scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
            "headers": headers,
            "client": f"{client[0]}:{client[1]}",  # one per connection
        }
        if scope["type"] == "http":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            query = scope["query_string"].decode()
            reply = await self.answer(scope["method"], base, query, body)
            self.log.write(
                {
                    **base,
                    "kind": "http",
                    "method": scope["method"],
                    "query": query,
                    # Binary bodies (gzip, git packs) are not UTF-8: the hash is exact.
                    "body": body.decode("utf-8", "replace"),
                    "sha256": hashlib.sha256(body).hexdigest(),
                    "size": len(body),
                    "status": reply.status,
                }
            )
            fields = [(k.encode(), v.encode()) for k, v in reply.headers]
            await send({"type": "http.response.start", "status": reply.status, "headers": fields})
            await send({"type": "http.response.body", "body": reply.body})
            return
        self.log.write({**base, "kind": "websocket-open"})
        while True:
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
            elif message["type"] == "websocket.receive":
                text = message.get("text") or (message.get("bytes") or b"").decode()
                self.log.write({**base, "kind": "websocket", "message": text})
                await send({"type": "websocket.send", "text": text})
            else:
                return

    async def answer(self, method: str, request: dict[str, Any], query: str, body: bytes) -> Reply:
        host, path, headers = request["host"].split(":")[0], request["path"], request["headers"]
        if self.git and self.git.handles(host, path):
            return await self.git.reply(host, method, path, query, headers, body)
        served = self.static.reply(method, host, path, headers) if self.static else None
        if served:
            return served
        if path.startswith("/echo-key"):
            answer = headers.get("x-api-key", "").encode()
        else:
            answer = json.dumps({"ok": True, "path": request["raw_path"]}).encode()
        reply = Reply(200, answer, [("content-type", "text/plain")])
        if path != "/echo-key-chunked":  # without a length: chunked encoding
            reply.headers.append(("content-length", str(len(answer))))
        return reply


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--log-dir", required=True, type=Path)
    parser.add_argument("--site", type=Path, help="what tests/e2e/registries built")
    args = parser.parse_args()
    dns_log, http_log = Log(args.log_dir / "dns.jsonl"), Log(args.log_dir / "http.jsonl")
    threading.Thread(target=serve_dns, args=(args.address, dns_log), daemon=True).start()
    config = Config()
    config.bind = [f"{args.address}:443"]
    config.certfile, config.keyfile = args.cert, args.key
    (args.log_dir / "ready").write_text("ok")
    asyncio.run(serve(App(http_log, args.site), config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
