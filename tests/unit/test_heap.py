"""heap.py: a sidecar gives its start-up garbage back once it serves."""

from __future__ import annotations

import ctypes
import json
import linecache
import subprocess
import sys

import pytest

from agentcage import heap

# Freed holes between live blocks: glibc keeps them (free() only trims the heap's top).
_FRAGMENTED = """
import json, re
from agentcage.heap import give_back_free_memory

def anon_kib():
    with open("/proc/self/status") as status:
        return int(re.search(r"RssAnon:\\s+(\\d+)", status.read()).group(1))

blocks = [bytearray(64 * 1024) for _ in range(1000)]  # below the mmap threshold: heap
kept = blocks[::10]
del blocks
before = anon_kib()
given = give_back_free_memory()
print(json.dumps([given, before, anon_kib(), len(kept)]))
"""


def test_free_pages_between_live_objects_go_back_to_the_system() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _FRAGMENTED], capture_output=True, text=True, check=True
    )
    given, before, after, _ = json.loads(out.stdout)
    assert given is True
    # About 56 MiB of the 64 freed lie between the kept blocks.
    assert before - after > 32 * 1024


def test_a_c_library_without_malloc_trim_keeps_its_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    class Musl:
        """A C library with no `malloc_trim`, as musl's."""

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Musl())
    assert heap.give_back_free_memory() is False


def test_source_lines_read_from_files_are_dropped_and_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(linecache, "cache", {})
    generated = "<attrs generated methods example.Thing>"
    linecache.cache[generated] = (12, None, ["def f(): pass\n"], generated)
    first = linecache.getline(heap.__file__, 1)
    assert heap.__file__ in linecache.cache

    heap.give_back_free_memory()

    assert heap.__file__ not in linecache.cache
    assert generated in linecache.cache  # in no file: it could not be read again
    assert linecache.getline(heap.__file__, 1) == first
