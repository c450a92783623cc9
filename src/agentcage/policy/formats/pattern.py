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
  so the scanner searches only windows around such runs; the few formats without
  one set `anywhere` and are searched everywhere their anchor occurs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agentcage.policy.runs import BASE64_ALPHABET
from agentcage.policy.types import Verdict

TOKEN_ALPHABET = BASE64_ALPHABET
MIN_RUN = 20
# Not preceded by a token character or "-": `cache-key-<md5>` is not a Mailgun key.
START = rb"(?<![A-Za-z0-9_-])"
END = rb"(?![A-Za-z0-9_])"  # not followed by a token character
END_DASH = rb"(?![A-Za-z0-9_-])"


@dataclass(frozen=True, slots=True)
class CredentialPattern:
    name: str
    regex: re.Pattern[bytes]
    anchors: tuple[bytes, ...]
    hosts: tuple[str, ...] = ()
    description: str = ""
    # Formats that are also routine bearer tokens are flagged, not blocked, by default.
    verdict: Verdict = field(default=Verdict.BLOCK)
    anywhere: bool = False  # no long token run: search the whole payload
    # Skip documentation values (AKIAIOSFODNN7EXAMPLE, ghp_xxxx...): agents quote them in
    # code they send to their LLM, and a real random key never looks like that.
    skip_examples: bool = True
    # Every match holds a byte outside TOKEN_ALPHABET (a space, a quote), so none lies
    # inside a token run: an `anywhere` search may skip the middles of long runs.
    has_gap: bool = False


def make(
    name: str,
    regex: bytes,
    anchors: tuple[bytes, ...],
    hosts: tuple[str, ...],
    description: str,
    verdict: Verdict = Verdict.BLOCK,
    anywhere: bool = False,
    has_gap: bool = False,
) -> CredentialPattern:
    return CredentialPattern(
        name, re.compile(regex), anchors, hosts, description, verdict, anywhere, has_gap=has_gap
    )
