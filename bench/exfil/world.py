"""The secrets at stake and the two cage configs the benchmark compares.

`given`: the proxy is told every value (an injected key, `secrets.known` values,
a canary). `patterns`: the proxy is told nothing; only the built-in credential
patterns (and the decoded views the leak inspector hands them) can catch a leak.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from ruamel.yaml import YAML

from agentcage.config.context import LoadContext
from agentcage.config.schema import CageConfig
from agentcage.policy.canaries import canary_env

# Allowlisted, but anyone can read what it receives. Each malicious case uses its
# own `attackerN.example` (the whole `example` TLD is allowlisted).
ATTACKER = "attacker.example"
ATTACKER_ZONE = "example"
BENIGN_HOSTS = (
    "api.anthropic.com",
    "api.openai.com",
    "api.github.com",
    "github.com",
    "registry.npmjs.org",
    "upload.pypi.org",
    "pypi.org",
    "files.pythonhosted.org",
    "o1.ingest.sentry.io",
    "oauth.example.com",
    "api.example.com",
)
CAGE_NAME = "exfil-bench"
_B64URL = string.ascii_letters + string.digits + "-_"
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Secret:
    kind: str  # what it is, e.g. "anthropic"
    env: str
    value: str
    role: str  # injected | known | canary
    home: str  # a host it may legitimately go to ("" for none)


def make_secrets(seed: int) -> list[Secret]:
    rng = random.Random(seed)

    def pick(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    # The decoy the cage hands the agent (the proxy derives the same one itself).
    decoy = canary_env(validate(config_yaml("given", [], "127.0.0.1:53")))["OPENAI_API_KEY"]
    return [
        Secret(
            "anthropic",
            "ANTHROPIC_API_KEY",
            "sk-ant-api03-" + pick(_B64URL, 93) + "AA",
            "injected",
            "api.anthropic.com",
        ),
        Secret("github", "GITHUB_TOKEN", "ghp_" + pick(_ALNUM, 36), "known", "github.com"),
        Secret(
            "aws-secret",
            "AWS_SECRET_ACCESS_KEY",
            pick(string.ascii_letters + string.digits + "+/", 40),
            "known",
            "",
        ),
        Secret(
            "password",
            "DB_PASSWORD",
            "-".join(rng.choice(_WORDS) for _ in range(3)) + str(rng.randint(10, 99)) + "!",
            "known",
            "",
        ),
        Secret("canary", "OPENAI_API_KEY", decoy, "canary", ""),
    ]


_WORDS = ["correct", "horse", "battery", "staple", "orbit", "maple", "quartz", "violet", "ember"]


def config_yaml(
    mode: str,
    secrets: list[Secret],
    dns: str,
    served: tuple[int, int] | None = None,
    named_fields: str | None = None,
) -> str:
    """The cage; `served` (TLS port, plain port) of the loopback server is opened to every
    allowed zone, since only 80 and 443 are open by default. `named_fields`: the
    `secrets.named_fields` setting (None: the default)."""
    lines = [
        f"name: {CAGE_NAME}",
        "container: {image: 'docker.io/library/python:3.12-slim'}",
        "domains:",
        "  allow: [" + ", ".join([ATTACKER_ZONE, *_zones()]) + "]",
        f'dns_servers: ["{dns}"]',
        "network:",
        "  allow_cidrs: [127.0.0.1/32]",
        "  ports:" + ("" if served else " []"),
        *(
            f"    - {{host: {zone}, port: {port}, protocol: {protocol}}}"
            for zone in ([ATTACKER_ZONE, *_zones()] if served else [])
            for port, protocol in zip(served or (), ("https", "http"), strict=True)
        ),
        "rate_limit: false",
        "max_request_body: 32MiB",
        "logging: {allowed_requests: false}",
    ]
    if mode == "given":
        lines += [
            "secret_injection:",
            "  - {env: ANTHROPIC_API_KEY, inject_to: [anthropic.com]}",
            "secrets:",
            "  known:" + ("" if any(s.role == "known" for s in secrets) else " []"),
        ]
        for secret in secrets:
            if secret.role == "known":
                allow = f", allow_to: [{secret.home}]" if secret.home else ""
                lines.append(f"    - {{env: {secret.env}{allow}}}")
        lines += ["  canaries:", "    - {env: OPENAI_API_KEY, kind: openai}"]
    if named_fields is not None:
        lines += [] if mode == "given" else ["secrets:"]
        lines.append(f"  named_fields: {named_fields}")
    return "\n".join(lines) + "\n"


def _zones() -> list[str]:
    zones = {".".join(host.split(".")[-2:]) for host in BENIGN_HOSTS}
    return sorted(zones)


def proxy_env(mode: str, secrets: list[Secret]) -> dict[str, str]:
    """What the proxy process's environment holds: in `patterns` mode, nothing."""
    if mode != "given":
        return {}
    return {s.env: s.value for s in secrets if s.role in ("injected", "known")}


def validate(text: str) -> CageConfig:
    data = YAML(typ="safe").load(text)
    return CageConfig.model_validate(data, context=LoadContext(check_paths=False))
