"""The `leaks` inspector: the leak detector (`policy/leaks/`) as one link of the chain.

Built from the cage config, it protects three kinds of value: each injected
secret's real value and its placeholder (allowed only toward the rule's
`inject_to` hosts), every `secrets.known` value (allowed only to its `allow_to`
hosts) and every `secrets.canaries` decoy (allowed nowhere). It also hands the
decoded views it makes (base64, hex, percent, escapes, compression, nested up to
three layers) to the built-in pattern scanner, so a credential format hidden
under an encoding is caught even when its value is not known.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from agentcage.policy.decoding import DecodeError
from agentcage.policy.inspectors.credential_formats import CredentialFormatInspector
from agentcage.policy.leaks.automaton import Automaton
from agentcage.policy.leaks.detector import NAME, LeakDetector, LeakSettings
from agentcage.policy.leaks.protected import protected_values
from agentcage.policy.leaks.split import WindowLimits
from agentcage.policy.leaks.unwrap import DEJUNKED, Limits, View
from agentcage.policy.payload import Payloads
from agentcage.policy.types import Finding, Frame, Headers, Request

if TYPE_CHECKING:
    from agentcage.config.inspection import SecretsConfig
    from agentcage.config.schema import CageConfig


_CONTENT_CODINGS = ("gzip", "x-gzip", "deflate", "br", "zstd")
# Views that are guesses, not decodings: every other character of a run, text under
# a likely XOR key. Exact values are safe to look for in them, and formats with a
# distinctive anchor; a loose format (a run of `A`s, a long base64 body, a name next
# to a value) would match the noise they also make of ordinary data.
_GUESSES = frozenset({"interleaved", "xor", DEJUNKED})


class LeakInspector:
    name = NAME

    def __init__(
        self,
        detector: LeakDetector,
        payloads: Payloads | None = None,
        patterns: CredentialFormatInspector | None = None,
    ) -> None:
        self.detector = detector
        self._payloads = payloads
        self._patterns = patterns
        self._guessed = patterns.for_guesses() if patterns is not None else None
        # Every format looked for in the guesses starts with one of these: a guess
        # without any (most) costs one pass, not the scanner's places. A DFA: its
        # ~170 short anchors leave the prefilter many candidates, and the dejunked
        # view (nine copies of a small body) is searched on every request; 0.027
        # to 0.016 ms on a 1 KiB body's.
        self._guess_anchors: Automaton[None] = Automaton(
            (
                (a, None)
                for p in (self._guessed.scanner.patterns if self._guessed else ())
                for a in p.anchors
            ),
            dfa=True,
        )

    @classmethod
    def from_config(
        cls,
        config: CageConfig,
        secrets: Mapping[str, str],
        environ: Mapping[str, str],
        *,
        base_dir: Path | None = None,
        payloads: Payloads | None = None,
        patterns: CredentialFormatInspector | None = None,
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
        decoded = request if body is request.body else dataclasses.replace(request, body=body)
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

    def _patterns_beneath(self, subject: Request | Frame, views: list[View]) -> Finding | None:
        """Run the pattern scanner on each decoded view (the raw one it has seen), with
        only its distinctive formats on the guesses."""
        if self._patterns is None or self._guessed is None:
            return None
        for view in _decoded(views):
            guess = bool(_GUESSES.intersection(view.layers))
            if guess and view.data not in self._guess_anchors:
                continue
            inspector = self._guessed if guess else self._patterns
            probe = Request("POST", "https", subject.host, subject.port, "/", Headers(), view.data)
            found = inspector.inspect_decoded(probe)
            if found is not None:
                where = f" (beneath {view.label})"
                return dataclasses.replace(found, reason=found.reason + where)
        return None


def _decoded(views: list[View]) -> Iterator[View]:
    for view in views:
        # The scanner has already seen the raw body and its Content-Encoding undone.
        first = view.layers[0] if view.layers else None
        if first is None:
            continue
        if first not in _CONTENT_CODINGS or len(view.layers) > 1:
            yield view


def settings_from(config: SecretsConfig) -> LeakSettings:
    window = config.split_window
    return LeakSettings(
        min_length=config.min_known_length,
        unwrap=Limits(budget=config.decode_budget),
        window=WindowLimits(
            max_pieces=window.max_pieces,
            max_age=window.max_age_seconds,
            max_destinations=window.max_destinations,
            min_piece=window.min_piece,
            coverage=window.coverage,
        ),
    )
