"""A `git push` request body as git sends it, built without git: for the benign corpus.

`push_body` makes one commit (a source file, a binary asset, their tree, a commit
with a parent) into a real version 2 packfile with SHA-1 ids and checksum, after the
ref-update pkt-line and flush: a body `git receive-pack` would accept, which the leak
inspector reads object by object (policy/leaks/gitpack.py).
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib

_COMMIT, _TREE, _BLOB = 1, 2, 3
_NAMES = {_COMMIT: b"commit", _TREE: b"tree", _BLOB: b"blob"}


def object_id(kind: int, data: bytes) -> bytes:
    return hashlib.sha1(_NAMES[kind] + b" %d\0" % len(data) + data).digest()


def packfile(objects: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(b"PACK" + struct.pack(">II", 2, len(objects)))
    for kind, data in objects:
        size = len(data)
        byte, size = (kind << 4) | (size & 15), size >> 4
        while size:
            out.append(byte | 0x80)
            byte, size = size & 0x7F, size >> 7
        out.append(byte)
        out += zlib.compress(data)
    return bytes(out + hashlib.sha1(out).digest())


def push_body(rng: random.Random, asset_size: int) -> bytes:
    source = "".join(
        f"def step_{n}(state):\n    return state + {rng.randrange(1000)}\n" for n in range(200)
    ).encode()
    asset = rng.randbytes(asset_size)
    blobs = {b"app.py": source, b"logo.bin": asset}
    tree = b"".join(
        b"100644 " + name + b"\0" + object_id(_BLOB, data) for name, data in sorted(blobs.items())
    )
    parent = rng.randbytes(20).hex()
    stamp = 1_700_000_000 + rng.randrange(10_000_000)
    commit = (
        f"tree {object_id(_TREE, tree).hex()}\nparent {parent}\n"
        f"author Dev <dev@example.com> {stamp} +0000\n"
        f"committer Dev <dev@example.com> {stamp} +0000\n\nUpdate the logo and the steps\n"
    ).encode()
    new = object_id(_COMMIT, commit).hex()
    objects = [(_COMMIT, commit), (_TREE, tree), *((_BLOB, data) for data in blobs.values())]
    line = f"{parent} {new} refs/heads/main\0 report-status side-band-64k agent=git/2.43.0\n"
    return b"%04x" % (len(line) + 4) + line.encode() + b"0000" + packfile(objects)
