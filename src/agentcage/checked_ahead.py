"""A sidecar config check's answer, stored ahead by whoever wrote the config.

`cage create`/`update`/`reload` write the sidecars' config (cage/layout.py) right after
validating the same config with the same code. Each sidecar would check it again in a
child (child_check.py) before READY=1: about 0.15 s of the proxy's start and most of the
DNS sidecar's, ~0.3 s of CPU on a starting cage's two cores. So the writer also stores,
beside the config, the bytes each check's child would print for it (`answer(path)` of
the check module, run in-process), under a key: the sha256 of the config's bytes, the
check module, `FORMAT`, the answer's own sha256, and the identity of the code that made
it (`code_identity`). A sidecar's first check uses the stored answer only if every part
of the key matches what it computes itself now, and reads it through the same parser as
a child's output; anything else (no file, a damaged one, other bytes, other code, an
answer its parser refuses) runs the check as before. Nothing new is trusted: the file
is written by the party that writes the config itself, into the same read-only mount.

A check's answer may depend on more than the file: the DNS plan's upstream servers are
the sidecar's own resolv.conf's when the config names none. Such an answer carries the
resolvers it was made with (`resolvers`), and is used only where they are the same.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from agentcage.atomicfile import AtomicFile

FORMAT = 2  # 2: the answer in base64, so the file is text
_SUFFIX = ".answer"
# A config is at most 1 MiB (config/load.py); its answer is of the same order.
_MAX_ANSWER_BYTES = 16 * 1024 * 1024
_PACKAGE = Path(__file__).resolve().parent
# What validation runs besides agentcage's own code.
_VALIDATORS = ("pydantic", "pydantic_core")


@dataclass(frozen=True)
class AnswerKey:
    """What a stored answer answers for; all of it must match for the answer to be used."""

    format: int
    module: str  # the check module whose child's output it is
    config_sha256: str  # of the config file's bytes
    answer_sha256: str  # of the answer's bytes: a damaged or cut file is no answer
    identity: str  # `code_identity()` of the process that made it
    resolvers: list[str] | None  # `host_resolvers()` it was made with, if it used them


def answer_path(config: Path, module: str) -> Path:
    """Where the answer of `module`'s check of `config` is stored: beside it."""
    return config.with_name(f"{config.name}.{module}{_SUFFIX}")


def code_identity() -> str | None:
    """A digest of the code a check runs: agentcage's `.py` files (path and bytes, sorted;
    the wheel in the images holds the CLI tree's), pydantic's and pydantic-core's versions
    and Python's. None if a version cannot be found: then no answer is stored or used.

    Computed anew by every process (about 10 ms in the runtime image): a cache would
    be one more thing to trust.
    """
    versions = [_installed_version(name) for name in _VALIDATORS]
    if None in versions:
        return None
    digest = hashlib.sha256()
    for part in (*versions, "python", str(sys.version_info[:2])):
        digest.update(f"{part}\0".encode())
    for relative in sorted(_py_files(_PACKAGE, "")):
        data = (_PACKAGE / relative).read_bytes()
        digest.update(f"{relative}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _py_files(directory: Path, prefix: str) -> list[str]:
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    found += _py_files(Path(entry.path), f"{prefix}{entry.name}/")
            elif entry.name.endswith(".py"):
                found.append(f"{prefix}{entry.name}")
    return found


def _installed_version(name: str) -> str | None:
    """`name`'s version from its `.dist-info` directory beside it, without importing it
    (or importlib.metadata: 40 ms of a sidecar's start)."""
    try:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            return None
        site = Path(spec.origin).parent.parent
        prefix = f"{name}-"
        versions = [
            entry[len(prefix) : -len(".dist-info")]
            for entry in os.listdir(site)
            if entry.startswith(prefix) and entry.endswith(".dist-info")
        ]
    except (OSError, ValueError, ImportError):
        return None
    return versions[0] if len(versions) == 1 else None


def answer_file(
    config: Path,
    config_bytes: bytes,
    module: str,
    answer: Callable[[], bytes],
    *,
    identity: str | None,
    resolvers: list[str] | None = None,
) -> AtomicFile | None:
    """The file that stores `answer()`, `module`'s answer for `config` holding
    `config_bytes`, made by code of `identity` (`code_identity()`, computed once by a
    caller storing several), for `write_atomic_all`. None when the file changed meanwhile
    or the code has no identity: a stale answer left then is never used (its key no
    longer matches)."""
    if identity is None:
        return None
    out = answer()
    if config.read_bytes() != config_bytes:
        return None  # rewritten meanwhile: the answer may be another file's
    key = AnswerKey(
        format=FORMAT,
        module=module,
        config_sha256=hashlib.sha256(config_bytes).hexdigest(),
        answer_sha256=hashlib.sha256(out).hexdigest(),
        identity=identity,
        resolvers=resolvers,
    )
    header = json.dumps(asdict(key), sort_keys=True).encode()
    # Text, as every file of the cage's state: a microVM cage's state is copied into its
    # guest as UTF-8 text (vm/guest_cage.py), and the proxy's answer is a pickle.
    # Policy only, never a secret value: readable by the sidecars' user, like the config.
    body = base64.b64encode(out)
    return answer_path(config, module), header + b"\n" + body + b"\n", 0o644


def stored_answer(config: Path, module: str) -> bytes | None:
    """The answer stored for `config` by `module`'s check, if every part of its key is
    what this process finds now; else None (and the check runs)."""
    try:
        with answer_path(config, module).open("rb") as handle:
            stored = handle.read(_MAX_ANSWER_BYTES + 1)
        if len(stored) > _MAX_ANSWER_BYTES:
            return None
        header, newline, body = stored.partition(b"\n")
        if not body.endswith(b"\n"):
            return None  # cut short: the writer ends it with a line break
        out = base64.b64decode(body[:-1], validate=True)
        found = json.loads(header)
        if not (newline and isinstance(found, dict) and set(found) == set(_KEY_FIELDS)):
            return None
        if (found["format"], found["module"]) != (FORMAT, module):
            return None
        if found["answer_sha256"] != hashlib.sha256(out).hexdigest():
            return None
        if found["config_sha256"] != hashlib.sha256(config.read_bytes()).hexdigest():
            return None
        if found["resolvers"] is not None and found["resolvers"] != _resolvers():
            return None
        if found["identity"] != code_identity():
            return None
    except Exception:  # any trouble reading it: the check runs (fail closed)
        return None
    return out


def _resolvers() -> list[str]:
    # Here: only an answer that used them needs them (the DNS plan's).
    from agentcage.config.host import host_resolvers

    return host_resolvers()


_KEY_FIELDS = tuple(AnswerKey.__dataclass_fields__)
