"""Replace whole real values, in the forms a server commonly echoes, by their placeholders.

Each value of any length is looked for as sent and in the encodings a server may
echo it in: URL-encoded (also with `+` for spaces and lower-case escapes), base64
from a group boundary (standard and URL-safe, padded or not) and JSON-escaped. An
encoded value is replaced by the placeholder in the same encoding, so the agent
decoding the response sees the placeholder it knows.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

_ENCODINGS = (
    "raw",
    "quote",
    "quote_plus",
    "quote_lower",
    "b64",
    "b64_nopad",
    "b64url",
    "b64url_nopad",
    "json",
    "json_slash",
)


def _encode(text: str, how: str) -> str:
    data = text.encode()
    if how == "raw":
        return text
    if how == "quote":
        return quote(text, safe="")
    if how == "quote_plus":
        return quote_plus(text, safe="")
    if how == "quote_lower":
        return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(text, safe=""))
    if how == "b64":
        return base64.b64encode(data).decode()
    if how == "b64_nopad":
        return base64.b64encode(data).decode().rstrip("=")
    if how == "b64url":
        return base64.urlsafe_b64encode(data).decode()
    if how == "b64url_nopad":
        return base64.urlsafe_b64encode(data).decode().rstrip("=")
    if how == "json":
        return json.dumps(text)[1:-1]
    if how == "json_slash":
        return json.dumps(text)[1:-1].replace("/", "\\/")
    raise ValueError(how)


class FormScrubber:
    """Built once from (real value, placeholder) pairs; `scrub` is cheap when none occur."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        replacements: dict[str, str] = {}
        # Longest value first: if one secret contains another, the longer one is replaced whole.
        for value, placeholder in sorted(pairs, key=lambda p: len(p[0]), reverse=True):
            if not value:
                continue
            for how in _ENCODINGS:
                replacements.setdefault(_encode(value, how), _encode(placeholder, how))
        self._text = replacements
        self._bytes = {k.encode(): v.encode() for k, v in replacements.items()}
        # Longest first, so a padded base64 form wins over its unpadded prefix.
        order = sorted(replacements, key=len, reverse=True)
        self._text_re = re.compile("|".join(map(re.escape, order))) if order else None
        self._bytes_re = (
            re.compile(b"|".join(re.escape(k.encode()) for k in order)) if order else None
        )

    def forms(self) -> list[bytes]:
        """Every form of every value that `scrub` replaces."""
        return list(self._bytes)

    def scrub(self, data: bytes) -> bytes:
        if self._bytes_re is None or not any(form in data for form in self._bytes):
            return data
        return self._bytes_re.sub(lambda m: self._bytes[m.group()], data)

    def scrub_text(self, text: str) -> str:
        if self._text_re is None or not any(form in text for form in self._text):
            return text
        return self._text_re.sub(lambda m: self._text[m.group()], text)
