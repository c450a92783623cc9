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
from typing import TYPE_CHECKING

from agentcage.errors import PolicyError
from agentcage.policy.formats import wordlist
from agentcage.policy.formats.anchor_search import WideAnchorSearch, automaton, occurrences
from agentcage.policy.formats.builtin import BUILTIN_PATTERNS
from agentcage.policy.formats.disguises import DisguiseFinder, case_folded
from agentcage.policy.formats.documentation import token_example
from agentcage.policy.formats.named_values import NAMED_FIELD
from agentcage.policy.formats.pattern import (
    MIN_RUN,
    CredentialPattern,
    LazyRegex,
    Shape,
    matched_value,
)
from agentcage.policy.formats.regex_safety import nested_quantifier
from agentcage.policy.runs import windows
from agentcage.policy.types import Verdict

if TYPE_CHECKING:
    from agentcage.config.inspection import SecretsConfig


_CONTEXT = 64  # bytes kept around a run for prefixes such as "AccountKey=" or "SG."
# Longer than any credential format (JWTs included): only such a run's ends are searched.
_MAX_RUN = 16 * 1024
# Places this short (header values and names, most URL paths) have their matches
# remembered: an agent sends the same user-agent, accept and placeholder values on
# every request, and each costs about 3 us of fixed work even when it is three bytes.
_MEMO_BELOW = 257
_MEMO_ENTRIES = 1024  # then forgotten all at once: bounded, whatever an agent sends
# What a match is (`PatternScanner._kind`).
_NONE, _STAND_IN, _REAL = 0, 1, 2


class PatternScanner:
    """Which credential patterns occur in a byte string, found in as few passes as can be."""

    def __init__(
        self,
        patterns: Sequence[CredentialPattern],
        documentation: str = "skip",
        *,
        disguised: bool = True,
    ) -> None:
        """`disguised`: also look for the formats reversed, under letter ciphers and in
        other cases (`disguises.py`)."""
        self.patterns = list(patterns)
        self.documentation = documentation
        self._skip_documentation = documentation == "skip"
        plain = [p for p in self.patterns if p.shape is None]
        # One pass over the token windows says which anchors occur there, instead of
        # one substring search per anchor per pattern per window.
        self._anchors = sorted({a for p in plain for a in p.anchors if a})
        self._anchor_search = automaton(self._anchors)
        # The few formats searched everywhere (`anchor_search.py`).
        wide = [p for p in plain if p.anywhere]
        self._wide = WideAnchorSearch(
            [a for p in wide if not p.has_gap for a in p.anchors],
            [a for p in wide if p.has_gap for a in p.anchors],
        )

        # Which patterns an anchor can start, so a place with none of them (most
        # header values) costs no loop over every pattern.
        self._by_anchor: dict[bytes, list[int]] = {}
        self._unanchored: list[int] = []
        # Formats with no token run and no anchor, by the shape that finds their
        # stretches (one pass per shape, shared by its formats).
        self._shapes: dict[str, tuple[Shape, list[int]]] = {}
        for index, pattern in enumerate(self.patterns):
            if pattern.shape is not None:
                self._shapes.setdefault(pattern.shape.name, (pattern.shape, []))[1].append(index)
                continue
            if not pattern.anchors:
                self._unanchored.append(index)
            for anchor in pattern.anchors:
                self._by_anchor.setdefault(anchor, []).append(index)
        # Built only when used: its variants and automaton hold about 1.5 MiB, and the
        # leak inspector's scanner for its guesses (`disguised=False`) never asks it.
        # Built on the first scan or by `warm`, not here: 6 to 7 ms, and its anchors
        # are the built-in formats' only, so building it cannot fail on a config.
        self._disguised = disguised
        self._disguises: DisguiseFinder | None = None
        # With `documentation_values: block`, what a stand-in counts as. A format only
        # flagged (a JWT, a Bitcoin address) is so because real ones are everyday
        # traffic: bearer tokens of the APIs the agent uses, public addresses it looks
        # up. A stand-in is nobody's token or wallet, so that reason does not hold.
        # A field found by its name is not a format imitated: its stand-in (a
        # placeholder password) is no more blocked than the real value.
        self._stand_ins = [
            p if p.defers else dataclasses.replace(p, verdict=Verdict.BLOCK) for p in self.patterns
        ]
        self._folded: dict[int, re.Pattern[bytes]] = {}
        self._deferring = frozenset(i for i, p in enumerate(self.patterns) if p.defers)
        self._memo: dict[bytes, tuple[tuple[CredentialPattern, str], ...]] = {}

    @classmethod
    def from_config(cls, config: SecretsConfig, environ: Mapping[str, str]) -> PatternScanner:
        return cls(build_patterns(config, environ), config.documentation_values)

    def warm(self) -> None:
        """Compile every pattern's regex and build the disguise search now, so the first
        scan does not (`LazyRegex`); what any scan finds is the same either way."""
        for pattern in self.patterns:
            pattern.lazy_regex.compiled()
        self._disguise_finder()

    def _disguise_finder(self) -> DisguiseFinder | None:
        if self._disguises is None and self._disguised:
            self._disguises = DisguiseFinder(self.patterns)
        return self._disguises

    def matches(self, data: bytes) -> Iterator[tuple[CredentialPattern, str]]:
        """`matching`, then the formats found disguised (`disguises.py`), each with
        how it was disguised ("" for none).

        What a short place holds depends on its bytes and this scanner alone (its
        patterns are fixed; a reload builds a new scanner), so it is worked out once.
        """
        if len(data) >= _MEMO_BELOW or type(data) is not bytes:
            return self._matches(data)
        found = self._memo.get(data)
        if found is None:
            found = tuple(self._matches(data))
            if len(self._memo) >= _MEMO_ENTRIES:
                self._memo.clear()
            self._memo[data] = found
        return iter(found)

    def _matches(self, data: bytes) -> Iterator[tuple[CredentialPattern, str]]:
        found: set[str] = set()
        spans = _spans(data)
        for pattern in self._matching(data, spans):
            found.add(pattern.name)
            yield pattern, ""
        disguises = self._disguise_finder()
        if disguises is None:
            return
        for disguised in disguises.find(data, spans):
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
            if any(self._real(pattern, m) for m in regex.finditer(window)):
                yield pattern

    def matching(self, data: bytes) -> Iterator[CredentialPattern]:
        """The patterns with a real match in `data`, in catalogue order."""
        # Most header values are shorter than any token run: only the few formats
        # searched everywhere can be in them.
        spans = _spans(data)
        return self._matching(data, spans)

    def _matching(
        self, data: bytes, spans: list[tuple[int, int]], *, own_only: bool = False
    ) -> Iterator[CredentialPattern]:
        """`own_only`: leave out the formats read from a name beside the value."""
        present = occurrences(self._anchor_search, self._anchors, data, spans) if spans else {}
        present.update(self._wide.present(data))
        candidates = {i for anchor in present for i in self._by_anchor[anchor]}
        candidates.update(i for i in self._unanchored if spans or self.patterns[i].anywhere)
        shaped: dict[int, list[tuple[int, int]]] = {}
        for shape, members in self._shapes.values():
            stretches = shape.spans(data)
            if stretches:
                shaped.update((index, stretches) for index in members)
        candidates.update(shaped)
        if own_only:
            candidates -= self._deferring
        for index in sorted(candidates):  # in catalogue order, as the findings are ranked
            pattern = self.patterns[index]
            if index in shaped:
                places = shaped[index]
            elif pattern.anywhere:
                places = _near(pattern, present, len(data))
            else:
                places = [
                    (lo, hi)
                    for lo, hi in spans
                    if not pattern.anchors
                    or any(data.find(a, lo, hi) >= 0 for a in pattern.anchors)
                ]
            best = _NONE
            for lo, hi in places:
                for m in pattern.regex.finditer(data, lo, hi):
                    best = max(best, self._kind(pattern, m))
                    if best == _REAL:
                        break
                if best == _REAL:
                    break
            if best == _REAL:
                yield pattern
            elif best == _STAND_IN:
                yield self._stand_ins[index]

    def _real(self, pattern: CredentialPattern, match: re.Match[bytes]) -> bool:
        return self._kind(pattern, match) != _NONE

    def _kind(self, pattern: CredentialPattern, match: re.Match[bytes]) -> int:
        """`_REAL`: the value passes its checksum and is no documentation stand-in;
        `_STAND_IN`: it is one, and those are to be blocked too; else `_NONE`."""
        value = matched_value(match)
        if pattern.check is not None and not pattern.check(value):
            return _NONE
        if pattern.context is not None and not pattern.context(match):
            return _NONE
        if pattern.defers and self._has_own_format(value):
            return _NONE
        if not pattern.skip_examples:
            return _REAL
        if pattern.example is not None:
            example = pattern.example(value)
        else:
            example = token_example(value, pattern.anchors)
        if not example:
            return _REAL
        return _NONE if self._skip_documentation else _STAND_IN

    def _has_own_format(self, value: bytes) -> bool:
        """`value` is (or holds) a format that is not read from a name beside it."""
        return any(True for _ in self._matching(value, _spans(value), own_only=True))


def _spans(data: bytes) -> list[tuple[int, int]]:
    """The token windows a format can be in (none when `data` is shorter than any)."""
    return windows(data, MIN_RUN, _CONTEXT, _CONTEXT, _MAX_RUN) if len(data) >= MIN_RUN else []


def _near(
    pattern: CredentialPattern, present: dict[bytes, list[int]], size: int
) -> list[tuple[int, int]]:
    """Where an `anywhere` pattern can match: the whole payload, or windows within
    its `reach` of each occurrence of its anchors."""
    if pattern.reach is None:
        return [(0, size)]
    before, after = pattern.reach
    hits = sum(len(present.get(anchor, ())) for anchor in pattern.anchors)
    if hits * (before + after) >= size:
        # Anchors everywhere (code full of `token` and `secret`): the windows would
        # cover the payload anyway, and merging tens of thousands costs more than
        # the regex.
        return [(0, size)]
    spots = sorted(
        (max(0, at - before), min(size, at + len(anchor) + after))
        for anchor in pattern.anchors
        for at in present.get(anchor, ())
    )
    merged: list[tuple[int, int]] = []
    for lo, hi in spots:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


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
    wordlist.load()  # a missing or altered BIP-39 list stops the proxy at startup
    patterns: list[CredentialPattern] = []
    for pattern in [*builtin.values(), *extra]:
        if pattern.name == NAMED_FIELD:
            if config.named_fields == "off":
                continue
            if config.named_fields == "block":
                pattern = dataclasses.replace(pattern, verdict=Verdict.BLOCK)
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
            LazyRegex.ready(re.compile(re.escape(literal))),
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
        name, LazyRegex.ready(compiled), (), (), "extra pattern", anywhere=True, skip_examples=False
    )
