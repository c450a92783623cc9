"""Canary credentials: decoys in real formats; any use of one is a leak.

A canary is handed to the agent as an ordinary-looking env var. Nothing ever
accepts it, so the only way it shows up in traffic is an agent (or something in
it) trying to use or send it: blocked everywhere, severity critical.

Values are derived from a per-cage seed and the env name, so a cage keeps the
same decoys across restarts without storing them. The seed should be secret
(e.g. random bytes kept in the cage's state): derived from public facts alone, a
decoy could be told apart from a real key.

This module is light on purpose (no engine import): the cage layer uses it to put
the decoys into the agent's environment, the leak inspector to recognise them.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the DNS sidecar imports this module without the schema (dns/plan.py)
    from agentcage.config.schema import CageConfig

CanaryKind = Literal[
    "anthropic", "openai", "aws", "aws-secret", "github", "gitlab", "slack", "stripe", "generic"
]

# Env var (or secret) holding this cage's canary seed; without it the cage name is
# used, which keeps values stable but lets someone who knows the name recompute them.
CANARY_SEED_ENV = "AGENTCAGE_CANARY_SEED"

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B64URL = _B62 + "-_"
_B64 = _B62 + "+/"
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_HEX = "0123456789abcdef"
_DIGITS = "0123456789"


class _Stream:
    """Deterministic characters from a seed (SHAKE-256 output, one byte each)."""

    def __init__(self, seed: bytes) -> None:
        self._bytes = hashlib.shake_256(seed).digest(1024)
        self._at = 0

    def chars(self, alphabet: str, count: int) -> str:
        out: list[str] = []
        while len(out) < count:
            byte = self._bytes[self._at]
            self._at += 1
            # Rejection sampling keeps every character equally likely, like a real key.
            if byte < 256 - 256 % len(alphabet):
                out.append(alphabet[byte % len(alphabet)])
        return "".join(out)


def _base62(number: int, width: int) -> str:
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _B62[rest] + digits
    return digits.rjust(width, "0")


def _github(s: _Stream) -> str:
    # GitHub tokens end in a base62 CRC32 of the random part; scanners check it.
    body = s.chars(_B62, 30)
    return "ghp_" + body + _base62(zlib.crc32(body.encode()), 6)


_FORMATS: dict[str, Callable[[_Stream], str]] = {
    "anthropic": lambda s: "sk-ant-api03-" + s.chars(_B64URL, 93) + "AA",
    "openai": lambda s: "sk-proj-" + s.chars(_B64URL, 74) + "T3BlbkFJ" + s.chars(_B64URL, 74),
    "aws": lambda s: "AKIA" + s.chars(_B32, 16),
    "aws-secret": lambda s: s.chars(_B64, 40),
    "github": _github,
    "gitlab": lambda s: "glpat-" + s.chars(_B64URL, 20),
    "slack": lambda s: f"xoxb-{s.chars(_DIGITS, 13)}-{s.chars(_DIGITS, 13)}-{s.chars(_B62, 24)}",
    "stripe": lambda s: "sk_live_" + s.chars(_B62, 99),
    "generic": lambda s: s.chars(_HEX, 40),
}

KINDS: tuple[str, ...] = tuple(_FORMATS)


def canary_value(kind: str, env: str, seed: bytes) -> str:
    """The decoy for `env` in `kind`'s format; the same seed gives the same value."""
    make = _FORMATS.get(kind)
    if make is None:
        raise ValueError(f"unknown canary kind {kind!r}; use one of {', '.join(KINDS)}")
    material = b"\0".join([b"agentcage-canary", seed, env.encode(), kind.encode()])
    return make(_Stream(material))


def canary_env(config: CageConfig, seed: str | None = None) -> dict[str, str]:
    """The decoys to put in the agent's environment: env name -> value."""
    material = (seed or config.name).encode()
    return {
        c.env: c.value or canary_value(c.kind, c.env, material) for c in config.secrets.canaries
    }
