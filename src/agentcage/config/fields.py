"""Constrained scalar types shared by every section of the config schema."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from agentcage.config.domain_names import normalize_domain, normalize_host_entry

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def _no_control_chars(value: str) -> str:
    # A newline in a value rendered into a quadlet or dnsmasq file would inject
    # directives; refuse it at the boundary.
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (newline, tab, NUL, ...)")
    return value


def parse_size(value: object) -> object:
    """Accept ints and strings like `10MiB`, `512k`, `1.5GB` as a byte count."""
    if isinstance(value, bool) or not isinstance(value, str):
        return value
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not a size; use bytes (10485760) or a unit (10MiB, 512KB)")
    number, unit = match.group(1), (match.group(2) or "").lower()
    binary = "i" in unit
    prefix = unit.rstrip("b").rstrip("i")
    factor = 1024 ** "kmgt".index(prefix) * 1024 if binary and prefix else _SIZE_FACTORS[prefix]
    return int(float(number) * factor)


Text = Annotated[str, AfterValidator(_no_control_chars)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
Domain = Annotated[str, BeforeValidator(normalize_domain)]
HostEntry = Annotated[str, BeforeValidator(normalize_host_entry)]
ByteSize = Annotated[int, BeforeValidator(parse_size), Field(ge=0)]
Seconds = Annotated[int, Field(ge=0, le=86400)]
