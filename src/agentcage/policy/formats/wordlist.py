"""The BIP-39 English wordlist, for recognising seed phrases.

It is read from the `mnemonic` package (MIT licence; the reference implementation
by the BIP's authors, pinned in uv.lock) and checked against the SHA-256 the BIP-39
specification publishes for the list, so a different list fails loudly instead of
silently missing phrases. This repository keeps no copy of it.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from agentcage.errors import PolicyError

SHA256 = "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"
WORDS = 2048


@functools.cache
def _english() -> dict[bytes, int]:
    try:
        text = resources.files("mnemonic").joinpath("wordlist/english.txt").read_bytes()
    except (ModuleNotFoundError, OSError) as exc:
        raise PolicyError(
            "the BIP-39 wordlist (package `mnemonic`) cannot be read",
            hint="reinstall agentcage with its dependencies (`uv sync`)",
        ) from exc
    if hashlib.sha256(text).hexdigest() != SHA256:
        raise PolicyError(
            "the BIP-39 wordlist of package `mnemonic` is not the published one",
            hint="reinstall the pinned version (`uv sync`)",
        )
    words = text.split()
    return {word: index for index, word in enumerate(words)}


def bip39_words() -> list[bytes]:
    """The 2048 words, in order."""
    return list(_english())


def bip39_index(word: bytes) -> int | None:
    """The word's index in the BIP-39 English list, or None."""
    return _english().get(word)


def load() -> int:
    """Read and check the list now (at startup, not on the first request)."""
    return len(_english())
