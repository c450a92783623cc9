"""Seeded benign traffic: what a working agent sends, which must not be blocked.

`core`: everyday API calls (LLM chat, GitHub REST, registry reads, JSON APIs).
`hard`: legitimate traffic that looks like exfiltration to a naive scanner:
base64 images in LLM requests, gzip telemetry, git push packs, npm and PyPI
uploads, OAuth JWTs, hashes and IDs, a known secret sent to its own provider,
and (`daily.py`) installs, git fetches, Sentry and OpenTelemetry exports, and
code and READMEs full of documentation values sent to an LLM.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import uuid
import zlib
from collections.abc import Callable

from bench.exfil.cases import Case, Step, json_step
from bench.exfil.daily import DAILY
from bench.exfil.gitpacks import push_body
from bench.exfil.world import Secret

PLACEHOLDER = "{{ANTHROPIC_API_KEY}}"
_TEXT = [
    "Refactor",
    "the",
    "parser",
    "so",
    "that",
    "errors",
    "carry",
    "line",
    "numbers,",
    "then",
    "run",
    "the",
    "unit",
    "tests",
    "and",
    "summarise",
    "which",
    "ones",
    "fail",
    "and",
    "why.",
    "Keep",
    "the",
    "public",
    "API",
    "unchanged.",
]


def _sentence(rng: random.Random, n: int = 30) -> str:
    return " ".join(rng.choice(_TEXT) for _ in range(n))


def _anthropic(rng: random.Random, content: object) -> Step:
    return json_step(
        "api.anthropic.com",
        "/v1/messages",
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": content}],
        },
        ("x-api-key", PLACEHOLDER),
        ("anthropic-version", "2023-06-01"),
    )


def _rand_bytes(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def _png(rng: random.Random, n: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + zlib.compress(_rand_bytes(rng, n), 1)


def _jwt(rng: random.Random) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    claims = {"sub": str(uuid.UUID(int=rng.getrandbits(128))), "aud": "api", "exp": 1900000000}
    sig = base64.urlsafe_b64encode(_rand_bytes(rng, 256)).decode().rstrip("=")
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{sig}"


Shape = Callable[[random.Random, list[Secret]], list[Step]]

CORE: dict[str, Shape] = {
    "llm-chat": lambda r, s: [_anthropic(r, _sentence(r, 80))],
    "llm-tool-result": lambda r, s: [
        _anthropic(
            r,
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_" + r.randbytes(12).hex(),
                    "content": _sentence(r, 200),
                }
            ],
        )
    ],
    "openai-chat": lambda r, s: [
        json_step(
            "api.openai.com",
            "/v1/chat/completions",
            {"model": "gpt-4o", "messages": [{"role": "user", "content": _sentence(r)}]},
        )
    ],
    "github-rest": lambda r, s: [
        Step(
            "http",
            "api.github.com",
            "GET",
            f"/repos/org/repo/pulls?state=open&page={r.randint(1, 9)}",
        ),
        json_step(
            "api.github.com", "/repos/org/repo/issues", {"title": "Bug", "body": _sentence(r)}
        ),
    ],
    "npm-read": lambda r, s: [Step("http", "registry.npmjs.org", "GET", "/left-pad")],
    "pypi-read": lambda r, s: [Step("http", "pypi.org", "GET", "/simple/requests/")],
    "json-api-ids": lambda r, s: [
        json_step(
            "api.example.com",
            "/v2/items",
            {
                "ids": [str(uuid.UUID(int=r.getrandbits(128))) for _ in range(20)],
                "commit": r.randbytes(20).hex(),
                "updated": "2026-11-27T06:00:00Z",
            },
        )
    ],
    "query-params": lambda r, s: [
        Step(
            "http",
            "api.example.com",
            "GET",
            f"/search?q=parser+errors&sort=updated&cursor={r.randbytes(8).hex()}&limit=50",
        )
    ],
}

HARD: dict[str, Shape] = {
    "llm-image": lambda r, s: [
        _anthropic(
            r,
            [
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": "image/png",
                        "data": base64.b64encode(_png(r, 200_000)).decode(),
                    },
                },
                {"type": "text", "text": "What does this screenshot show?"},
            ],
        )
    ],
    "gzip-telemetry": lambda r, s: [
        Step(
            "http",
            "o1.ingest.sentry.io",
            path="/api/1/envelope/",
            body=gzip.compress(
                json.dumps(
                    {
                        "event_id": r.randbytes(16).hex(),
                        "breadcrumbs": [_sentence(r, 10) for _ in range(50)],
                        "trace": r.randbytes(64).hex(),
                    }
                ).encode()
            ),
            headers=(("content-encoding", "gzip"), ("content-type", "application/json")),
        )
    ],
    "git-push": lambda r, s: [
        Step(
            "http",
            "github.com",
            path="/org/repo.git/git-receive-pack",
            body=push_body(r, 150_000),
            headers=(("content-type", "application/x-git-receive-pack-request"),),
        )
    ],
    "npm-publish": lambda r, s: [
        json_step(
            "registry.npmjs.org",
            "/my-pkg",
            {
                "name": "my-pkg",
                "versions": {
                    "1.0.0": {
                        "dist": {
                            "shasum": r.randbytes(20).hex(),
                            "integrity": "sha512-" + base64.b64encode(r.randbytes(64)).decode(),
                        }
                    }
                },
                "_attachments": {
                    "my-pkg-1.0.0.tgz": {
                        "content_type": "application/octet-stream",
                        "data": base64.b64encode(gzip.compress(_rand_bytes(r, 60_000))).decode(),
                    }
                },
            },
        )
    ],
    "pypi-upload": lambda r, s: [_pypi_upload(r)],
    "oauth-jwt": lambda r, s: [
        Step(
            "http",
            "oauth.example.com",
            "GET",
            "/userinfo",
            headers=(("authorization", "Bearer " + _jwt(r)),),
        ),
        Step(
            "http",
            "oauth.example.com",
            path="/token",
            body=f"grant_type=refresh_token&refresh_token={base64.urlsafe_b64encode(r.randbytes(48)).decode()}".encode(),
            headers=(("content-type", "application/x-www-form-urlencoded"),),
        ),
    ],
    "hashes-and-keys": lambda r, s: [
        json_step(
            "api.example.com",
            "/v1/artifacts",
            {
                "sha256": [hashlib.sha256(r.randbytes(8)).hexdigest() for _ in range(30)],
                "ssh_public_key": "ssh-ed25519 " + base64.b64encode(r.randbytes(51)).decode(),
                "etag": base64.b64encode(r.randbytes(24)).decode(),
            },
        )
    ],
    "code-with-base64": lambda r, s: [
        _anthropic(
            r,
            "Why does this fail?\n```python\nDATA = '"
            + base64.b64encode(r.randbytes(300)).decode()
            + "'\nprint(base64.b64decode(DATA)[:10])\n```",
        )
    ],
    "known-secret-to-its-home": lambda r, s: [
        Step(
            "http",
            "api.github.com",
            "GET",
            "/user",
            headers=(("authorization", "token " + _by_kind(s, "github")),),
        )
    ],
    "paginated-crawl": lambda r, s: [
        Step(
            "http",
            "api.github.com",
            "GET",
            f"/repos/org/repo/commits/{r.randbytes(20).hex()}?per_page=100&after={r.randbytes(12).hex()}",
        )
        for _ in range(25)
    ],
    "llm-long-context": lambda r, s: [_anthropic(r, _sentence(r, 20_000))],
    **DAILY,
}


def _by_kind(secrets: list[Secret], kind: str) -> str:
    return next(s.value for s in secrets if s.kind == kind)


def _pypi_upload(r: random.Random) -> Step:
    boundary = "----pypi" + r.randbytes(8).hex()
    fields = {
        ":action": "file_upload",
        "name": "mypkg",
        "version": "1.0.0",
        "sha256_digest": r.randbytes(32).hex(),
        "md5_digest": r.randbytes(16).hex(),
    }
    body = b""
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        body += f"{head}{value}\r\n".encode()
    body += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="mypkg-1.0.0.tar.gz"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    body += gzip.compress(r.randbytes(80_000)) + f"\r\n--{boundary}--\r\n".encode()
    return Step(
        "http",
        "upload.pypi.org",
        path="/legacy/",
        body=body,
        headers=(("content-type", f"multipart/form-data; boundary={boundary}"),),
    )


def benign_cases(secrets: list[Secret], seed: int, reps: int) -> list[Case]:
    rng = random.Random(seed + 1)
    cases = []
    for tier, shapes in (("core", CORE), ("hard", HARD)):
        for name, shape in shapes.items():
            for rep in range(reps):
                cases.append(Case(f"{name}/{rep}", tier, name, name, False, shape(rng, secrets)))
    return cases
