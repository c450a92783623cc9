"""Text spellings of bytes that the base64/hex/percent decoders do not cover.

A key can leave as a JSON array of its characters (`["s","k","-",...]`), as a
list of character codes (`115, 107, 45` or `0x73 0x6b 0x2d`), as hex with a
delimiter between bytes (`73-6b-2d`), in base85 or ascii85, or in base32. Each
decoder here finds such spellings and returns what they spell, NUL-joined, or
b"" when there are none. Only decodings that come out as text are kept: a key
is text, and junk decoded from ordinary data would only cost budget.

Each search costs a pass over the data, about 0.3-1 ms per MiB on this
project's machines, so `text_codes` runs them on data under `SEARCHED_BELOW`
bytes only, each behind a cheap test (enough digits, a quote-comma-quote) that
ordinary data fails; base32, whose runs lie inside the token runs the base64
decoder finds anyway, is decoded there at no extra pass (`base32_run`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Iterable, Iterator

from agentcage.policy.media import is_text
from agentcage.policy.runs import BASE64_ALPHABET, byte_table, long_runs
from agentcage.policy.scrubbing.packing import sniff

SEARCHED_BELOW = 16 * 1024  # larger data: these spellings are not looked for
_MAX_ITEMS = 256  # spellings decoded per call
# base85, ascii85 and base32 decode in pure Python (~0.1 us a character): runs longer
# than a key are not tried, and one call decodes at most this much.
_LONGEST_RUN = 1024
_DECODE_BUDGET = 32 * 1024

_CHAR_ARRAY = re.compile(
    rb"""\[\s*(["'])[^"'\\\n]{1,2}\1(?:\s*,\s*["'][^"'\\\n]{1,2}["']){7,}\s*\]"""
)
# The start of one: its literal `[` lets the regex engine skip ahead fast.
_ARRAY_START = re.compile(rb"""\[\s*["'][^"'\\\n]{1,2}["']\s*,""")
_QUOTED_ITEM = re.compile(rb"""["']([^"'\\\n]{1,2})["']""")

# Numbers in a list: decimal up to 7 digits (code points), or 0x-prefixed hex.
_NUMBER = rb"(?:0[xX][0-9a-fA-F]{1,6}|[0-9]{1,7})"
_SEPARATOR = rb"(?:\s*[,;]\s*|\s+)"
_CODE_LIST = re.compile(rb"(?<![\w.])(?:%s%s){7,}%s(?![\w.])" % (_NUMBER, _SEPARATOR, _NUMBER))
_DELIMITED_HEX = re.compile(
    rb"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[-:., ]){7,}[0-9A-Fa-f]{2}(?![0-9A-Fa-f])"
)
# Bytes as bits: `01110011 01101011`, eight or more.
_BITS = re.compile(rb"(?<![\w.])(?:[01]{8}(?:\s*[,;]\s*|\s+)){7,}[01]{8}(?![\w.])")
_BIT_BYTES = b"01,; \t\r\n"
_BIT_STRAYS = 8  # other bytes a run of bits may hold at its edges (`a 0111...`)
# Bytes a code list or delimited hex is made of; runs of them are where to look.
_NUMERIC_TABLE = byte_table(b"0123456789abcdefABCDEFxX,;:.- \t\r\n")
_NUMERIC_RUN = 15  # "1,2,3,4,5,6,7,8": the shortest list of eight

_B85_ALPHABET = (
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~"
)
_B85_TABLE = byte_table(_B85_ALPHABET)
_B85_RUN = 20
_KEY_REACH = 24  # how far into a base85 run a query key's `=` is looked for
_ASCII85 = re.compile(rb"<~([!-u\sz]{10,}?)~>")
_A85_TABLE = byte_table(bytes(range(0x21, 0x76)))
_A85_EDGES = b"\"',:;{}[]()"  # JSON or code around a bare ascii85 run
_NOT_A85 = b"vwxy{|}~"  # b85 characters ascii85 never uses
_B32_RUN = 16
_PACKED = 4  # compressed pieces of one decoding kept as views of their own


def char_arrays(data: bytes) -> bytes:
    """`["s","k","-"]` -> `sk-` (JSON or Python lists of one- or two-character strings)."""
    found = (b"".join(_QUOTED_ITEM.findall(m.group())) for m in _CHAR_ARRAY.finditer(data))
    return _joined(found)


def code_lists(data: bytes) -> bytes:
    """`115, 107, 45`, `0x73 0x6b` or `01110011 01101011` -> `sk`, and `73-6b-2d` -> `sk-`
    (eight or more)."""
    found: list[bytes] = []
    for start, end in long_runs(data, _NUMERIC_TABLE, _NUMERIC_RUN):
        # A run of the table's bytes, widened by one so the lookbehinds see its edge.
        lo, hi = max(start - 1, 0), min(end + 1, len(data))
        for match in _CODE_LIST.finditer(data, lo, hi):
            found.append(_codes(match.group()))
        if len(data[lo:hi].translate(None, _BIT_BYTES)) < _BIT_STRAYS:
            for match in _BITS.finditer(data, lo, hi):
                found.append(bytes(int(b, 2) for b in re.findall(rb"[01]{8}", match.group())))
        for match in _DELIMITED_HEX.finditer(data, lo, hi):
            found.append(binascii.unhexlify(re.sub(rb"[^0-9A-Fa-f]", b"", match.group())))
        if len(found) >= _MAX_ITEMS:
            break
    return _joined(found)


def _codes(text: bytes) -> bytes:
    numbers = [int(n, 0) if n[:2].lower() == b"0x" else int(n) for n in re.findall(_NUMBER, text)]
    if all(n < 256 for n in numbers):
        return bytes(numbers)
    if any(n > 0x10FFFF or 0xD800 <= n <= 0xDFFF for n in numbers):
        return b""
    return "".join(map(chr, numbers)).encode("utf-8")


def base85(data: bytes) -> bytes:
    """Base85 (RFC 1924, Python's `b85encode`, git) and ascii85 (`<~...~>` or bare)."""
    return _joined(base85_pieces(data))


def packed(pieces: Iterable[bytes]) -> list[bytes]:
    """The decoded pieces that are not text but start a compressed stream or an
    archive (base85 of gzip): each to be a view of its own, for the unpacker."""
    return [p for p in pieces if not is_text(p) and sniff(p[:16]) is not None][:_PACKED]


def base85_pieces(data: bytes) -> list[bytes]:
    """Each base85 or ascii85 run of `data`, decoded (text or not)."""
    found: list[bytes] = []
    if b"<~" in data:
        found += (_a85(m.group(1)[:_LONGEST_RUN]) for m in _ASCII85.finditer(data))
    left = _DECODE_BUDGET
    for run in _runs(data, _B85_TABLE):
        if run.translate(None, BASE64_ALPHABET):  # else the base64 decoder's business
            found.append(_b85(run))
            left -= len(run)
            # `?d=` and `&k=` are base85 characters too: a query value's run starts there.
            key = run.find(b"=", 0, _KEY_REACH)
            if key != -1 and len(run) - key > _B85_RUN:
                found.append(_b85(run[key + 1 :]))
        if left <= 0 or len(found) >= _MAX_ITEMS:
            break
    for run in _runs(data, _A85_TABLE):
        run = run.strip(_A85_EDGES)
        if run.translate(None, BASE64_ALPHABET) and len(run.translate(None, _NOT_A85)) == len(run):
            found.append(_a85(run))
            left -= len(run)
        if left <= 0 or len(found) >= _MAX_ITEMS:
            break
    return found


def _runs(data: bytes, table: bytes) -> Iterator[bytes]:
    for start, end in long_runs(data, table, _B85_RUN):
        if end - start <= _LONGEST_RUN:
            yield data[start:end]


def _b85(run: bytes) -> bytes:
    if len(run) % 5 == 1:
        run = run[:-1]
    try:
        return base64.b85decode(run)
    except ValueError:
        return b""


def _a85(run: bytes) -> bytes:
    try:
        return base64.a85decode(run)
    except ValueError:
        return b""


_XOR_LONGEST = 4096
_XOR_KEYS = 4  # keys tried per view: the likeliest ones
_XOR_SCRAMBLED = 0.5  # printable data with more than this share of other bytes is tried
_ALNUM = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Byte i of table `key` is i ^ key: each table is the identity XOR `key` repeated, done as
# one integer XOR (a byte at a time took about 2 ms of every proxy's start).
_IDENTITY = int.from_bytes(bytes(range(256)), "big")
_XOR_TABLES = [
    (_IDENTITY ^ int.from_bytes(bytes([key]) * 256, "big")).to_bytes(256, "big")
    for key in range(256)
]


def unxor(data: bytes) -> list[bytes]:
    """Text hidden under a one-byte XOR key: the texts the likeliest keys give.

    XOR-ed ASCII keeps one top bit throughout (the key's), which random bytes almost
    never do; only data that does is tried against the 127 keys with that top bit,
    and, when that bit is 0, only if it is not already text (mostly letters and
    digits): a key below 0x80 scrambles text into other printable characters.
    Near the right key many keys give printable bytes (`^ 1` moves letters to
    letters), so the keys are ranked by how many letters and digits they give.
    """
    if not 8 <= len(data) <= _XOR_LONGEST:
        return []
    top = data[0] & 0x80
    if (top and min(data) < 0x80) or (not top and max(data) >= 0x80):
        return []  # the top bit varies: random bytes, not XOR-ed text
    if len(set(data[:64])) < 4:
        return []  # one byte repeated (zeros), not text
    others = len(data.translate(None, _ALNUM))
    if is_text(data) and others < _XOR_SCRAMBLED * len(data):
        return []  # text as it is: mostly letters and digits
    scored = []
    for key in range(max(top, 1), top + 0x80):
        plain = data.translate(_XOR_TABLES[key])
        scored.append((len(plain.translate(None, _ALNUM)), key, plain))
    scored.sort()
    return [p for n, _, p in scored[:_XOR_KEYS] if n < others and is_text(p)]


_B32_ALPHABETS = (b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=", b"abcdefghijklmnopqrstuvwxyz234567=")


def base32_run(run: bytes) -> bytes:
    """A token run wholly in one case of the base32 alphabet, decoded from its start,
    if it decodes to text; else b""."""
    if len(run) < _B32_RUN or len(run) > _LONGEST_RUN:
        return b""
    upper, lower = _B32_ALPHABETS
    if run.translate(None, upper) and run.translate(None, lower):
        return b""
    body = run.rstrip(b"=").upper()
    while len(body) % 8 in (1, 3, 6):  # lengths no base32 text has
        body = body[:-1]
    try:
        decoded = base64.b32decode(body + b"=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        return b""
    return decoded if is_text(decoded) else b""


# Text with one separator after every character: `s-k---a-n-t`, `s k - a`, and in
# JSON `s\\nk\\n-` (a separator byte is also a character when the key holds it:
# `---` is a dash between two separators). 16 characters at least.
_SEPARATED_RUN = 15  # separators in a row, every other byte (every third for `\n`)
_SEPARATORS = b"-. _:/|,;+*~\n\t"
_SEPARATOR_MARK = bytes(0 if b in _SEPARATORS else 1 for b in range(256))
_SEPARATED = {
    sep: re.compile(rb"[!-~](?:" + re.escape(bytes([sep])) + rb"[!-~]){15,}") for sep in _SEPARATORS
}
_ALTERNATING = b"\1\0" * 6
_NULS = re.compile(b"\0+")
_ESCAPE_SEPARATED = re.compile(rb"[!-~](?:\\[nrt][!-~]){15,}")


def separated(data: bytes) -> bytes:
    """`s-k---a-n-t` -> `sk-ant`: text with one separator after every character.

    Every separator maps to one byte, so a run shows as that byte repeated in one of
    the two halves (even or odd positions) of the mapped data: two substring
    searches find whether there is any, and the regex runs only where one starts.
    """
    found: list[bytes] = []
    marked = data.translate(_SEPARATOR_MARK)
    needle = bytes(_SEPARATED_RUN)
    halves = [(k, half) for k in (0, 1) if needle in (half := marked[k::2])]
    # A character and a separator, six times over, is somewhere in every such run
    # (between the key's own separators); code's indentation has none. (A slow search
    # on two-symbol data: only once a half has a run.)
    if halves and _ALTERNATING not in marked:
        halves = []
    for k, half in halves:
        pos = half.find(needle)
        while pos >= 0 and len(found) < _MAX_ITEMS:
            at = 2 * pos + k  # the run's first separator; its first character is before
            regex = _SEPARATED[data[at]]
            match = regex.match(data, at - 1) if at else None
            if match is not None:
                found.append(match.group()[::2])
                pos = half.find(needle, (match.end() - k + 1) // 2)
            elif data[at : at + 1] != data[at + 2 : at + 3]:
                pos = half.find(needle, pos + 1)  # another separator just before the run
            else:  # no character between the separators (indentation): past them all
                skip = _NULS.match(half, pos)
                pos = half.find(needle, skip.end() if skip else pos + 1)
    escaped = b"\\" * _SEPARATED_RUN
    if b"\\" in data and any(escaped in data[k::3] for k in (0, 1, 2)):
        found += (m.group()[::3] for m in _ESCAPE_SEPARATED.finditer(data))
    return _joined(found[:_MAX_ITEMS])


# A uuencoded line: its length character, then exactly the characters that many
# bytes take (no lower-case letters: prose fails at its first word).
_UU_TABLE = byte_table(bytes(range(0x20, 0x61)))
_UU_FULL = 61
_UU_SHORT = 1024
_UU_LEAST = 12
_UU_LINE = re.compile(rb"^([!-M])([ -`]{4,61})\r?$", re.MULTILINE)


def uudecode(data: bytes) -> bytes:
    """The bytes of `uuencode`d lines (`M` and 60 characters for 45 bytes), joined."""
    # A full line (`M` and 60 characters) is a run this long of uuencode's
    # characters (no lower case), found at C speed; short text needs a line of 8 bytes.
    longest = _UU_FULL if len(data) > _UU_SHORT else _UU_LEAST
    if next(long_runs(data, _UU_TABLE, longest), None) is None:
        return b""
    found: list[bytes] = []
    for match in _UU_LINE.finditer(data):
        count = match.group(1)[0] - 32
        if len(match.group(2)) in (4 * -(-count // 3), 4 * -(-count // 3) + 1):
            with contextlib.suppress(binascii.Error):
                found.append(binascii.a2b_uu(match.group(1) + match.group(2)))
    return _joined([b"".join(found)]) if found else b""


_LONG_SEPARATOR_PERIODS = (3, 4)  # a character and a separator of 2 or 3 bytes
_SHIFT = 12  # a multiple of every period: one comparison serves them all
_PERIODS_SEEN = 8  # separators in a row that mark a run


def long_separated(data: bytes) -> bytes:
    """`s<x>k<x>-` -> `sk-`: text with one same separator of two or three bytes after
    every character (16 characters at least).

    Such text equals itself 12 bytes on at each separator byte. One big-integer XOR
    of the data with its shift gives a NUL wherever that holds; in every third or
    fourth byte of it, a separator's place shows as a run of NULs, which a substring
    search finds (memchr speed); the run is then read at that place.
    """
    size = len(data) - _SHIFT
    if size < 16 * _LONG_SEPARATOR_PERIODS[0]:
        return b""
    left = int.from_bytes(data[:size], "big")
    same = (left ^ int.from_bytes(data[_SHIFT:], "big")).to_bytes(size, "big")
    zeros = bytes(_PERIODS_SEEN)
    found: dict[int, bytes] = {}
    for period in _LONG_SEPARATOR_PERIODS:
        for phase in range(period):
            column = same[phase::period]
            at = column.find(zeros)
            while at != -1 and len(found) < _MAX_ITEMS:
                start, run = _periodic_run(data, phase + at * period, period)
                if len(run) >= 16:
                    found.setdefault(start, run)
                skip = (start + len(run) * period - phase) // period
                at = column.find(zeros, max(at + 1, skip))
    return _joined(found.values())


def _periodic_run(data: bytes, place: int, period: int) -> tuple[int, bytes]:
    """(start, characters) of the run with a separator byte at `place`, or (place, b"")."""
    for back in range(1, period):
        at = place - back  # the character before the separator, if `place` is its `back`th byte
        separator = data[at + 1 : at + period]
        if at < 0 or data[at + 1 + period : at + 2 * period] != separator:
            continue
        if not separator.strip() or not separator.isascii():
            return place, b""  # indentation, or wide text's NULs
        while at >= period and data[at - period + 1 : at] == separator:
            at -= period
        end = at
        while data[end + 1 : end + period] == separator:
            end += period
        run = data[at : end + 1 : period]
        if len(set(run)) > 2:  # not one byte repeated (`=====`, a rule of dashes)
            return at, run
    return place, b""


def _joined(found: Iterable[bytes]) -> bytes:
    return b"\0".join(piece for piece in found if is_text(piece))


_DIGITS = b"0123456789"
# base85 characters outside base64 but for `{}`, which every JSON body has.
_B85_MARKS = b"!#$%&()*;<=>?@^`|~"


def text_codes(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, decoded) for each spelling family found in `data` (under the size cap)."""
    if len(data) < _NUMERIC_RUN or len(data) >= SEARCHED_BELOW or not is_text(data[:256]):
        return
    if _ARRAY_START.search(data):
        yield "char-array", char_arrays(data)
    if len(data) - len(data.translate(None, _DIGITS)) >= 8:
        yield "char-codes", code_lists(data)
    if len(data.translate(None, _B85_MARKS)) < len(data):
        pieces = base85_pieces(data)
        yield "base85", _joined(pieces)
        for piece in packed(pieces):
            yield "base85", piece
    yield "separated", separated(data)
    if b"\n" in data or len(data) <= 62:
        yield "uuencode", uudecode(data)
    yield "separated", long_separated(data)
