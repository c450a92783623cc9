"""Data dressed as a host name or a URL: encoded labels, chunks, random tokens, layers.

A host name reaches a resolver and a server before any body does, so an agent
can send data in the name alone: a key hex- or base32-encoded into a label,
spread over several labels, cut into equal chunks, or as a random-looking
label. Each check here looks at the labels below the registrable domain (the
last two labels), with the dots between consecutive labels of one encoding
removed, and is tuned so the names agents really reach (registries, CDNs,
cloud endpoints, preview deployments) never trip it:

* hex that decodes to text (16 hex characters or more), or hex spread over two
  or more labels of 6+ characters (24 or more in all); a single hex label that
  decodes to binary is an id or a hash (an R2 account, a bucket) and passes;
* base32 (`[a-z2-7]`, 16 or more, with 2+ digits and 8+ letters) that decodes to
  text or switches between letters and digits like random data does;
* a hyphen-free run of 20+ letters and digits that switches between the two at
  least once every four characters (words and version numbers do not);
* three or more labels of one length (8+) in a row: a value cut into chunks.

In a URL path, a token of 24+ characters mixing upper case, lower case and
digits, switching between them at least every 2.5 characters as random data does
(camel-case identifiers switch about every six), is a random token;
`percent_layers` counts the percent-encoding layers of a URL (three or more hide
what they carry from everything that decodes once or twice).
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import re
import urllib.parse
from collections.abc import Callable, Hashable

from agentcage.policy.media import is_text

MIN_HEX_TEXT = 16
MIN_HEX_SPREAD = 24
MIN_HEX_LABEL = 6
MIN_BASE32 = 16
MIN_RANDOM_LABEL = 20
MIN_CHUNK = 8
CHUNKS = 3
MIN_PATH_TOKEN = 24
_LABEL_SWITCHES = 0.25  # letter/digit switches per character, at least, of a random label
_TOKEN_SWITCHES = 0.4  # upper/lower/digit switches per character of a random path token

_HEX = re.compile(r"[0-9a-f]+")
_BASE32 = re.compile(r"[a-z2-7]+")
_ALNUM_RUN = re.compile(r"[a-z0-9]+")
_PATH_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{{MIN_PATH_TOKEN},}}")


def registrable_domain(host: str) -> str:
    """The destination windows are kept for: the last two labels of a name (an IP
    literal is its own)."""
    host = host.lower().rstrip(".")
    if host.replace(".", "").isdigit() or ":" in host:
        return host
    return ".".join(host.split(".")[-2:])


def below_registrable(host: str) -> list[str]:
    """The labels left of the registrable domain (approximated by the last two labels)."""
    labels = host.lower().rstrip(".").split(".")
    return labels[:-2]


@functools.lru_cache(maxsize=4096)
def host_data_reason(host: str) -> str | None:
    """Why the labels of `host` look like data rather than a name, or None."""
    labels = below_registrable(host)
    if not labels:
        return None
    for run in _class_runs(labels, _HEX):
        joined = "".join(run)
        text = binascii.unhexlify(joined[: len(joined) // 2 * 2])
        if len(joined) >= MIN_HEX_TEXT and is_text(text):
            return f"hex-encoded text in the host name ({len(joined)} hex digits)"
        if len(run) >= 2 and len(joined) >= MIN_HEX_SPREAD and min(map(len, run)) >= MIN_HEX_LABEL:
            return f"hex data spread over {len(run)} labels of the host name"
    for run in _class_runs(labels, _BASE32):
        joined = "".join(run)
        if len(joined) >= MIN_BASE32 and _base32_like(joined):
            return f"base32-encoded data in the host name ({len(joined)} characters)"
    for label in labels:
        for part in _ALNUM_RUN.findall(label):
            if len(part) >= MIN_RANDOM_LABEL and not _HEX.fullmatch(part) and _random_label(part):
                return f"random-looking label of {len(part)} characters in the host name"
    chunked = _equal_chunks(labels)
    if chunked:
        return f"{chunked[0]} labels of {chunked[1]} characters in a row: one value cut in chunks"
    return None


def is_data_label(label: str) -> bool:
    """Whether a label looks like an id or data (letters and digits mixed, 8+): what a
    tunnel sends many distinct ones of."""
    core = label.replace("-", "")
    digits = sum(ch.isdigit() for ch in core)
    return len(core) >= MIN_CHUNK and digits >= 2 and len(core) - digits >= 2


def path_token_reason(path: str) -> str | None:
    """Why a segment of the URL path looks like random data, or None."""
    for segment in path.partition("?")[0].split("/"):
        if len(segment) < MIN_PATH_TOKEN:
            continue
        for token in _PATH_TOKEN.findall(urllib.parse.unquote(segment)):
            core = token.replace("-", "").replace("_", "")
            if len(core) >= MIN_PATH_TOKEN and _random_token(core):
                return f"random-looking token of {len(token)} characters in the URL path"
    return None


def percent_layers(target: str, most: int = 4) -> int:
    """How many rounds of percent-decoding change `target` (at most `most`)."""
    layers = 0
    data = target
    while layers < most and "%" in data:
        decoded = urllib.parse.unquote(data)
        if decoded == data:
            break
        data = decoded
        layers += 1
    return layers


def _class_runs(labels: list[str], pattern: re.Pattern[str]) -> list[list[str]]:
    """Maximal runs of consecutive labels wholly in `pattern`'s class."""
    runs: list[list[str]] = [[]]
    for label in labels:
        if pattern.fullmatch(label):
            runs[-1].append(label)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def _base32_like(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    if digits < 2 or len(text) - digits < 8:
        return False
    body = text.upper()
    while len(body) % 8 in (1, 3, 6):
        body = body[:-1]
    try:
        decoded = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        return False
    return is_text(decoded) or _switches(text, str.isdigit) >= 3


def _random_label(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    if digits < 3 or len(text) - digits < 5:
        return False
    return _switches(text, str.isdigit) >= _LABEL_SWITCHES * (len(text) - 1)


def _random_token(text: str) -> bool:
    upper = sum(ch.isupper() for ch in text)
    lower = sum(ch.islower() for ch in text)
    digits = len(text) - upper - lower
    if min(upper, lower, digits) < 2:
        return False
    return _switches(text, _kind) >= _TOKEN_SWITCHES * (len(text) - 1)


def _kind(ch: str) -> int:
    return 0 if ch.isdigit() else 1 if ch.isupper() else 2


def _switches(text: str, kind: Callable[[str], Hashable]) -> int:
    """How often consecutive characters differ in `kind`."""
    kinds = [kind(ch) for ch in text]
    return sum(a != b for a, b in itertools.pairwise(kinds))


def _equal_chunks(labels: list[str]) -> tuple[int, int] | None:
    count, size = 1, len(labels[0])
    for label in labels[1:]:
        if len(label) == size:
            count += 1
            if count >= CHUNKS and size >= MIN_CHUNK:
                return count, size
        else:
            count, size = 1, len(label)
    return None
