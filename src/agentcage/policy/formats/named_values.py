"""Values with no format of their own, found by the credential name next to them.

A password or a random API key looks like any other token; what gives it away is
its name: `"DB_PASSWORD": "..."` in an environment dumped as JSON, `api_key=...`
in a query string, `X-Api-Key: ...`. Two formats read that context:

- `secret_env_value`: an environment variable's name (upper case, `DB_PASSWORD`,
  `STRIPE_SECRET`, `HF_TOKEN`) as a JSON key outside any string, an array's
  `"NAME=value"`, a form or query parameter, or an env line (also JSON-escaped, as
  `secret_assignment` reads env lines). No API takes its login fields under such
  names, so it blocks.
- `secret_field`: an ordinary credential field (`password`, `client_secret`,
  `apiKey`, `token`) as a JSON key outside any string, a form or query parameter,
  or a header (`x-api-key`). That is also how an agent logs in or calls an API, so
  it is flagged by default and blocked with `secrets.named_fields: block`
  (docs/detection.md weighs the two).

Both want a value picked to be a secret (`key_material.strong`), not a
placeholder, a URL or a path; and a value that has a format of its own (an
`sk-ant-` key in `x-api-key`) is left to that format, which knows where it may go.
"""

from __future__ import annotations

import re
from typing import Any

from agentcage.policy.formats.key_material import assignment_example, strong
from agentcage.policy.formats.pattern import CredentialPattern, make
from agentcage.policy.types import Verdict

# Words that make a name a credential's, once lower-cased and stripped of `_-.`.
_CONTAINS = (b"password", b"passwd", b"secret")
_ENDS = tuple(
    b"apikey privatekey accesstoken authtoken apitoken sessiontoken bearertoken secrettoken"
    b" privatetoken refreshtoken authkey".split()
)
# Names that only talk about a secret: its id, its hash, where it is kept, its rules.
_ABOUT = frozenset(
    b"id ids name names hash hashed digest salt arn ref type url uri path file dir policy"
    b" field length version expiry expires expiresat expiresin header prompt label hint env".split()
)
_SEPARATORS = re.compile(rb"[_.\-]")
# Every credential name holds one of these (`_CONTAINS`, `_ENDS`, `token`).
_CREDENTIAL_WORD = re.compile(rb"(?i:pass|secret|key|token)")
_WORD_SPLIT = re.compile(rb"[_.\-]|(?<=[a-z0-9])(?=[A-Z])")


def credential_name(name: bytes, *, tokens: bool = False) -> bool:
    """`name` (a JSON key, a parameter, a header) names a secret: `DB_PASSWORD`,
    `clientSecret`, `x-api-key`, `token`; not `password_hash`, `secret_name`,
    `max_tokens`, `pageToken`, `csrf_token`, `secretary`. `tokens`: any `token`
    word counts (`HF_TOKEN`, as environment variables are named)."""
    if _CREDENTIAL_WORD.search(name) is None:  # most names: one scan, no splitting
        return False
    words = [w.lower() for w in _WORD_SPLIT.split(name) if w]
    if not words or (len(words) > 1 and words[-1] in _ABOUT):
        return False
    flat = _SEPARATORS.sub(b"", name).lower()
    if flat == b"token" or flat.endswith(_ENDS) or (tokens and b"token" in words):
        return True
    return any(w in _CONTAINS for w in words) or any(
        w.startswith((b"password", b"passwd")) for w in words
    )


_URLISH = re.compile(rb"://|^[/~.]|^[A-Za-z]:\\")


def _secret_value(value: bytes) -> bool:
    return strong(value) and _URLISH.search(value) is None


def _env_name(match: re.Match[bytes]) -> bool:
    name = match.group("k")
    return name.upper() == name and credential_name(name, tokens=True)


def _field_name(match: re.Match[bytes]) -> bool:
    data = match.string
    first = _LEADING_SPACE.match(data).end()  # type: ignore[union-attr]  # matches ""
    if data[match.start("k") - 1 : match.start("k")] != b'"' and data[first : first + 1] in _JSON:
        # A parameter inside a JSON document's string: a URL in code quoted to an LLM.
        return False
    # An OAuth token request (RFC 6749) sends the client secret, a password or a
    # refresh token to the server that issued them: that is their use, not a leak.
    return credential_name(match.group("k")) and b"grant_type" not in data


_JSON = (b"{", b"[")
_LEADING_SPACE = re.compile(rb"\s*")


# The value: no quote, space, escape, template or markup character; 8-200 bytes.
_VALUE = rb"(?P<v>[^\s\"'\\<>{}$`&,;()\[\]|]{8,200})"
# Ends at its closing quote, the next parameter, or the end of a line or the data.
_VALUE_END = rb"(?=\\{0,3}[\"']|[&#\s]|\\[rnt]|$)"
_ENV_KEY = (
    rb"(?P<k>[A-Z0-9_]{0,40}(?:PASSWORD|PASSWD|SECRET|API_?KEY|PRIVATE_KEY|TOKEN)[A-Z0-9_]{0,24})"
)
_ANY_KEY = rb"(?P<k>[A-Za-z0-9_.\-]{1,64})"
# What comes before a name: a JSON key's quote (not escaped, not glued to a word),
# a line break or a parameter separator. Each match starts with one of these
# characters, so `re` skips to them (8x faster than lookbehinds on a MiB of code
# full of credential words); a name at the very start of a place is given one by
# the inspector (`credential_formats.py`).
_QUOTE = rb"\"(?<![A-Za-z0-9_\\]\")"
_PARAMETER = rb"[\n?&;]"
# A JSON key outside any string (an escaped quote is code quoted in a message:
# test fixtures are full of `{"DB_PASSWORD": "..."}`), `"K=v"` (an environment
# array, as container APIs take it), `K=v`, or an env line JSON-escaped (`\nK=v`).
_ENV_FIELD = (
    rb"(?:"
    + _QUOTE
    + rb"|"
    + _PARAMETER
    + rb"|\\n)"
    + _ENV_KEY
    + rb"(?:\"[ \t]{0,3}:[ \t]{0,3}\"|=)"
)
# Shared with `_FIELD_ANCHORS` and `secret_assignment`: each anchor is one more
# substring search over a large body.
_ENV_ANCHORS = (b"ASSWORD", b"ASSWD", b"ECRET", b"PI_KEY", b"PIKEY", b"IVATE_KEY", b"OKEN")
# A JSON key outside any string (an escaped quote is code quoted in a message), or
# a parameter of a query, a form body or a header given as `name=value` (not of a
# URL in a JSON string, nor a line of code: `_field_name`).
_FIELD = (
    rb"(?:" + _QUOTE + rb"|" + _PARAMETER + rb")" + _ANY_KEY + rb"(?:\"[ \t]{0,3}:[ \t]{0,3}\"|=)"
)
_FIELD_ANCHORS = (
    *_ENV_ANCHORS,
    *(b"assword", b"asswd", b"ecret", b"pi_key", b"pikey", b"piKey", b"pi-key"),
    *(b"ivate_key", b"ivateKey", b"ivate-key", b"oken"),
)


# Searched near their names' anchors; the value judged as `secret_assignment`'s is.
_BY_NAME: dict[str, Any] = {
    "anywhere": True,
    "has_gap": True,
    "check": _secret_value,
    "example": assignment_example,
    "reach": (72, 300),  # a 64-byte name, its separator and a 200-byte value
    "defers": True,
}
NAMED_FIELD = "secret_field"  # its verdict is `secrets.named_fields`

NAMED_VALUE_PATTERNS: tuple[CredentialPattern, ...] = (
    make(
        "secret_env_value",
        _ENV_FIELD + _VALUE + _VALUE_END,
        _ENV_ANCHORS,
        (),
        "A secret under an environment variable's name in JSON, a query or a form "
        '(`"DB_PASSWORD": "..."`, `HF_TOKEN=...`)',
        context=_env_name,
        **_BY_NAME,
    ),
    make(
        NAMED_FIELD,
        _FIELD + _VALUE + _VALUE_END,
        _FIELD_ANCHORS,
        (),
        "A value in a credential field: a JSON key, a form or query parameter, a header "
        "(`password`, `client_secret`, `api_key`, `token`; flagged unless "
        "`secrets.named_fields: block`)",
        Verdict.FLAG,
        context=_field_name,
        **_BY_NAME,
    ),
)
