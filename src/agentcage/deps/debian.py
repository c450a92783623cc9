"""Debian package indexes (`Packages` files) and Debian's version order.

An index is read from a path or a URL, plain, `.gz` or `.xz`. Versions compare as
dpkg compares them (deb-version(7)): epoch, then upstream version, then revision,
each part alternating non-digit runs (`~` before everything, letters before other
characters) and numbers.
"""

from __future__ import annotations

import gzip
import itertools
import lzma
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agentcage.errors import DepsError

MAX_INDEX_BYTES = 256 * 1024 * 1024  # decompressed; bookworm's main is about 50 MiB
TIMEOUT = 60.0


def read_index(source: str) -> bytes:
    """The decompressed bytes of the `Packages` file at `source` (path, file:// or http(s)://)."""
    try:
        if re.match(r"^https?://", source):
            with urllib.request.urlopen(source, timeout=TIMEOUT) as response:
                raw = response.read(MAX_INDEX_BYTES + 1)
        else:
            raw = Path(source.removeprefix("file://")).read_bytes()
    except (OSError, urllib.error.URLError) as exc:
        raise DepsError(
            f"cannot read the Debian index {source}: {exc}",
            hint="pass --debian-index with a Packages file or URL this machine can reach",
        ) from exc
    try:
        if source.endswith(".xz"):
            data = lzma.decompress(raw)
        elif source.endswith(".gz"):
            data = gzip.decompress(raw)
        else:
            data = raw
    except (lzma.LZMAError, OSError, EOFError) as exc:
        raise DepsError(f"the Debian index {source} does not decompress: {exc}") from exc
    if len(data) > MAX_INDEX_BYTES:
        raise DepsError(f"the Debian index {source} is larger than {MAX_INDEX_BYTES} bytes")
    return data


@dataclass(frozen=True)
class IndexEntry:
    """One package's stanza: what a pin of its .deb needs."""

    version: str
    sha256: str  # of the .deb, from the index's SHA256 field ("" if absent)
    depends: str


def index_entries(data: bytes, wanted: Iterable[str]) -> dict[str, IndexEntry]:
    """The stanza of the highest version of each `wanted` package in a `Packages` file."""
    names = set(wanted)
    found: dict[str, IndexEntry] = {}
    for stanza in data.decode("utf-8", "replace").split("\n\n"):
        fields = dict(_fields(stanza))
        name, version = fields.get("Package"), fields.get("Version")
        if (
            name in names
            and version
            and (name not in found or compare_versions(version, found[name].version) > 0)
        ):
            found[name] = IndexEntry(version, fields.get("SHA256", ""), fields.get("Depends", ""))
    return found


def index_versions(data: bytes, wanted: Iterable[str]) -> dict[str, str]:
    """The highest version of each `wanted` package in a `Packages` file."""
    return {name: entry.version for name, entry in index_entries(data, wanted).items()}


def newest_entries(indexes: Iterable[dict[str, IndexEntry]]) -> dict[str, IndexEntry]:
    """Per package, the entry with the highest version across several indexes."""
    found: dict[str, IndexEntry] = {}
    for index in indexes:
        for name, entry in index.items():
            if name not in found or compare_versions(entry.version, found[name].version) > 0:
                found[name] = entry
    return found


def _fields(stanza: str) -> Iterable[tuple[str, str]]:
    for line in stanza.splitlines():
        if line[:1] not in (" ", "\t") and ":" in line:
            key, _, value = line.partition(":")
            yield key, value.strip()


def newest(indexes: Iterable[dict[str, str]]) -> dict[str, str]:
    """Per package, the highest version any index offers (main, updates, security)."""
    as_entries = ({n: IndexEntry(v, "", "") for n, v in index.items()} for index in indexes)
    return {name: entry.version for name, entry in newest_entries(as_entries).items()}


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as Debian version `a` sorts before, with or after `b`."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def _split(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
    return int(epoch or 0), upstream, revision


def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: (non-digit run, number) pairs, compared pair by pair."""
    pairs_a, pairs_b = _pairs(a), _pairs(b)
    for (text_a, num_a), (text_b, num_b) in itertools.zip_longest(
        pairs_a, pairs_b, fillvalue=("", 0)
    ):
        diff = _compare_text(text_a, text_b) or num_a - num_b
        if diff:
            return -1 if diff < 0 else 1
    return 0


def _pairs(part: str) -> list[tuple[str, int]]:
    return [(text, int(num or 0)) for text, num in re.findall(r"(\D*)(\d*)", part) if text or num]


def _compare_text(x: str, y: str) -> int:
    for cx, cy in itertools.zip_longest(x, y, fillvalue=""):
        ox = _order(cx) if cx else 0
        oy = _order(cy) if cy else 0
        if ox != oy:
            return ox - oy
    return 0
