"""A bounded recursive decoder: the views of a payload an inspector should scan.

An agent can wrap a secret in layers: base64 of gzip, hex inside a JSON escape,
percent-encoding of base64. `Unwrapper.views` peels up to `max_depth` layers,
breadth first, and yields each decoded view once. Every decoder is bounded: the
total bytes produced across all views is capped by `budget`, decompression stops
at the remaining budget (so a zip bomb costs at most the budget), and at most
`max_views` views are returned. Input that decodes to nothing new is dropped.
"""

from __future__ import annotations

import binascii
import re
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from agentcage.policy.leaks.alignments import ALIGN_ALL_BELOW, b64_alignments, hex_alignments
from agentcage.policy.leaks.gitpack import PackError, read_pack
from agentcage.policy.leaks.interleave import dejunked, every_other
from agentcage.policy.leaks.notable_pieces import keeps_one_top_bit, notable
from agentcage.policy.leaks.textcodes import SEARCHED_BELOW, base32_run, text_codes, unxor
from agentcage.policy.leaks.unicode_fold import decode_wide, fold_unicode
from agentcage.policy.leaks.unpacking import decode_content, sniff_compression, unpack
from agentcage.policy.leaks.wrapped_lines import WrappedLines
from agentcage.policy.media import MEDIA_FIRST_BYTES, is_media, is_text
from agentcage.policy.runs import (
    TOKEN_RUN_FLOOR,
    around,
    byte_table,
    followed,
    long_runs,
    token_runs,
)
from agentcage.policy.scrubbing.packing import SIGNATURE_STARTS, sniff

_MIN_RUN = TOKEN_RUN_FLOOR  # shortest base64 / hex run worth decoding
_PERCENT = re.compile(rb"%[0-9A-Fa-f]{2}")
_QUOTED_PRINTABLE = re.compile(rb"=[0-9A-F]{2}")  # MIME parts: `=2D`, upper-case only
# One backslash, or two: `\\u0073` is how JSON carries the text `\u0073`.
# (A literal first byte lets `re` skip to each backslash: `\\{1,2}` is 70x slower.)
_ESCAPE = re.compile(rb"\\(?:\\?u([0-9A-Fa-f]{4})|\\?x([0-9A-Fa-f]{2})|\\?([0-7]{2,3}))")
_OCTAL = re.compile(rb"\\\\?[0-7]{2}")  # C, shell `$'...'` and Python octal escapes
_PERCENT_U = re.compile(rb"%u([0-9A-Fa-f]{4})")  # JavaScript's `escape()`
_ENTITY = re.compile(rb"&#(?:([0-9]{1,7})|[xX]([0-9A-Fa-f]{1,6}));")
# What must follow the first byte of each escape above (`followed`).
_ESCAPE_NEXT = bytes(b in b"ux01234567" for b in range(256))
_U = bytes(b == ord("u") for b in range(256))
_UPPER_HEX = bytes(b in b"0123456789ABCDEF" for b in range(256))
_ANY_HEX = bytes(b in b"0123456789abcdefABCDEF" for b in range(256))
# Percent and backslash escapes in data larger than this are decoded in windows of
# this many bytes either side of each escape (a secret is far shorter).
_WHOLE_BELOW = 4096
_BOMB_RATIO = 50  # archives of real files compress 2-20x; zero padding 1000x
_WINDOW = 512
_WIDE_SAMPLE = 512
# Encoded pieces that start with a compression or archive signature, each a view of
# its own so the signature is at its start (in the NUL-joined view only the first
# piece's would be); beyond this many they stay in the joined view.
_PACKED_VIEWS = 8
_PEELED = frozenset({"base64", "hex", "base32"})  # decodings a wrapper can be peeled by
DEJUNKED = "dejunked"  # a guess searched for known values, never decoded further
GIT_PACK = "git-pack"
_UNCOUNTED = frozenset({"decompress", "gzip", "x-gzip", "deflate", "br", "zstd", GIT_PACK})


@dataclass(frozen=True, slots=True)
class View:
    """Bytes to scan, and the decoders that produced them (outermost first)."""

    data: bytes
    layers: tuple[str, ...] = ()
    depth: int = 0  # layers counted against `max_depth` (see `_layer_cost`)

    @property
    def label(self) -> str:
        return "+".join(self.layers) or "raw"


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 3
    budget: int = 32 << 20  # bytes produced by decoding, all views together (the default
    # of `secrets.decode_budget`, which the config sets)
    max_views: int = 64


class Views(list[View]):
    """Views of one payload; `exhausted` when the limits cut decoding short, so a
    value may hide in what was not decoded (the caller should not let it pass);
    `malformed` says why a git pack in it could not be read (nor let pass)."""

    exhausted: bool = False
    unread: str = ""  # what the limits left unread, when it is known
    malformed: str = ""

    def __add__(self, other: list[View]) -> Views:  # type: ignore[override]
        joined = Views([*self, *other])
        joined.exhausted = self.exhausted or bool(getattr(other, "exhausted", False))
        joined.malformed = self.malformed or getattr(other, "malformed", "")
        joined.unread = self.unread or getattr(other, "unread", "")
        return joined


class _Budget:
    def __init__(self, total: int) -> None:
        self.left = total

    def take(self, data: bytes) -> bytes | None:
        if not data or len(data) > self.left:
            return None
        self.left -= len(data)
        return data


class _SeenPayloads:
    """Payloads already produced, compared by length first: hashing a megabyte body
    for a set costs more than the rest of unwrapping it, and equal-length outputs
    are rare and compared with one memcmp."""

    def __init__(self, first: bytes) -> None:
        self._by_length: dict[int, list[bytes]] = {len(first): [first]}

    def __contains__(self, data: bytes) -> bool:
        return data in self._by_length.get(len(data), ())

    def add(self, data: bytes) -> None:
        self._by_length.setdefault(len(data), []).append(data)


class Unwrapper:
    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    def views(self, data: bytes, content_encoding: str = "") -> Views:
        """`data` itself, then each decoded view, at most `max_depth` layers deep."""
        if not data:
            return Views([View(data)])  # every request without a body: nothing decodes
        budget = _Budget(self.limits.budget)
        out = Views([View(data)])
        seen = _SeenPayloads(data)
        if content_encoding and content_encoding != "identity":
            decoded = decode_content(data, content_encoding, budget.left)
            if decoded is not None and budget.take(decoded) is not None:
                out.append(View(decoded, (content_encoding,)))
                seen.add(decoded)
        queue = deque(out)
        archive = False  # the budget went to an ordinary large archive
        while queue:
            view = queue.popleft()
            if view.depth >= self.limits.max_depth or DEJUNKED in view.layers:
                continue
            if is_media(view.data[:16]):
                # A screenshot's compressed pixels hold no further encodings, only
                # noise that decodes to junk views; the view itself is still scanned
                # (a value or any spelling of it in a text chunk is still found).
                continue
            if len(out) >= self.limits.max_views:
                out.exhausted = True  # a view that could hold more layers goes unread
                break
            try:
                whole = _UNCOUNTED.issuperset(view.layers)  # the body, decompressed at most
                contents = read_pack(view.data, budget.left, whole=whole)
            except PackError as error:
                out.malformed = f"git pack ({view.label}) {error}"
                continue
            if contents is not None:  # compressed objects only: their contents are the views
                if not contents.complete:
                    out.exhausted = True
                    out.unread = f"git pack objects past the first {contents.objects}"
                for piece in (contents.data, *contents.packed):
                    if budget.take(piece) is not None:
                        child = View(piece, (*view.layers, GIT_PACK), view.depth)
                        out.append(child)
                        queue.append(child)
                continue
            for name, produced in self._decode(view.data, budget, view.depth == 0):
                if not produced or produced in seen:
                    continue
                if budget.take(produced) is None:
                    out.exhausted |= not archive  # dropped: no budget left for it
                    continue
                if budget.left == 0:
                    # Cut at the budget. A large archive (a .tar.gz upload) that fills
                    # it at an ordinary ratio passes, its first layer scanned; a bomb
                    # that buries data behind megabytes of padding does not.
                    archive = name == "decompress" and not _bomb(view.data, produced)
                    out.exhausted |= not archive
                seen.add(produced)
                child = View(
                    produced, (*view.layers, name), view.depth + _layer_cost(name, produced)
                )
                out.append(child)
                queue.append(child)
                if len(out) >= self.limits.max_views:
                    break
        return out

    def _decode(self, data: bytes, budget: _Budget, top: bool) -> Iterator[tuple[str, bytes]]:
        """Each decoder's output for `data`; empty output means "not this encoding"."""
        kind = sniff_compression(data)
        if kind is not None:
            yield "decompress", decode_content(data, kind, budget.left) or b""
        elif (unpacked := unpack(data, budget.left)) is not None:
            yield "decompress", unpacked[1]
        if not data.isascii():
            yield "unicode", fold_unicode(data) or b""
        if b"\0" in data[:_WIDE_SAMPLE] and data.count(0, 0, _WIDE_SAMPLE) * 4 >= min(
            len(data), _WIDE_SAMPLE
        ):  # a quarter NUL at least: UTF-16 or UTF-32 text, not a NUL-joined view
            yield "wide", decode_wide(data) or b""
        yield from text_codes(data)
        # Each escape's first two bytes looked for in one pass before its regex runs:
        # in source code `%`, `\` and `=` come every few lines, and `re` stops at each.
        percent = b"%" in data
        if percent and followed(data, b"%", _ANY_HEX):
            yield "percent", _around(_PERCENT, data, budget.left, urllib.parse.unquote_to_bytes)
        if percent and followed(data, b"%", _U):
            yield "escape", _around(_PERCENT_U, data, budget.left, _unescape_percent_u)
        # One-byte probe first: a two-byte `in` is ~100x slower than memchr on a miss.
        if (
            b"\\" in data
            and followed(data, b"\\", _ESCAPE_NEXT)
            and (b"\\u" in data or b"\\x" in data or _OCTAL.search(data))
        ):
            yield "escape", _around(_ESCAPE, data, budget.left, _unescape)
        # memchr first, as above; character references are a text's, not a blob's.
        if b"&" in data and b"&#" in data and is_text(data[:_WIDE_SAMPLE]):
            yield "entities", _around(_ENTITY, data, budget.left, _unentity)
        if b"=" in data and followed(data, b"=", _UPPER_HEX) and _QUOTED_PRINTABLE.search(data):
            yield "quoted-printable", _around(_QUOTED_PRINTABLE, data, budget.left, _qp)
        b64: list[bytes] = []
        media: list[bytes] = []
        packed: list[tuple[str, bytes]] = []
        hexed: list[bytes] = []
        b32: list[bytes] = []
        halves: list[bytes] = []
        unxored: list[bytes] = []
        room = budget.left
        wrapped = WrappedLines(data)
        # Hex digits are base64 characters, so every hex run lies inside a base64 run:
        # one pass over the data finds both.
        for start, end in token_runs(data, _MIN_RUN):
            run = data[start:end]
            if (joined := wrapped.add(start, end)) is not None:
                b64 += b64_alignments(joined)
            pieces = b64_alignments(run)
            marked = notable(pieces)
            if not marked:
                b64 += pieces  # random bytes, nearly always: nothing to look at
            else:
                for index, piece in enumerate(pieces):
                    if index in marked:
                        _look_at(piece, b64, media, packed, unxored)
                    else:
                        b64.append(piece)
            for hex_start, hex_end in long_runs(run, _HEX_TABLE, _MIN_RUN):
                for piece in hex_alignments(run[hex_start:hex_end]):
                    if piece[0] in SIGNATURE_STARTS and _packed(piece, packed):
                        packed.append(("hex", piece))
                    else:
                        hexed.append(piece)
            if decoded := base32_run(run):
                b32.append(decoded)
            if len(run) < ALIGN_ALL_BELOW:
                halves += every_other(run)
            room -= len(run)
            if room <= 0:
                break
        if (joined := wrapped.end()) is not None:
            b64 += b64_alignments(joined)
        yield "base64", b"\0".join(b64)
        for piece in media:
            yield "base64", piece
        yield from packed
        yield "hex", b"\0".join(hexed)
        yield "base32", b"\0".join(b32)
        yield "interleaved", b"\0".join(halves)
        if top and _MIN_RUN <= len(data) < SEARCHED_BELOW:
            # Nine copies of the data: only the request's own small views.
            yield DEJUNKED, dejunked(data)
        yield "xor", b"\0".join(unxored)


_HEX_TABLE = byte_table(b"0123456789abcdefABCDEF")
_RUN_CHARACTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_="


def _layer_cost(name: str, produced: bytes) -> int:
    """What a layer counts against `max_depth`: nothing for decompression (a stream
    is recognised by its signature, not guessed, and its output is bounded by the byte
    budget) nor for a decoding whose first piece is nothing but another encoded run
    (base64 of base64: a wrapper peeled, not a guess); one for the rest. So
    base64(gzip(base64(gzip(x)))) or six nested base64 layers are read to the end,
    still bounded by the budget and `max_views`."""
    if name in _UNCOUNTED:
        return 0
    if name not in _PEELED:  # guesses (interleaved, xor) always count
        return 1
    end = produced.find(b"\0")
    first = produced if end == -1 else produced[:end]
    if len(first) >= _MIN_RUN and not first.strip().translate(None, _RUN_CHARACTERS):
        return 0
    return 1


def _look_at(
    piece: bytes,
    b64: list[bytes],
    media: list[bytes],
    packed: list[tuple[str, bytes]],
    unxored: list[bytes],
) -> None:
    """Put a decoded piece `notable` named where it belongs."""
    # An image is a view of its own, so it is recognised and not peeled.
    maybe_media = piece[0] in MEDIA_FIRST_BYTES or piece[4:8] == b"ftyp"
    if maybe_media and is_media(piece[:16]):
        media.append(piece)
    elif piece[0] in SIGNATURE_STARTS and _packed(piece, packed):
        packed.append(("base64", piece))
    else:
        b64.append(piece)
    if keeps_one_top_bit(piece):
        unxored += unxor(piece)
    if b"\0" in piece[:_WIDE_SAMPLE] and (wide := decode_wide(piece)):
        b64.append(wide)  # base64 of UTF-16 text


def _packed(piece: bytes, packed: list[tuple[str, bytes]]) -> bool:
    """Whether a decoded `piece` (its first byte one a signature starts with: the
    caller's one set lookup rejects nearly every piece) starts a compressed stream or
    an archive, and room is left for a view of its own."""
    return len(packed) < _PACKED_VIEWS and sniff(piece[:16]) is not None


def _around(
    pattern: re.Pattern[bytes], data: bytes, room: int, decode: Callable[[bytes], bytes]
) -> bytes:
    """Decode the stretches of `data` around each escape `pattern` finds, NUL-joined.

    A large body with a few stray escapes (binary, prose) yields a few small windows
    instead of another full copy; short or densely escaped data is decoded whole.
    (Both patterns start with a literal byte, which the regex engine scans for fast.)
    """
    if len(data) <= _WHOLE_BELOW:
        return decode(data)[:room] if pattern.search(data) else b""
    windows = around(pattern, data, _WINDOW)
    if windows is None:
        return decode(data)[:room]
    return b"\0".join(decode(data[a:b]) for a, b in windows)[:room]


def _qp(data: bytes) -> bytes:
    return binascii.a2b_qp(data)


def _unescape(data: bytes) -> bytes:
    def one(match: re.Match[bytes]) -> bytes:
        if match.group(1):
            return chr(int(match.group(1), 16)).encode("utf-8", "surrogatepass")
        if match.group(2):
            return bytes([int(match.group(2), 16)])
        return bytes([int(match.group(3), 8) & 0xFF])

    return _ESCAPE.sub(one, data)


def _unescape_percent_u(data: bytes) -> bytes:
    """`%u0073%u006B` -> `sk`."""

    def one(match: re.Match[bytes]) -> bytes:
        return chr(int(match.group(1), 16)).encode("utf-8", "surrogatepass")

    return _PERCENT_U.sub(one, data)


def _unentity(data: bytes) -> bytes:
    """`&#115;&#x6b;` -> `sk` (numeric HTML character references)."""

    def one(match: re.Match[bytes]) -> bytes:
        code = int(match.group(1)) if match.group(1) else int(match.group(2), 16)
        return chr(min(code, 0x10FFFF)).encode("utf-8", "surrogatepass")

    return _ENTITY.sub(one, data)


def _bomb(compressed: bytes, produced: bytes) -> bool:
    return len(produced) > _BOMB_RATIO * len(compressed)
