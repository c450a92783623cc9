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
# Not followed by a letter or digit. (An underscore may follow: `ghp_..._x` is still
# the token, with a suffix meant to hide it.)
END = rb"(?![A-Za-z0-9])"
END_DASH = rb"(?![A-Za-z0-9_-])"

# A test on the matched value (the regex group `v` when the pattern has one).
ValueTest = Callable[[bytes], bool]
# A test on the match in its payload (`match.string`): what surrounds the value.
ContextTest = Callable[[re.Match[bytes]], bool]


@dataclass(frozen=True, slots=True)
class Shape:
    """Where a format with no long token run and no anchor can be: `spans` gives the
    stretches of a payload worth searching, found in one fast pass."""

    name: str
    spans: Callable[[bytes], list[tuple[int, int]]]


class LazyRegex:
    """A regex compiled on first use, shared by every copy of its pattern.

    The built-in formats' 134 regexes took about 11 ms of the proxy's start before
    READY=1, though none of them depends on the config and none can fail on it: each
    compiles once, when first matched or when the policy is warmed right after READY=1
    (`Policy.warm`). A config's own patterns are compiled when read (`ready`), so a bad
    one still stops the proxy before READY=1.
    """

    __slots__ = ("_compiled", "source")

    def __init__(self, source: bytes, compiled: re.Pattern[bytes] | None = None) -> None:
        self.source = source
        self._compiled = compiled

    @classmethod
    def ready(cls, compiled: re.Pattern[bytes]) -> LazyRegex:
        return cls(compiled.pattern, compiled)

    def compiled(self) -> re.Pattern[bytes]:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(self.source)
        return compiled

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyRegex) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"LazyRegex({self.source!r})"


@dataclass(frozen=True, slots=True)
class CredentialPattern:
    name: str
    lazy_regex: LazyRegex
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
    # What must surround the value for it to count (a card number's label or expiry).
    context: ContextTest | None = None
    # Found by a name next to the value: a value with a format of its own is left to
    # that format, which knows where it may go (`named_values.py`).
    defers: bool = False

    @property
    def regex(self) -> re.Pattern[bytes]:
        return self.lazy_regex.compiled()


_LITERAL_HEAD = re.compile(rb"(?:[A-Za-z0-9_~]|\\[.$+/-]|-)+")
_CLASS_HEAD = re.compile(rb"\[[^\]\\]+\]")
_QUANTIFIER = b"{*+?"


def _literal_first(regex: bytes) -> bytes:
    """`START` moved behind the literal (or character class) that follows it.

    Python's `re` finds a pattern's first literal with a fast search, but only when
    the pattern starts with it; a leading lookbehind makes it try every position
    (28x slower on a base64 blob). `L(?<![token]L)` says the same as `START L`.
    """
    if not regex.startswith(START):
        return regex
    rest = regex[len(START) :]
    head = _CLASS_HEAD.match(rest) or _LITERAL_HEAD.match(rest)
    if head is None:
        return regex
    text = head.group()
    if rest[len(text) : len(text) + 1] in (b"", *(bytes([q]) for q in _QUANTIFIER)):
        if head.re is _CLASS_HEAD or len(text) < 2 or text[-2:-1] == b"\\":
            return regex
        text = text[:-1]  # the quantifier applies to the last character only
    if distinctive_prefix(text):
        return rest  # found even glued to what precedes it (`xghp_...`)
    return text + rb"(?<![A-Za-z0-9_-]" + text + rb")" + rest[len(text) :]


def distinctive_prefix(prefix: bytes) -> bool:
    """A prefix no word, identifier or base64 blob ends with: five characters or
    more, or four with a separator (`ghp_`, `npm_`); not `key-` (`cache-key-<md5>`),
    a run of one letter (zeros in base64) or base64 of text (Intercom's `tok:`)."""
    plain = prefix.replace(b"\\", b"")
    if plain.startswith(b"[") or plain in _COMMON or len(set(plain)) == 1:
        return False
    return len(plain) >= 5 or (len(plain) == 4 and any(c in plain for c in b"_-."))


_COMMON = {b"key-", b"live_", b"test_", b"dG9rO"}


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
    context: ContextTest | None = None,
    defers: bool = False,
) -> CredentialPattern:
    return CredentialPattern(
        name,
        LazyRegex(_literal_first(regex)),
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
        context=context,
        defers=defers,
    )


def matched_value(match: re.Match[bytes]) -> bytes:
    """The credential itself: the group `v` when the regex also matches its context."""
    if "v" in match.re.groupindex:
        return match.group("v")
    return match.group()
