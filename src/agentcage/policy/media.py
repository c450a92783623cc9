"""Recognising images, audio, video and PDFs by their first bytes, and text.

LLM requests carry screenshots and documents as base64 all day: the content-type
inspector does not report them as blobs, and the leak decoder does not try to
peel further encodings off their (compressed, random-looking) insides. `is_text`
tells decoded text from junk: a key is text, random bytes decoded as base85 or
inflated from a stray deflate header are not.
"""

from __future__ import annotations

_TEXT_SHARE = 0.9  # of text that must be printable ASCII (or tab, CR, LF)
_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\t\r\n"
_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"%PDF-",
    b"ID3",  # MP3
    b"OggS",
    b"fLaC",
    b"BM",  # BMP
)
# The bytes a media file can start with (RIFF's R besides the magics): with an MP4's
# `ftyp` at 4, what a caller checking many decoded pieces tests before `is_media`.
MEDIA_FIRST_BYTES = frozenset(magic[0] for magic in _MAGIC) | {ord("R")}


def is_media(head: bytes) -> bool:
    """Whether `head` (the first bytes of a payload) starts a media file."""
    if head.startswith(_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE"):
        return True
    return head[4:8] == b"ftyp"  # MP4, HEIC, M4A


def is_text(data: bytes) -> bool:
    """Whether `data` is long enough to matter (4+ bytes) and mostly printable ASCII."""
    if len(data) < 4:
        return False
    return len(data.translate(None, _PRINTABLE)) <= (1 - _TEXT_SHARE) * len(data)
