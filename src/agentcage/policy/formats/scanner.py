"""Find credential formats in bytes: anchors first, then each candidate's regex.

`build_patterns` turns the `secrets` config into the list of patterns (built-in and
extra, each with the hosts it may go to); `PatternScanner.matching` says which of
them occur in a byte string. What is scanned and what a match means is the
`secrets` inspector's business (`policy/inspectors/credential_formats.py`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence

import ahocorasick_rs

from agentcage.config.inspection import SecretsConfig
from agentcage.errors import PolicyError
from agentcage.policy.formats.builtin import (
    BUILTIN_PATTERNS,
    MIN_RUN,
    CredentialPattern,
)
from agentcage.policy.formats.disguises import DisguiseFinder, case_folded
from agentcage.policy.formats.regex_safety import nested_quantifier
from agentcage.policy.runs import token_runs, windows

_CONTEXT = 64  # bytes kept around a run for prefixes such as "AccountKey=" or "SG."
# Longer than any credential format (JWTs included): only such a run's ends are searched.
_MAX_RUN = 16 * 1024
_LONG_RUN = 4096  # runs whose middles the anywhere-anchor search skips
# Longer than any match of a `has_gap` format: a match overlapping a run's edge
# reaches no further into the run than this.
_GAP_MARGIN = 128


class PatternScanner:
    """Which credential patterns occur in a byte string, found in as few passes as can be."""

    def __init__(self, patterns: Sequence[CredentialPattern]) -> None:
        self.patterns = list(patterns)
        # One pass over the token windows says which anchors occur there, instead of
        # one substring search per anchor per pattern per window.
        self._anchors = sorted({a for p in self.patterns for a in p.anchors if a})
        self._anchor_search = _automaton(self._anchors)
        # The few formats searched everywhere: one SIMD pass over the payload instead
        # of a substring search per anchor. That pass slows down 100x on random
        # letters, so formats whose every match holds a non-token byte skip the
        # middles of long token runs (a base64 screenshot), where none can be.
        wide = [p for p in self.patterns if p.anywhere]
        self._solid = sorted({a for p in wide if not p.has_gap for a in p.anchors})
        self._gapped = sorted({a for p in wide if p.has_gap for a in p.anchors})
        self._solid_search = _automaton(self._solid)
        self._gapped_search = _automaton(self._gapped)
        self._shortest_wide = min((len(a) for a in self._solid + self._gapped), default=0)

        # Which patterns an anchor can start, so a place with none of them (most
        # header values) costs no loop over every pattern.
        self._by_anchor: dict[bytes, list[int]] = {}
        self._unanchored: list[int] = []
        for index, pattern in enumerate(self.patterns):
            if not pattern.anchors:
                self._unanchored.append(index)
            for anchor in pattern.anchors:
                self._by_anchor.setdefault(anchor, []).append(index)
        self._disguises = DisguiseFinder(self.patterns)
        self._folded: dict[int, re.Pattern[bytes]] = {}

    @classmethod
    def from_config(cls, config: SecretsConfig, environ: Mapping[str, str]) -> PatternScanner:
        return cls(build_patterns(config, environ))

    def matches(self, data: bytes) -> Iterator[tuple[CredentialPattern, str]]:
        """`matching`, then the formats found disguised (`disguises.py`), each with
        how it was disguised ("" for none)."""
        found: set[str] = set()
        spans = windows(data, MIN_RUN, _CONTEXT, _CONTEXT, _MAX_RUN) if len(data) >= MIN_RUN else []
        for pattern in self._matching(data, spans):
            found.add(pattern.name)
            yield pattern, ""
        for disguised in self._disguises.find(data, spans):
            for pattern in self._undisguised(disguised.how, disguised.anchor, disguised.window):
                if pattern.name not in found:
                    found.add(pattern.name)
                    yield pattern, disguised.how

    def _undisguised(self, how: str, anchor: bytes, window: bytes) -> Iterator[CredentialPattern]:
        if how != "case-changed":
            yield from self.matching(window)
            return
        for index in self._by_anchor.get(anchor, ()):
            pattern = self.patterns[index]
            regex = self._folded.get(index)
            if regex is None:
                regex = self._folded[index] = case_folded(pattern)
            if any(_real(pattern, m) for m in regex.finditer(window)):
                yield pattern

    def matching(self, data: bytes) -> Iterator[CredentialPattern]:
        """The patterns with a real match in `data`, in catalogue order."""
        # Most header values are shorter than any token run: only the few formats
        # searched everywhere can be in them.
        spans = windows(data, MIN_RUN, _CONTEXT, _CONTEXT, _MAX_RUN) if len(data) >= MIN_RUN else []
        return self._matching(data, spans)

    def _matching(self, data: bytes, spans: list[tuple[int, int]]) -> Iterator[CredentialPattern]:
        present = _present(self._anchor_search, self._anchors, data, spans) if spans else set()
        short = len(data) < self._shortest_wide  # no anywhere-format anchor fits
        if self._solid_search is not None and not short:
            present |= _present(self._solid_search, self._solid, data, [(0, len(data))])
        if self._gapped_search is not None and not short:
            outside = _outside_long_runs(data, _GAP_MARGIN)
            present |= _present(self._gapped_search, self._gapped, data, outside)
        candidates = {i for anchor in present for i in self._by_anchor[anchor]}
        candidates.update(i for i in self._unanchored if spans or self.patterns[i].anywhere)
        for index in sorted(candidates):  # in catalogue order, as the findings are ranked
            pattern = self.patterns[index]
            if pattern.anywhere:
                if any(_real(pattern, m) for m in pattern.regex.finditer(data)):
                    yield pattern
                continue
            for lo, hi in spans:
                if pattern.anchors and not any(data.find(a, lo, hi) >= 0 for a in pattern.anchors):
                    continue
                if any(_real(pattern, m) for m in pattern.regex.finditer(data, lo, hi)):
                    yield pattern
                    break


def _outside_long_runs(data: bytes, margin: int) -> list[tuple[int, int]]:
    """`data` but the middles of its long token runs, `margin` bytes from each end
    kept (so a match shorter than that, overlapping a run's edge, is still whole)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    if len(data) >= _LONG_RUN:
        for start, end in token_runs(data, _LONG_RUN):
            if end - start > 2 * margin:
                spans.append((pos, start + margin))
                pos = end - margin
    spans.append((pos, len(data)))
    return spans


def _automaton(anchors: list[bytes]) -> ahocorasick_rs.BytesAhoCorasick | None:
    return ahocorasick_rs.BytesAhoCorasick(anchors) if anchors else None


def _present(
    search: ahocorasick_rs.BytesAhoCorasick | None,
    anchors: list[bytes],
    data: bytes,
    spans: list[tuple[int, int]],
) -> set[bytes]:
    """Anchors occurring in the spans (overlapping search: none hides another)."""
    present: set[bytes] = set()
    if search is None:
        return present
    view = memoryview(data)
    for lo, hi in spans:
        found = search.find_matches_as_indexes(view[lo:hi], overlapping=True)
        present.update(anchors[index] for index, _start, _end in found)
    return present


_EXAMPLE_MARKERS = (b"EXAMPLE", b"example", b"Example")
_MIN_DISTINCT = 6
_SEPARATORS = re.compile(rb"[_\-.:=/+]")


def _real(pattern: CredentialPattern, match: re.Match[bytes]) -> bool:
    """False for documentation stand-ins: `...EXAMPLE...` or a near-constant filler."""
    if not pattern.skip_examples:
        return True
    text = match.group()
    if any(marker in text for marker in _EXAMPLE_MARKERS):
        return False
    # Judge the random part, not the fixed prefix: `sk_live_0000...` is filler.
    body = max(_SEPARATORS.split(text), key=len)
    return len(set(body)) >= _MIN_DISTINCT


def build_patterns(config: SecretsConfig, environ: Mapping[str, str]) -> list[CredentialPattern]:
    """Built-in and extra patterns, each with the hosts it may go to under this config."""
    builtin = {p.name: p for p in BUILTIN_PATTERNS}
    extra = [_extra(spec.name, spec.pattern, spec.env, environ) for spec in config.extra_patterns]
    names = set(builtin) | {p.name for p in extra}
    for name in config.allow_to_domains:
        if name not in names:
            raise PolicyError(
                f"secrets.allow_to_domains names {name!r}, which is no secret pattern",
                hint=f"use one of: {', '.join(sorted(names))}",
            )
    patterns: list[CredentialPattern] = []
    for pattern in [*builtin.values(), *extra]:
        hosts = pattern.hosts if config.builtin_allow_to_domains else ()
        hosts = tuple(config.allow_to_domains.get(pattern.name, hosts))
        patterns.append(dataclasses.replace(pattern, hosts=hosts))
    return patterns


def _extra(
    name: str, regex: str | None, env: str | None, environ: Mapping[str, str]
) -> CredentialPattern:
    if env is not None:
        value = environ.get(env)
        if not value:
            raise PolicyError(
                f"secrets.extra_patterns {name!r} matches the value of ${env}, which is not set",
                hint=f"set {env} in the proxy's environment, or remove the pattern",
            )
        literal = value.encode()
        return CredentialPattern(
            name,
            re.compile(re.escape(literal)),
            (literal,),
            (),
            f"${env}",
            anywhere=True,
            skip_examples=False,
        )
    assert regex is not None
    if nested_quantifier(regex):
        raise PolicyError(
            f"secrets.extra_patterns {name!r}: the pattern nests a repeat inside a repeat, "
            "which can take exponential time on a crafted request",
            hint="flatten it (e.g. `[a-z.]+` instead of `([a-z]+\\.)+`) or make the inner "
            "repeat possessive (`[a-z]++`)",
        )
    try:
        compiled = re.compile(regex.encode())
    except re.error as exc:
        raise PolicyError(
            f"secrets.extra_patterns {name!r}: the pattern does not compile ({exc})",
            hint="fix the regular expression (Python `re` syntax)",
        ) from exc
    return CredentialPattern(
        name, compiled, (), (), "extra pattern", anywhere=True, skip_examples=False
    )
