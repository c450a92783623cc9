"""Message hygiene: a request leaves only if every hop will parse it as we did.

mitmproxy relays header bytes as it received them, and an HTTP/2 request becomes
HTTP/1.1 upstream. A header value holding CR LF therefore splits one HTTP/2
request into two HTTP/1.1 requests (the second chosen by the agent, with the real
key injected into it); a bare CR, a NUL, a space in a header name or a body
framed two ways is read one way here and another way by some server or CDN
front. None of these has a legitimate use, so each is refused, never repaired:
RFC 9110 section 5.5 allows either, and a rewrite would forward something the
agent did not send.

The method is a closed set (the IANA HTTP Method Registry): an arbitrary method
token is bytes the agent chooses that no inspector reads.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

# RFC 9110 section 5.6.2.
TCHAR = frozenset((string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~").encode())
# Field values: visible characters, space, tab and obs-text (RFC 9110 section 5.5).
_CONTROL = frozenset(range(0x20)) - {0x09} | {0x7F}
# IANA "Hypertext Transfer Protocol (HTTP) Method Registry"; CONNECT is handled
# before a request reaches the gate, and PRI is HTTP/2's preface, not a method.
REGISTERED_METHODS = frozenset(
    {
        "ACL",
        "BASELINE-CONTROL",
        "BIND",
        "CHECKIN",
        "CHECKOUT",
        "COPY",
        "DELETE",
        "GET",
        "HEAD",
        "LABEL",
        "LINK",
        "LOCK",
        "MERGE",
        "MKACTIVITY",
        "MKCALENDAR",
        "MKCOL",
        "MKREDIRECTREF",
        "MKWORKSPACE",
        "MOVE",
        "OPTIONS",
        "ORDERPATCH",
        "PATCH",
        "POST",
        "PROPFIND",
        "PROPPATCH",
        "PUT",
        "QUERY",
        "REBIND",
        "REPORT",
        "SEARCH",
        "TRACE",
        "UNBIND",
        "UNCHECKOUT",
        "UNLINK",
        "UNLOCK",
        "UPDATE",
        "UPDATEREDIRECTREF",
        "VERSION-CONTROL",
    }
)
# RFC 9113 section 8.2.2: meaningful only on one HTTP/1.1 connection; in an HTTP/2
# request they would be replayed into the HTTP/1.1 request upstream.
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


class Malformed(Exception):
    """The request is not one every hop would read alike; the message says what and why."""


def check_method(method: str) -> None:
    if method in REGISTERED_METHODS:
        return
    if method.upper() in REGISTERED_METHODS:
        raise Malformed(
            f"method {method!r} is not {method.upper()!r}: methods are case-sensitive "
            "and only the registered spelling is forwarded"
        )
    # The token itself is not quoted: it is agent-chosen bytes and may be a secret.
    raise Malformed(
        f"the request method ({len(method)} bytes) is not a registered HTTP method; "
        "only methods in the IANA HTTP Method Registry leave the cage"
    )


def check_fields(fields: Iterable[tuple[bytes, bytes]], *, http2: bool) -> None:
    """Raise `Malformed` for the first header that is not a clean RFC 9110/9113 field."""
    lengths: list[bytes] = []
    encodings: list[bytes] = []
    for index, (name, value) in enumerate(fields, 1):
        if not name or not TCHAR.issuperset(name):
            raise Malformed(
                f"header #{index} has a name that is not an HTTP token "
                "(letters, digits and !#$%&'*+-.^_`|~ only; no spaces, colons or controls)"
            )
        if not _CONTROL.isdisjoint(value):
            raise Malformed(
                f"header {_name(name)} holds a control character (CR, LF, NUL or another); "
                "a value with line breaks would be read as more headers or another request "
                "upstream"
            )
        lowered = name.lower()
        if http2:
            if name != lowered:
                raise Malformed(f"HTTP/2 header {_name(name)} is not lower-case")
            if lowered in CONNECTION_SPECIFIC or (
                lowered == b"te" and value.strip().lower() != b"trailers"
            ):
                raise Malformed(
                    f"HTTP/2 request carries the connection-specific header {_name(name)}"
                )
        if lowered == b"content-length":
            lengths.append(value.strip())
        elif lowered == b"transfer-encoding":
            encodings.append(value.strip().lower())
    _check_framing(lengths, encodings)


def _check_framing(lengths: list[bytes], encodings: list[bytes]) -> None:
    # One framing, stated once: what a server reads must be what we inspected.
    if encodings and lengths:
        raise Malformed("request has both Content-Length and Transfer-Encoding")
    if encodings and encodings != [b"chunked"]:
        raise Malformed("Transfer-Encoding other than a single `chunked` is not forwarded")
    if len(lengths) > 1:
        raise Malformed("request has more than one Content-Length")
    if lengths and not lengths[0].isdigit():
        raise Malformed("Content-Length is not a number")


def check_target(method: str, path: str) -> None:
    """The request target must be origin-form: its authority is the connection's alone."""
    # `//a/b` is a path too (sloppy URL joining makes them); no server reads it as a host.
    if path.startswith("/"):
        return
    if path == "*" and method == "OPTIONS":
        return
    raise Malformed(
        "the request target must be a path starting with a single `/` (origin form); "
        "the host goes in Host or :authority and must match the connection"
    )


def _name(name: bytes) -> str:
    return repr(name.decode("ascii", "replace")[:64])
