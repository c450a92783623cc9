"""Undo Unicode disguises: look-alike letters, invisible separators, wide encodings.

An agent can make a key unrecognisable to a byte matcher while it stays readable
(and usable) to a person or a program at the far end: full-width letters
(`\uff53\uff4b`...), Cyrillic and Greek letters that look Latin, a
zero-width space, soft hyphen, middle dot, Unicode hyphen or any other symbol
between every character, combining marks piled on, or the whole text in UTF-16 or UTF-32.
`fold_unicode` maps such text to the ASCII it imitates (NFKD, look-alikes to
Latin, invisible and separator characters and combining marks removed, NFKC);
`decode_wide` turns UTF-16/32 text into UTF-8. Both return None when there is
nothing to undo, so ordinary ASCII costs one `isascii` call.
"""

from __future__ import annotations

import re
import unicodedata

from agentcage.policy.media import is_text
from agentcage.policy.runs import around

# Letters of other scripts drawn like a Latin letter (Unicode's confusables,
# restricted to the letters that are one-to-one look-alikes in common fonts).
_LOOKALIKE_GROUPS = (
    # Cyrillic
    (
        "\u0430\u0432\u0435\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443\u0445\u0455\u0456"
        "\u0458\u0501\u04bb\u051b\u051d\u04af\u04cf\u0261\u028f\u0410\u0412\u0415\u041a\u041c"
        "\u041d\u041e\u0420\u0421\u0422\u0425\u0423\u0405\u0406\u0408\u051a\u051c\u04ae\u04c0"
        "\u13aa\u13f4\u13df\u13ac\u13bb",
        "abekmhopctyxsijdhqwylgyABEKMHOPCTXYSIJQWYIABCEH",
    ),
    # Greek
    (
        "\u03b1\u03b2\u03b5\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7\u03b3\u03c9\u0391"
        "\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7",
        "abeikvoptuxywABEZHIKMNOPTYX",
    ),
    # Latin small capitals and other look-alikes NFKC leaves alone
    (
        "\u1d00\u0299\u1d04\u1d05\u1d07\u0262\u029c\u026a\u1d0a\u1d0b\u029f\u1d0d\u0274\u1d0f"
        "\u1d18\u0280\ua731\u1d1b\u1d1c\u1d20\u1d21\u1d22\u0131\u0237",
        "ABCDEGHIJKLMNOPRSTUVWZij",
    ),
)
_LOOKALIKES = {
    key: value
    for keys, values in _LOOKALIKE_GROUPS
    for key, value in zip(keys, values, strict=True)
}
# Characters that carry nothing a reader would copy into a key: every non-ASCII
# symbol, punctuation mark, space and format control (zero-width space and joiners,
# soft hyphen, bidi marks, BOM: the Unicode hyphens, dashes, dots, bullets and
# operators one puts between characters), and combining marks. Letters and digits of
# other scripts stay: they are words, not separators.
# (`\w` is a letter or digit of any script: the class is everything else past ASCII.)
_DROP = re.compile("[^\\x00-\\x7f\\w]")
_LOOKALIKE = re.compile("[" + "".join(_LOOKALIKES) + "]")
_NON_ASCII = re.compile(rb"[\x80-\xff]+")
# Large data is folded in windows this wide around its non-ASCII bytes (a
# disguised key is far shorter), unless those cover most of it.
_WHOLE_BELOW = 4096
_WINDOW = 256
WIDE_SAMPLE = 512  # bytes looked at to recognise UTF-16/32
WIDE_SHARE = 0.9  # of the bytes above an ASCII character that must be NUL
# codec, bytes a unit, index in the unit of the byte that holds an ASCII character
_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00")
_WIDE = (("utf-32-le", 4, 0), ("utf-32-be", 4, 3), ("utf-16-le", 2, 0), ("utf-16-be", 2, 1))


def fold_unicode(data: bytes) -> bytes | None:
    """`data` with Unicode disguises undone (UTF-8 out), or None if it holds none."""
    if data.isascii():
        return None
    try:
        data[:WIDE_SAMPLE].decode("utf-8")  # binary (a decoded image, say) is not text to fold
    except UnicodeDecodeError as exc:
        if exc.start < min(len(data), WIDE_SAMPLE) - 3:  # not merely a character cut in two
            return None
    windows = around(_NON_ASCII, data, _WINDOW) if len(data) > _WHOLE_BELOW else None
    if windows is None:
        folded = _fold(data)
        return folded if folded != data else None
    pieces = [_fold(data[a:b]) for a, b in windows]
    changed = [p for p, (a, b) in zip(pieces, windows, strict=True) if p != data[a:b]]
    return b"\0".join(changed) or None


def _fold(data: bytes) -> bytes:
    # Decomposed first, so marks piled on a letter come apart from it and go.
    text = unicodedata.normalize("NFKD", data.decode("utf-8", "replace"))
    text = _LOOKALIKE.sub(lambda m: _LOOKALIKES[m.group()], _DROP.sub("", text))
    return unicodedata.normalize("NFKC", text).encode("utf-8", "replace")


def decode_wide(data: bytes) -> bytes | None:
    """UTF-16 or UTF-32 text (a BOM, or the NUL bytes of ASCII in wide units) as
    UTF-8, else None."""
    codec = _wide_codec(data)
    if codec is None:
        return None
    text = data.decode(codec, "replace").lstrip("\ufeff").encode("utf-8", "replace")
    # Without a BOM, the guess rests on NUL bytes: the text must be ASCII-like to count.
    return text if data[:2] in _BOMS or is_text(text) else None


def might_be_wide(data: bytes) -> bool:
    """False when `decode_wide` surely finds no wide text in `data`: no BOM and too few
    NUL bytes, as in random bytes. (Every BOM `_wide_codec` knows starts with two bytes
    of `_BOMS`; without one it needs this share of NULs in its sample.)"""
    sample = data[:WIDE_SAMPLE]
    return data[:2] in _BOMS or (
        len(sample) >= 16 and sample.count(0) >= WIDE_SHARE * (len(sample) // 2)
    )


def _wide_codec(data: bytes) -> str | None:
    if data[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        return "utf-32-le" if data[0] == 0xFF else "utf-32-be"
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16-le" if data[0] == 0xFF else "utf-16-be"
    sample = data[:WIDE_SAMPLE]
    if len(sample) < 16 or b"\0" not in sample:
        return None
    # Of the four codecs UTF-16 needs the fewest NULs (one a unit, at the share), so
    # fewer rule them all out: random bytes (decoded base64 of hashes) stop here.
    if sample.count(0) < WIDE_SHARE * (len(sample) // 2):
        return None
    for codec, width, low in _WIDE:
        size = len(sample) - len(sample) % width
        units = size // width
        zeros = sum(sample[i:size:width].count(0) for i in range(width) if i != low)
        carried = sample[low:size:width].count(0)  # NUL characters: few in text
        if zeros >= WIDE_SHARE * units * (width - 1) and carried <= (1 - WIDE_SHARE) * units:
            return codec
    return None
