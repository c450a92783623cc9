"""Recognising images, audio, video and PDFs by their first bytes.

LLM requests carry screenshots and documents as base64 all day: the content-type
inspector does not report them as blobs, and the leak decoder does not try to
peel further encodings off their (compressed, random-looking) insides.
"""

from __future__ import annotations

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


def is_media(head: bytes) -> bool:
    """Whether `head` (the first bytes of a payload) starts a media file."""
    if head.startswith(_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE"):
        return True
    return head[4:8] == b"ftyp"  # MP4, HEIC, M4A
