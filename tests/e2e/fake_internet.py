"""The hermetic fake internet for end-to-end tests, run in a container the test starts.

One process on one address (a test-made Podman network, never a real one):
  * DNS on :53 answering every name in NAMES (and its subdomains) with that address;
  * HTTPS on :443 (certificate from the test's trustme CA) for HTTP and WebSocket.
Everything that arrives is appended to JSON lines in --log-dir (dns.jsonl, http.jsonl),
so the test asserts from the internet's side what did and did not get out. HTTP records
carry the body's SHA-256 and size beside its text, so binary bodies compare byte for byte.

Routes: /echo-key answers with the request's x-api-key header (checks scrubbing),
/echo-key-chunked the same without Content-Length (chunked);
anything else answers {"ok": true}. WebSocket messages are echoed back.
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

    def __init__(self, log: Log) -> None:
        self.log = log

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        base = {"host": headers.get("host", ""), "path": scope["path"], "headers": headers}
        if scope["type"] == "http":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            self.log.write(
                {
                    **base,
                    "kind": "http",
                    "method": scope["method"],
                    "query": scope["query_string"].decode(),
                    # Binary bodies (gzip, git packs) are not UTF-8: the hash is exact.
                    "body": body.decode("utf-8", "replace"),
                    "sha256": hashlib.sha256(body).hexdigest(),
                    "size": len(body),
                }
            )
            if scope["path"].startswith("/echo-key"):
                answer = headers.get("x-api-key", "").encode()
            else:
                answer = json.dumps({"ok": True, "path": scope["path"]}).encode()
            headers = [(b"content-type", b"text/plain")]
            if scope["path"] != "/echo-key-chunked":  # without a length: chunked encoding
                headers.append((b"content-length", str(len(answer)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": answer})
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--log-dir", required=True, type=Path)
    args = parser.parse_args()
    dns_log, http_log = Log(args.log_dir / "dns.jsonl"), Log(args.log_dir / "http.jsonl")
    threading.Thread(target=serve_dns, args=(args.address, dns_log), daemon=True).start()
    config = Config()
    config.bind = [f"{args.address}:443"]
    config.certfile, config.keyfile = args.cert, args.key
    (args.log_dir / "ready").write_text("ok")
    asyncio.run(serve(App(http_log), config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
