"""Data in host names and URLs: each shape caught, and the names agents really reach passed.

The benign lists are the calibration set: names and paths of registries, CDNs,
cloud endpoints and everyday APIs, plus every host and path of the exfil
benchmark's benign corpus. A change of a threshold in `policy/data_shapes.py` must
keep them all passing.
"""

from __future__ import annotations

import base64
import random

import pytest
from bench.exfil.benign import benign_cases
from bench.exfil.world import make_secrets

from agentcage.policy.data_shapes import host_data_reason, path_token_reason, percent_layers
from agentcage.policy.types import Verdict
from tests.unit.policy.helpers import ALNUM, fake, policy, request

SECRET = b"sk_live_" + fake(ALNUM, 24).encode()
OPEN = {"domains": {"mode": "blocklist", "list": []}}


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


MALICIOUS_HOSTS = {
    "hex text": SECRET[:30].hex() + ".x.evil.example",
    "hex text over labels": SECRET.hex()[:20] + "." + SECRET.hex()[20:] + ".x.evil.example",
    "hex data over labels": ".".join(fake("0123456789abcdef", 8, n) for n in range(4)) + ".e.com",
    "base32": _b32(SECRET) + ".x.evil.example",
    "base32 of binary": "jbswy3dpehpk3pxp.exfil.evil.com",
    "base64 lower-cased": base64.b64encode(SECRET).decode().lower().rstrip("=") + ".x.evil.com",
    "chunks": "ghp-xxxx.yyyyzzzz.aaaabbbb.ccccdddd.exfil.evil.com",
}

BENIGN_HOSTS = [
    "api.github.com",
    "codeload.github.com",
    "objects.githubusercontent.com",
    "release-assets.githubusercontent.com",
    "registry.npmjs.org",
    "files.pythonhosted.org",
    "pypi.org",
    "proxy.golang.org",
    "static.crates.io",
    "index.crates.io",
    "registry-1.docker.io",
    "production.cloudflare.docker.com",
    "auth.docker.io",
    "ghcr.io",
    "pkg-containers.githubusercontent.com",
    "cdnjs.cloudflare.com",
    "cdn.jsdelivr.net",
    "unpkg.com",
    "o450000.ingest.sentry.io",
    "o1.ingest.us.sentry.io",
    "api.anthropic.com",
    "statsig.anthropic.com",
    "api.openai.com",
    "generativelanguage.googleapis.com",
    "storage.googleapis.com",
    "my-bucket.s3.us-east-1.amazonaws.com",
    "bucket.s3.dualstack.eu-west-1.amazonaws.com",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
    "d111111abcdef8.cloudfront.net",
    "e3b0c44298fc1c149afbf4c8996fb924.r2.cloudflarestorage.com",
    "myaccount.blob.core.windows.net",
    "app-12345678-abcd.azurewebsites.net",
    "my-app-git-feature-branch-abc123-team.vercel.app",
    "codespace-name-x5g9wj7vq4cp9v6-8080.app.github.dev",
    "abcd-12-34-56-78.ngrok-free.app",
    "5b1f4c2e3a7d9e8f.ngrok-free.app",
    "xn--bcher-kva.example.com",
    "us-central1-docker.pkg.dev",
    "europe-west1-run.googleapis.com",
    "hooks.slack.com",
    "gitlab.com",
    "bitbucket.org",
    "dev.azure.com",
    "login.microsoftonline.com",
    "static.assets.images.cdn.example.com",
]

BENIGN_PATHS = [
    "/repos/golang/go/issues?state=open&page=2&per_page=30&sort=updated",
    "/resources/550e8400-e29b-41d4-a716-446655440000/details",
    "/ajax/libs/lodash.js/4.17.21/lodash.min.js",
    "/v1/MyApplication2024Release/getUserProfileSettingsV2",
    "/packages/ab/cd/" + "0123456789abcdef" * 3 + "0123456789ab/pkg-1.0-py3-none-any.whl",
    "/v2/library/python/blobs/sha256:" + "ab12" * 16,
    "/github.com/stretchr/testify/@v/v1.9.0.zip",
    "/left-pad/-/left-pad-1.3.0.tgz",
    "/api/v1/crates/serde/1.0.197/download",
    "/org/repo/commit/0123456789abcdef0123456789abcdef01234567",
    "/search?q=how+to+fix+%22permission+denied%22+error",
    "/login/oauth/authorize?client_id=Iv1.abc&state=" + fake(ALNUM, 32),
    "/o/oauth2/v2/auth?code_challenge=" + fake(ALNUM + "-_", 43) + "&code_challenge_method=S256",
    "/path%2520with%2520double%2520encoding",
]


@pytest.mark.parametrize("host", list(MALICIOUS_HOSTS.values()), ids=list(MALICIOUS_HOSTS))
def test_data_in_host_names_is_recognised(host: str) -> None:
    assert host_data_reason(host) is not None


def _corpus() -> tuple[list[str], list[str]]:
    hosts, paths = [], []
    for case in benign_cases(make_secrets(3), seed=3, reps=3):
        for step in case.steps:
            hosts.append(step.host)
            paths.append(step.path)
    return hosts, paths


@pytest.mark.parametrize("host", BENIGN_HOSTS + _corpus()[0])
def test_names_agents_reach_are_not_data(host: str) -> None:
    assert host_data_reason(host) is None


@pytest.mark.parametrize("path", BENIGN_PATHS + _corpus()[1])
def test_everyday_paths_hold_no_random_token(path: str) -> None:
    assert path_token_reason(path) is None
    assert percent_layers(path) <= 2


def test_random_tokens_in_a_path_are_recognised() -> None:
    rng = random.Random(5)
    tokens = ["".join(rng.choice(ALNUM) for _ in range(32)) for _ in range(500)]
    found = sum(path_token_reason(f"/api/{token}/status") is not None for token in tokens)
    assert found >= 0.97 * len(tokens)


def test_percent_layers_are_counted() -> None:
    assert percent_layers("/x?k=%41") == 1
    assert percent_layers("/x?k=%2541") == 2
    assert percent_layers("/x?k=%25252541%25252549") == 4


def test_the_inspector_blocks_each_shape_in_blocklist_mode() -> None:
    engine = policy(**OPEN)
    for host in MALICIOUS_HOSTS.values():
        decision = engine.check_request(request(host, "/"))
        assert decision.verdict is Verdict.BLOCK and decision.inspector == "url-data", host
    for path in ("/exfil?key=%25252541%25252549", "/api/x7Kp2mQ9vR4sL8nW1bY6cT3fA0jH5dE/s"):
        assert engine.check_request(request("evil.example.com", path)).verdict is Verdict.BLOCK


def test_path_tokens_are_trusted_to_allowlisted_hosts_by_default() -> None:
    path = "/spreadsheets/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/edit"
    allowlist = policy(domains={"allow": ["googleapis.com"]})
    assert allowlist.check_request(request("sheets.googleapis.com", path)).verdict is Verdict.ALLOW
    always = policy(domains={"allow": ["googleapis.com"]}, url_data={"path_tokens": "always"})
    assert always.check_request(request("sheets.googleapis.com", path)).verdict is Verdict.BLOCK


def test_too_many_distinct_id_like_labels_under_one_domain() -> None:
    engine = policy(url_data={"max_data_labels": 4}, **OPEN)
    hosts = [f"a{n}b{n}c{n}d{n}.tunnel.example" for n in range(10, 16)]
    verdicts = [engine.check_request(request(h, "/")).verdict for h in hosts]
    assert verdicts == [Verdict.ALLOW] * 4 + [Verdict.BLOCK] * 2
    # Labels already seen keep passing; another domain has its own budget.
    assert engine.check_request(request(hosts[0], "/")).verdict is Verdict.ALLOW
    assert engine.check_request(request("a1b1c1d1.other.example", "/")).verdict is Verdict.ALLOW


def test_flag_action_and_disabling() -> None:
    flagged = policy(url_data={"action": "flag"}, **OPEN)
    decision = flagged.check_request(request(MALICIOUS_HOSTS["chunks"], "/"))
    assert decision.verdict is Verdict.FLAG
    off = policy(url_data=False, **OPEN)
    assert off.check_request(request(MALICIOUS_HOSTS["chunks"], "/")).verdict is Verdict.ALLOW
