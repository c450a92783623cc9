"""What a built-in credential format is, and the rules every format follows.

Rules for every pattern, so a scan stays linear on megabyte bodies:
- bytes regexes built from a literal prefix and bounded character-class repeats; no
  nested or unbounded quantifiers, no backreferences;
- a token-like match starts with `START` (not glued to a preceding token), so a
  repeat can only begin at a token boundary and never re-scans a run;
- `anchors`: literals at least one of which occurs in every match, checked with a
  fast substring search before the regex runs (an empty tuple means "always run");
- `hosts`: where the credential may go (a domain matches its subdomains too);
- every match contains a run of at least `MIN_RUN` characters from `TOKEN_ALPHABET`
  (the base64 alphabet, both flavours),
  so the scanner searches only windows around such runs; the formats without one
  either set `anywhere` (searched where their anchor occurs, within `reach` of it)
  or a `shape` (searched only in the stretches of the payload that shape finds:
  digit groups for card numbers, word runs for seed phrases).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from agentcage.policy.runs import BASE64_ALPHABET
from agentcage.policy.types import Verdict

TOKEN_ALPHABET = BASE64_ALPHABET
MIN_RUN = 20
# Not preceded by a token character or "-": `cache-key-<md5>` is not a Mailgun key.
START = rb"(?<![A-Za-z0-9_-])"
END = rb"(?![A-Za-z0-9_])"  # not followed by a token character
END_DASH = rb"(?![A-Za-z0-9_-])"

# A test on the matched value (the regex group `v` when the pattern has one).
ValueTest = Callable[[bytes], bool]


@dataclass(frozen=True, slots=True)
class Shape:
    """Where a format with no long token run and no anchor can be: `spans` gives the
    stretches of a payload worth searching, found in one fast pass."""

    name: str
    spans: Callable[[bytes], list[tuple[int, int]]]


@dataclass(frozen=True, slots=True)
class CredentialPattern:
    name: str
    regex: re.Pattern[bytes]
    anchors: tuple[bytes, ...]
    hosts: tuple[str, ...] = ()
    description: str = ""
    # Formats that are also routine bearer tokens are flagged, not blocked, by default.
    verdict: Verdict = field(default=Verdict.BLOCK)
    anywhere: bool = False  # no long token run: search where the anchors occur
    # Skip documentation values (AKIAIOSFODNN7EXAMPLE, ghp_xxxx...) unless
    # `secrets.documentation_values` is `block`; extra patterns never skip.
    skip_examples: bool = True
    # Every match holds a byte outside TOKEN_ALPHABET (a space, a quote), so none lies
    # inside a token run: an `anywhere` search may skip the middles of long runs.
    has_gap: bool = False
    # A checksum or structure the value must pass (Luhn, mod-97, Base58Check...).
    check: ValueTest | None = None
    # Says the value is a documentation or test value; None: the generic test
    # (`documentation.token_example`).
    example: ValueTest | None = None
    # For `anywhere` formats: a match starts at most `reach[0]` bytes before an
    # anchor and ends at most `reach[1]` bytes after it, so only windows around the
    # anchors are searched. None: the whole payload.
    reach: tuple[int, int] | None = None
    shape: Shape | None = None


def make(
    name: str,
    regex: bytes,
    anchors: tuple[bytes, ...],
    hosts: tuple[str, ...],
    description: str,
    verdict: Verdict = Verdict.BLOCK,
    anywhere: bool = False,
    has_gap: bool = False,
    *,
    check: ValueTest | None = None,
    example: ValueTest | None = None,
    reach: tuple[int, int] | None = None,
    shape: Shape | None = None,
) -> CredentialPattern:
    return CredentialPattern(
        name,
        re.compile(regex),
        anchors,
        hosts,
        description,
        verdict,
        anywhere,
        has_gap=has_gap,
        check=check,
        example=example,
        reach=reach,
        shape=shape,
    )


def matched_value(match: re.Match[bytes]) -> bytes:
    """The credential itself: the group `v` when the regex also matches its context."""
    if "v" in match.re.groupindex:
        return match.group("v")
    return match.group()
