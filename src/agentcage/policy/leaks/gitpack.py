"""What a `git push` carries: the objects inside a packfile, inflated one by one.

A push over smart HTTP is one POST to `.../git-receive-pack`: pkt-lines (one command
per ref: old id, new id, ref name, capabilities after a NUL on the first), a flush
`0000`, perhaps push options and another flush, then a packfile. The packfile is
`PACK`, version 2 or 3, an object count, then each object as a type/size header and
its own zlib stream (a delta first names its base: an offset back into the pack, or
the base's id), then a checksum. A byte scanner sees none of the files: each object is
compressed on its own, after a header no compression sniffer knows.

`find_pack` recognises a packfile, a bundle, or a request body that ends in a
packfile, by its bytes;
`pack_contents` inflates every object within a byte limit and returns what an agent
wrote, NUL-separated: the pkt-line commands (ref names are agent-chosen), whole
commits, tags, trees and blobs, and each delta's insert data (the new text of a changed
file: a delta against a base the server already has carries nothing else new); a
blob that is itself compressed or an archive comes apart, for the unwrapper to
unpack. A pack that does not parse raises `PackError`; git would refuse it too, so
blocking it costs no real push.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from agentcage.policy.scrubbing.packing import SIGNATURE_BYTES, sniff

PACK_MAGIC = b"PACK"
_VERSIONS = (2, 3)
_VERSION_BYTES = tuple(struct.pack(">I", v) for v in _VERSIONS)
_COMMIT, _TREE, _BLOB, _TAG, _OFS_DELTA, _REF_DELTA = 1, 2, 3, 4, 6, 7
_WHOLE = frozenset({_COMMIT, _TREE, _BLOB, _TAG})
_SHA1, _SHA256 = 20, 32
# git reads hex digits of either case in lengths and ids: so must we, or a push
# spelled in capitals would not be recognised as one.
_PKT_LENGTH = re.compile(rb"[0-9a-fA-F]{4}")
# What the first pkt-line of a push starts with: a command (old and new id), a shallow
# line, or a signed push's certificate.
_FIRST_LINE = re.compile(rb"(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64}) |shallow |push-cert\0")
_FIRST_STEP = 64  # compressed bytes first fed for an object, beyond its size
_MAX_SIZE_SHIFT = 56  # a size header longer than this is garbage, not a big object
_PACKED_APART = 8
_BUNDLES = (b"# v2 git bundle\n", b"# v3 git bundle\n")


class PackError(ValueError):
    """A packfile that does not parse: the message says where and why."""


@dataclass(frozen=True, slots=True)
class Pack:
    """Where a packfile starts in the data, and its object ids' length."""

    start: int
    id_length: int = _SHA1


@dataclass(frozen=True, slots=True)
class PackContents:
    data: bytes  # the commands, then each object's content or inserts, NUL-separated
    objects: int  # objects read
    complete: bool  # False when the byte limit stopped the reading
    # Blobs that start with a compression or archive signature, each apart so that
    # the signature is at its start (the first few; later ones are in `data`).
    packed: tuple[bytes, ...] = ()


def read_pack(data: bytes, limit: int, *, whole: bool = True) -> PackContents | None:
    """`pack_contents` of the packfile in `data`, if it holds one (`find_pack`)."""
    pack = find_pack(data)
    return None if pack is None else pack_contents(data, pack, limit, whole=whole)


def find_pack(data: bytes) -> Pack | None:
    """The packfile `data` is, or ends in after a push's pkt-lines; else None."""
    if data.startswith(PACK_MAGIC):
        # Text can start with `PACK` (`PACKAGE=...`); a pack's version follows.
        return Pack(0) if data[4:8] in _VERSION_BYTES else None
    if data.startswith(_BUNDLES):
        # A bundle (`git bundle create`): its refs, a blank line, then a packfile.
        end = data.find(b"\n\n")
        if end == -1 or not data.startswith(PACK_MAGIC, end + 2):
            return None
        sha256 = b"@object-format=sha256" in data[:end]
        return Pack(end + 2, _SHA256 if sha256 else _SHA1)
    if not (_PKT_LENGTH.match(data) and _FIRST_LINE.match(data, 4)):
        return None
    pos, id_length, flushed = 0, _SHA1, False
    while pos + 4 <= len(data):
        if flushed and data.startswith(PACK_MAGIC, pos):
            return Pack(pos, id_length)
        if not _PKT_LENGTH.match(data, pos):
            return None
        size = int(data[pos : pos + 4], 16)
        flushed = size == 0
        if size in (0, 1, 2):  # flush, delimiter, response end: no payload
            pos += 4
            continue
        if size < 4 or pos + size > len(data):
            return None
        if pos == 0 and b"object-format=sha256" in data[4:size]:
            id_length = _SHA256
        pos += size
    return None


def pack_contents(data: bytes, pack: Pack, limit: int, *, whole: bool = True) -> PackContents:
    """Every object of the packfile at `pack.start`, inflated: at most `limit` bytes
    in all (the rest unread, `complete` False). Raises `PackError` if it is malformed.

    `whole`: `data` is a request body, which must end with the pack's checksum; else
    it is a decoded view (NUL-joined pieces), whose bytes after the pack are kept.
    """
    start = pack.start
    if len(data) < start + 12:
        raise PackError("ends inside its header")
    version, count = struct.unpack_from(">II", data, start + 4)
    if version not in _VERSIONS:
        raise PackError(f"has version {version}, not 2 or 3")
    out: list[bytes] = [data[:start]] if start else []
    packed: list[bytes] = []
    left = limit - (start + 1 if start else 0)
    pos = start + 12
    for index in range(count):
        at = pos
        kind, size, pos = _object_header(data, pos, index)
        if kind == _OFS_DELTA:
            back, pos = _base_offset(data, pos, index)
            if back > at - start - 12:
                raise PackError(f"object {index} names a base before the pack's start")
        elif kind == _REF_DELTA:
            pos += pack.id_length
        elif kind not in _WHOLE:
            raise PackError(f"object {index} has type {kind}, which no object has")
        if size + 1 > left:
            return PackContents(b"\0".join(out), index, False, tuple(packed))
        content, pos = _inflate(data, pos, size, index)
        if kind == _BLOB and len(packed) < _PACKED_APART and _is_packed(content):
            packed.append(content)
        else:
            out.append(content if kind in _WHOLE else _inserts(content, index))
        left -= size + 1
    trailing = len(data) - pos
    if trailing < pack.id_length or (whole and trailing > pack.id_length):
        what = "bytes after its checksum" if trailing > pack.id_length else "a cut checksum"
        raise PackError(f"has {what} ({trailing} bytes after {count} objects)")
    rest = data[pos + pack.id_length :]
    if rest and len(rest) < left:
        out.append(rest)
    return PackContents(b"\0".join(out), count, not rest or len(rest) < left, tuple(packed))


def _is_packed(blob: bytes) -> bool:
    """Compressed, an archive, or git's own: a committed packfile or bundle."""
    if sniff(blob[:SIGNATURE_BYTES]) is not None or blob[257:262] == b"ustar":
        return True
    return blob.startswith(_BUNDLES) or (
        blob.startswith(PACK_MAGIC) and blob[4:8] in _VERSION_BYTES
    )


def _object_header(data: bytes, pos: int, index: int) -> tuple[int, int, int]:
    """(type, inflated size, where the rest starts): 3 type bits and 4 size bits in the
    first byte, the size's higher bits in a varint after it."""
    if pos >= len(data):
        raise PackError(f"ends before object {index}")
    byte = data[pos]
    kind, size = (byte >> 4) & 7, byte & 15
    if not byte & 0x80:
        return kind, size, pos + 1
    pos, high = _varint(data, pos + 1, f"object {index}")
    return kind, size | high << 4, pos


def _base_offset(data: bytes, pos: int, index: int) -> tuple[int, int]:
    """An OFS_DELTA's distance back to its base (git's varint: each further byte adds 1)."""
    if pos >= len(data):
        raise PackError(f"object {index} ends before its base offset")
    byte = data[pos]
    offset = byte & 0x7F
    pos += 1
    while byte & 0x80:
        if pos >= len(data) or offset.bit_length() > _MAX_SIZE_SHIFT:
            raise PackError(f"object {index} has a broken base offset")
        byte = data[pos]
        offset = ((offset + 1) << 7) | (byte & 0x7F)
        pos += 1
    if offset == 0:
        raise PackError(f"object {index} is its own base")
    return offset, pos


def _inflate(data: bytes, pos: int, size: int, index: int) -> tuple[bytes, int]:
    """The object's zlib stream at `pos`, which must inflate to exactly `size` bytes;
    and where the next object starts.

    The stream's compressed length is not written anywhere: it is fed in slices (first
    a little more than `size`, which nearly every stream fits in, then doubling), so
    finding where it ends copies no more than a slice, however large the pack.
    """
    decomp = zlib.decompressobj()
    view = memoryview(data)
    pieces: list[bytes] = []
    got, at, step = 0, pos, size + size // 8 + _FIRST_STEP
    try:
        while not decomp.eof:
            if at >= len(data):
                raise PackError(f"object {index} is cut short")
            piece = decomp.decompress(view[at : at + step], size + 1 - got)
            at = min(at + step, len(data))
            got += len(piece)
            pieces.append(piece)
            if got > size:
                raise PackError(f"object {index} inflates to more than its {size} bytes")
            step *= 2
    except zlib.error as error:
        raise PackError(f"object {index} does not inflate ({error})") from error
    if got != size:
        raise PackError(f"object {index} inflates to {got} bytes, not {size}")
    return b"".join(pieces), at - len(decomp.unused_data)


def _inserts(delta: bytes, index: int) -> bytes:
    """The literal data a delta inserts, consecutive inserts joined (git cuts a long
    insertion into 127-byte ones) and a NUL where a copy from the base comes between."""
    # The base's size first: only the server can check it.
    pos, _ = _varint(delta, 0, f"delta {index}")
    pos, target_size = _varint(delta, pos, f"delta {index}")
    runs: list[bytes] = []
    current: list[bytes] = []
    made = 0
    while pos < len(delta):
        op = delta[pos]
        pos += 1
        if op & 0x80:  # copy: offset and size bytes flagged by the low 7 bits
            offset_bytes = bin(op & 0x0F).count("1")
            size_bytes = bin(op & 0x70).count("1")
            if pos + offset_bytes + size_bytes > len(delta):
                raise PackError(f"delta {index} is cut inside a copy")
            length = 0
            at = pos + offset_bytes
            for bit in range(3):
                if op & (0x10 << bit):
                    length |= delta[at] << (8 * bit)
                    at += 1
            made += length or 0x10000
            pos = at
            if current:
                runs.append(b"".join(current))
                current = []
        elif op:
            if pos + op > len(delta):
                raise PackError(f"delta {index} is cut inside an insert")
            current.append(delta[pos : pos + op])
            made += op
            pos += op
        else:
            raise PackError(f"delta {index} has the reserved instruction 0")
    if made != target_size:
        raise PackError(f"delta {index} makes {made} bytes, not {target_size}")
    if current:
        runs.append(b"".join(current))
    return b"\0".join(runs)


def _varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """(where it ends, the value) of a little-endian base-128 number at `pos`."""
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > _MAX_SIZE_SHIFT:
            raise PackError(f"{what} has a broken size")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        shift += 7
        pos += 1
        if not byte & 0x80:
            return pos, value
