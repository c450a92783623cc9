"""The leak detector as one inspector of the policy chain, built from the cage config.

It protects three kinds of value: each injected secret's real value and its
placeholder (allowed only toward the rule's `inject_to` hosts), every
`secrets.known` value (allowed only to its `allow_to` hosts) and every
`secrets.canaries` decoy (allowed nowhere). It also hands the decoded views it
makes (base64, hex, percent, escapes, compression, nested up to three layers) to
the built-in pattern scanner, so a credential format hidden under an encoding is
caught even when its value is not known.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from agentcage.config.inspection import KnownSecret, SecretsConfig
from agentcage.config.schema import CageConfig
from agentcage.errors import PolicyError
from agentcage.policy.decoding import DecodeError
from agentcage.policy.interface import RequestInspector
from agentcage.policy.leaks.canaries import canary_value
from agentcage.policy.leaks.detector import NAME, LeakDetector, LeakSettings
from agentcage.policy.leaks.protected import Protected
from agentcage.policy.leaks.split import WindowLimits
from agentcage.policy.leaks.unwrap import View
from agentcage.policy.payload import Payloads
from agentcage.policy.types import Finding, Frame, Headers, Request

# Env var (or secret) holding this cage's canary seed; without it the cage name is
# used, which keeps values stable but lets someone who knows the name recompute them.
CANARY_SEED_ENV = "AGENTCAGE_CANARY_SEED"


_CONTENT_CODINGS = ("gzip", "x-gzip", "deflate", "br", "zstd")


class LeakInspector:
    name = NAME

    def __init__(
        self,
        detector: LeakDetector,
        payloads: Payloads | None = None,
        patterns: RequestInspector | None = None,
    ) -> None:
        self.detector = detector
        self._payloads = payloads
        self._patterns = patterns

    @classmethod
    def from_config(
        cls,
        config: CageConfig,
        secrets: Mapping[str, str],
        environ: Mapping[str, str],
        *,
        base_dir: Path | None = None,
        payloads: Payloads | None = None,
        patterns: RequestInspector | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> LeakInspector:
        """Raise `PolicyError` if a known secret cannot be read: better no cage than a
        cage that silently stops protecting it."""
        protected = protected_values(config, secrets, environ, base_dir)
        detector = LeakDetector(protected, settings_from(config.secrets), clock)
        return cls(detector, payloads, patterns)

    def inspect_request(self, request: Request) -> Finding | None:
        body, encoding = request.body, request.content_encoding
        if self._payloads is not None and body:
            # An undecodable body is blocked by the decoding inspector; look at what we can.
            with contextlib.suppress(DecodeError):
                body, encoding = self._payloads.of(request).data, ""
        decoded = dataclasses.replace(request, body=body)
        views = self.detector.request_views(decoded, encoding)
        findings = self.detector.check_request(decoded, views)
        if findings:
            return findings[0]
        return self._patterns_beneath(request, views)

    def inspect_frame(self, frame: Frame) -> Finding | None:
        if not frame.from_client:
            return None
        views = self.detector.frame_views(frame)
        findings = self.detector.check_frame(frame, views)
        if findings:
            return findings[0]
        return self._patterns_beneath(frame, views)

    def inspect_dns(self, qname: str) -> Finding | None:
        findings = self.detector.check_dns(qname)
        return findings[0] if findings else None

    def _patterns_beneath(self, subject: Request | Frame, views: list[View]) -> Finding | None:
        """Run the pattern scanner on each decoded view (the raw one it has seen)."""
        if self._patterns is None:
            return None
        for view in _decoded(views):
            probe = Request("POST", "https", subject.host, subject.port, "/", Headers(), view.data)
            found = self._patterns.inspect_request(probe)
            if found is not None:
                where = f" (beneath {view.label})"
                return dataclasses.replace(found, reason=found.reason + where)
        return None


def _decoded(views: list[View]) -> Iterator[View]:
    for view in views:
        # The scanner has already seen the raw body and its Content-Encoding undone.
        first = view.layers[0] if view.layers else None
        if first is not None and (first not in _CONTENT_CODINGS or len(view.layers) > 1):
            yield view


def settings_from(config: SecretsConfig) -> LeakSettings:
    window = config.split_window
    return LeakSettings(
        min_length=config.min_known_length,
        window=WindowLimits(
            max_pieces=window.max_pieces,
            max_age=window.max_age_seconds,
            max_destinations=window.max_destinations,
            min_piece=window.min_piece,
            coverage=window.coverage,
        ),
    )


def protected_values(
    config: CageConfig,
    secrets: Mapping[str, str],
    environ: Mapping[str, str],
    base_dir: Path | None = None,
) -> list[Protected]:
    out: list[Protected] = []
    for rule in config.secret_injection:
        hosts = tuple(rule.inject_to)
        out.append(Protected(rule.env, rule.token.encode(), "placeholder", hosts))
        value = secrets.get(rule.env)
        if value:
            out.append(Protected(rule.env, value.encode(), "injected", hosts))
    for known in config.secrets.known:
        known_value = _known_value(known, secrets, environ, base_dir)
        out.append(Protected(known.label, known_value, "known", tuple(known.allow_to)))
    seed = (secrets.get(CANARY_SEED_ENV) or environ.get(CANARY_SEED_ENV) or config.name).encode()
    for canary in config.secrets.canaries:
        value = canary.value or canary_value(canary.kind, canary.env, seed)
        out.append(Protected(canary.env, value.encode(), "canary"))
    return out


def canary_env(config: CageConfig, seed: str | None = None) -> dict[str, str]:
    """The decoys to put in the agent's environment: env name -> value."""
    material = (seed or config.name).encode()
    return {
        c.env: c.value or canary_value(c.kind, c.env, material) for c in config.secrets.canaries
    }


def _known_value(
    known: KnownSecret,
    secrets: Mapping[str, str],
    environ: Mapping[str, str],
    base_dir: Path | None,
) -> bytes:
    if known.env is not None:
        text = secrets.get(known.env) or environ.get(known.env)
        if not text:
            raise PolicyError(
                f"secrets.known: {known.env} is not set, so it cannot be protected",
                hint=f"set {known.env} in the proxy's environment, use `file:` for a value "
                "kept in a file, or remove the entry",
            )
        return text.encode()
    assert known.file is not None
    path = Path(known.file)
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(
            f"secrets.known: cannot read {path}: {exc.strerror}",
            hint="point `file:` at a readable file holding the value, or remove the entry",
        ) from exc
    value = data.strip()
    if not value:
        raise PolicyError(f"secrets.known: {path} is empty", hint="put the value in the file")
    return value
