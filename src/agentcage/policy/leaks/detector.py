"""The leak detector: protected values in any spelling, layer or piece, anywhere.

One `LeakDetector` answers for requests and WebSocket frames (the `leaks`
inspector calls it). For each it builds the regions an agent controls (host,
path, headers, body or payload), peels encodings off with the `Unwrapper`, and
looks for every spelling of every protected value in one automaton pass.
Separately, short pieces go to the `SplitDetector`, which remembers per
destination what was already sent. A value sent to a host it is allowed to reach
(a placeholder or real key to its own provider) is not a leak; a canary is a leak
everywhere. DNS names are judged by the sidecar with `fingerprints.py`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from agentcage.policy.data_shapes import registrable_domain
from agentcage.policy.leaks.encodings import canonical
from agentcage.policy.leaks.junk_skipping import JunkSkippingSearch
from agentcage.policy.leaks.matcher import Match, SecretMatcher
from agentcage.policy.leaks.protected import Protected
from agentcage.policy.leaks.split import SplitDetector, WindowLimits
from agentcage.policy.leaks.textcodes import SEARCHED_BELOW
from agentcage.policy.leaks.unwrap import Limits, Unwrapper, View, Views
from agentcage.policy.runs import byte_table, long_runs
from agentcage.policy.types import Finding, Frame, Request, Severity, Verdict

NAME = "leaks"
_SEVERITY_RANK: dict[Severity, int] = {"info": 0, "warning": 1, "high": 2, "critical": 3}
# What ends a token: a run between these, at least N long, is a piece. (Was the regex
# `[^&=;,:"'{}\[\]\s<>()]{N,}`, whose `findall` is these runs; the accelerator's one
# pass finds them in a third of its time, 5 us in place of 17 on a 1 KiB body.)
_DELIMITERS = b"&=;,:\"'{}[]<>() \t\n\r\x0b\x0c"
_TOKEN_TABLE = byte_table(bytes(b for b in range(256) if b not in _DELIMITERS))
_SMALL_BODY = 1024  # bodies tokenised into split pieces
_BODY_PIECE = 6  # shortest token of a body taken as a piece
_SEARCH_ALONE = 64 * 1024  # canonical views at least this long are not joined
_HEX_PIECE = re.compile(rb"(?:[0-9A-Fa-f]{2}){4,}")
_B64_PIECE = re.compile(rb"[A-Za-z0-9+/_-]{8,}={0,2}")
_B32_PIECE = re.compile(rb"[A-Za-z2-7]{8,}={0,6}")


@dataclass(frozen=True, slots=True)
class LeakSettings:
    min_length: int = 8
    unwrap: Limits = field(default_factory=Limits)
    window: WindowLimits = field(default_factory=WindowLimits)


class LeakDetector:
    """Stateful only in the split window; everything else is built once."""

    name = NAME

    def __init__(
        self,
        secrets: Sequence[Protected],
        settings: LeakSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or LeakSettings()
        self.secrets = tuple(secrets)
        self.matcher = SecretMatcher(self.secrets, self.settings.min_length)
        self.junk_skipping = JunkSkippingSearch(self.matcher.secrets)
        self.unwrapper = Unwrapper(self.settings.unwrap)
        # Placeholders are not worth assembling from pieces: only values are.
        valuable = [s for s in self.matcher.secrets if s.role != "placeholder"]
        self.split = SplitDetector(valuable, self.settings.window)
        self._clock = clock
        self._token = max(self.settings.window.min_piece, 1)
        # Bodies are full of short words: their tokens count from six characters.
        self._body_token = max(self.settings.window.min_piece, _BODY_PIECE)

    def views(self, data: bytes, content_encoding: str = "") -> Views:
        """Decoded views of `data`, for any scanner that wants to look beneath encodings."""
        return self.unwrapper.views(data, content_encoding)

    def request_views(self, request: Request, content_encoding: str | None = None) -> Views:
        """What an agent controls in `request`, each region with its decoded views.

        `content_encoding` overrides the header (pass "" for a body already decoded).
        """
        head = b"\0".join(
            [
                request.host.encode("utf-8", "replace"),
                request.path.encode("utf-8", "surrogateescape"),
                *(
                    part.encode("utf-8", "surrogateescape")
                    for header in request.headers
                    for part in header  # names are agent-chosen bytes too
                ),
            ]
        )
        encoding = request.content_encoding if content_encoding is None else content_encoding
        views = self.unwrapper.views(head) + self.unwrapper.views(request.body, encoding)
        if len(request.headers) > 1:
            # The values end to end, searched as they are (decoding them all again
            # would cost a third of a small request's time): a value cut into pieces
            # over many headers, however short, in the order they were sent.
            values = (value.encode("utf-8", "surrogateescape") for _, value in request.headers)
            views.append(View(b"".join(values), ("headers-joined",)))
        return views

    def frame_views(self, frame: Frame) -> Views:
        return self.unwrapper.views(frame.payload)

    def check_request(self, request: Request, views: Views | None = None) -> list[Finding]:
        views = self.request_views(request) if views is None else views
        matches = self._scan(views)
        pieces = self._pieces(_request_pieces(request, self._token, self._body_token))
        destination = registrable_domain(request.host)
        matches += self.split.observe(destination, pieces, self._clock(), request.host)
        return self._findings(matches, request.host) or _exhausted(views, request.host)

    def check_frame(self, frame: Frame, views: Views | None = None) -> list[Finding]:
        if not frame.from_client:
            return []
        views = self.frame_views(frame) if views is None else views
        matches = self._scan(views)
        pieces = self._pieces(_body_pieces(frame.payload, self._body_token))
        matches += self.split.observe(
            registrable_domain(frame.host), pieces, self._clock(), frame.host
        )
        return self._findings(matches, frame.host) or _exhausted(views, frame.host)

    def _pieces(self, candidates: Iterable[bytes]) -> list[bytes]:
        """Distinct pieces long enough to matter, with their decodings, and the
        shorter ones (which only extend chains), each bounded in number."""
        if not self.split.active:
            return []
        limit = self.settings.window.max_pieces_per_message
        shortest = self.settings.window.min_piece
        distinct: dict[bytes, None] = {}
        short: dict[bytes, None] = {}
        for piece in candidates:
            held = distinct if len(piece) >= shortest else short
            if piece and piece not in held and len(held) < limit:
                held[piece] = None
                if len(distinct) >= limit:
                    break
        return [*_with_decoded(distinct, shortest), *short]

    def _scan(self, views: Iterable[View]) -> list[Match]:
        # Small views are searched together (one call); a large one alone, rather than
        # copied once more into a joined haystack. NUL never occurs in a canonical
        # spelling, so no match spans two views either way.
        small: list[bytes] = []
        own: list[bytes] = []
        matches: list[Match] = []
        for view in views:
            if not view.layers and len(view.data) < SEARCHED_BELOW:
                own.append(view.data)
            canon = canonical(view.data)
            if len(canon) < _SEARCH_ALONE:
                small.append(canon)
            else:
                matches += self.matcher.scan_canonical(canon)
        if small:
            matches += self.matcher.scan_canonical(b"\0".join(small))
        # Junk skipped only in the message's own small regions, like the dejunked
        # views: a guess, not a decoding.
        if own:
            matches += self.junk_skipping.scan(own)
        return matches

    def _findings(self, matches: list[Match], host: str) -> list[Finding]:
        leaked: dict[str, Match] = {}
        for match in matches:
            if not match.secret.allowed_to(host):
                leaked.setdefault(match.secret.rule, match)
        if not leaked:
            return []
        severity = max((m.secret.severity for m in leaked.values()), key=_SEVERITY_RANK.__getitem__)
        described = ", ".join(
            f"{m.secret.role} {m.secret.name} ({m.technique})" for m in leaked.values()
        )
        return [
            Finding(
                inspector=NAME,
                verdict=Verdict.BLOCK,
                reason=f"{described} sent to {host}",
                rules=tuple(sorted(leaked)),
                severity=severity,
            )
        ]


def _exhausted(views: Views, host: str) -> list[Finding]:
    # Fail closed: what was not decoded was not inspected.
    if views.malformed:
        reason = f"{views.malformed}: not inspected, not sent to {host}"
        return [Finding(NAME, Verdict.BLOCK, reason, ("malformed-pack",), "warning")]
    if not views.exhausted:
        return []
    reason = f"payload to {host} has more encoded layers than the leak inspector decodes"
    if views.unread:
        reason = (
            f"payload to {host} is larger than the leak inspector reads ({views.unread}); "
            "raise secrets.decode_budget to read it"
        )
    return [Finding(NAME, Verdict.BLOCK, reason, ("undecoded-layers",), "warning")]


def _request_pieces(request: Request, token: int, body_token: int) -> Iterator[bytes]:
    labels = request.host.lower().split(".")
    for label in labels[:-2]:
        yield label.encode("ascii", "replace")
    path, _, query = request.path.partition("?")
    for segment in path.split("/"):
        if segment:
            yield urllib.parse.unquote_to_bytes(segment)
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        yield from _token_pieces(key.encode("utf-8", "surrogateescape"), token)
        yield from _token_pieces(value.encode("utf-8", "surrogateescape"), token)
    for name, value in request.headers:
        if name.lower() == "cookie":
            for pair in value.split(";"):
                yield from _token_pieces(pair.partition("=")[2].strip().encode(), token)
        elif len(value) <= 256:
            yield value.encode("utf-8", "surrogateescape")
    yield from _body_pieces(request.body, body_token)


def _body_pieces(body: bytes, token: int) -> Iterator[bytes]:
    if not body or len(body) > _SMALL_BODY:
        return
    yield from _token_pieces(body, token)


def _token_pieces(data: bytes, shortest: int) -> Iterator[bytes]:
    """`data`, then each run of it between delimiters at least `shortest` long."""
    yield data
    for start, end in long_runs(data, _TOKEN_TABLE, shortest):
        yield data[start:end]


def _with_decoded(pieces: Iterable[bytes], shortest: int) -> Iterator[bytes]:
    """Each piece, and its decoding when the whole piece is hex, base64 or base32.

    A decoding shorter than `shortest` could not be recorded, so ordinary words
    (too short to decode to that much) are not decoded at all.
    """
    for piece in pieces:
        yield piece
        size = len(piece)
        if size >= 2 * shortest and _HEX_PIECE.fullmatch(piece):
            yield bytes.fromhex(piece.decode())
        if 3 * size >= 4 * shortest and _B64_PIECE.fullmatch(piece):
            body = piece.rstrip(b"=").replace(b"-", b"+").replace(b"_", b"/")
            if len(body) % 4 != 1:
                yield base64.b64decode(body + b"=" * (-len(body) % 4))
        if 5 * size >= 8 * shortest and _B32_PIECE.fullmatch(piece):
            body = piece.rstrip(b"=").upper()
            if len(body) % 8 in (0, 2, 4, 5, 7):
                with contextlib.suppress(binascii.Error):
                    yield base64.b32decode(body + b"=" * (-len(body) % 8))
