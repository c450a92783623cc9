"""Domain and host entries in their one spelling: for the schema, and for serving code
that must not import it (proxy/checked_config.py)."""

from __future__ import annotations

import ipaddress
import re

_IP_LIKE = re.compile(r"[0-9.]+(/[0-9]+)?|[0-9a-fA-F:]*:[0-9a-fA-F:.]*(/[0-9]+)?")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def normalize_domain(value: str) -> str:
    """Lower-case a domain entry; `*.x.com` and `.x.com` both mean `x.com` and below."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    name = value.strip().lower().rstrip(".")
    if name.startswith("*."):
        name = name[2:]
    elif name.startswith("."):
        name = name[1:]
    if not name:
        raise ValueError("must not be empty")
    if len(name) > 253:
        raise ValueError("is longer than 253 characters")
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"{value!r} is not a domain name; use names like 'api.example.com' "
            "(letters, digits and hyphens, no scheme, port or path)"
        )
    return name


def normalize_host_entry(value: str) -> str:
    """A domain name, an IP address or a CIDR block."""
    if isinstance(value, str) and _IP_LIKE.fullmatch(value.strip()):
        try:
            return str(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP address or CIDR block") from exc
    return normalize_domain(value)
