"""A credential format sent in pieces: over headers, query values, labels, requests.

The pattern scanner sees one place at a time, so a key cut into pieces (two
headers, five-character query values to one site, labels of several names,
several WebSocket messages) matches nowhere. `FormatAssembler` keeps the recent
short fragments an agent sent, in arrival order, in two bounded windows: one per
destination (registrable domain) and one for the whole cage, and scans each as
one stream from every fragment holding a format's anchor. A format that matches
across fragments, and not within one, was sent in pieces: the request that
completes it is blocked, and the finding names the flows its pieces came in.

Fragments: each host label below the registrable domain, path segment, query
value, cookie value and short header value (not the standard headers), and the
string values (or tokens) of a small body or WebSocket message; of each, its
longest token. Numbers of up to ten digits (counters, ids, times), plain
lower-case words (path parts, labels, prose) and fragments under four characters
are dropped, so `?i=3&d=PIECE` contributes its piece, and so is what the
destination's window already holds (its host's labels on every request). The
first piece may hold no more of the key than the longest other piece (plus four
characters): a key is cut into pieces of about one size, and a key sent whole
but invalid or cut short is no start. After a block the pieces are forgotten: the request
that completed them never left, and a later fragment must not "complete" the same
prefix again.
"""

from __future__ import annotations

import binascii
import bisect
import itertools
import json
import re
import urllib.parse
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import ahocorasick_rs

from agentcage.policy.data_shapes import below_registrable, registrable_domain
from agentcage.policy.formats.pattern import CredentialPattern
from agentcage.policy.formats.scanner import PatternScanner
from agentcage.policy.types import Frame, Request, Verdict

Allowed = Callable[[CredentialPattern], bool]  # may this format go where the request goes?
_TOKEN = re.compile(rb"[A-Za-z0-9_\-+/=.~]+")
_SMALL = 1024  # bodies and messages up to this size give fragments
_SHORT_HEADER = 256
_MIN_FRAGMENT = 4
_SLACK = 4  # characters the first piece may hold beyond the longest other
_TRIGGER = 4  # leading characters of an anchor that arm the windows
_MAX_NUMBER = 10  # digits of a number that is data of its own (an index, a timestamp)
_MAX_FRAGMENT = 128  # longer pieces are scanned where they are, not assembled
_STREAM = 2048  # bytes of a window scanned as one stream
_STARTS = 8  # anchored fragments a stream is scanned from, newest first
# Headers whose values are the client's, not the agent's data.
_STANDARD = frozenset(
    (
        "host", "user-agent", "accept", "accept-encoding", "accept-language", "connection",
        "content-type", "content-length", "cache-control", "pragma", "origin", "referer", "te",
        "upgrade", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
        "sec-websocket-protocol", "if-none-match", "if-modified-since", "range",
        "transfer-encoding",
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AssemblyLimits:
    per_destination: int = 64  # fragments kept per registrable domain
    per_cage: int = 128  # fragments kept across every destination
    max_age: float = 600.0  # seconds a fragment stays
    max_destinations: int = 1024


@dataclass(frozen=True, slots=True)
class _Fragment:
    when: float
    flow: str
    text: bytes
    fresh: bool = False  # sent by the request being judged


@dataclass(frozen=True, slots=True)
class Assembled:
    pattern: CredentialPattern
    flows: tuple[str, ...]  # the flows the pieces came in, oldest first
    pieces: int


class FormatAssembler:
    """Two bounded windows of fragments; stateful, one per cage."""

    def __init__(
        self, scanner: PatternScanner, limits: AssemblyLimits, clock: Callable[[], float]
    ) -> None:
        self.scanner = scanner
        self.limits = limits
        self._clock = clock
        self._patterns = [p for p in scanner.patterns if distinctive_token(p)]
        plain = {a for p in self._patterns for a in p.anchors if _distinctive(a)}
        # A key base64-encoded before it was cut starts with its anchor's base64 (the
        # characters the anchor alone determines: `ghp_` -> `Z2hwX`), in either alphabet.
        self._encoded = {b64_start(a, safe): a for a in plain for safe in (False, True)}
        anchors = sorted(plain | set(self._encoded))
        self._anchor_list = anchors
        self._anchors = ahocorasick_rs.BytesAhoCorasick(anchors) if anchors else None
        # Each anchor's formats in catalogue order, from one pass over the formats (a
        # search of every format for every anchor took 2 to 3 ms of the proxy's start).
        holders: dict[bytes, dict[int, None]] = {}
        for i, p in enumerate(self._patterns):
            for a in p.anchors:
                holders.setdefault(a, {})[i] = None
        self._by_anchor = [tuple(holders.get(self._encoded.get(a, a), ())) for a in anchors]
        # The first four characters of each anchor: a fragment holding one may start a
        # key, and until one comes (or after it ages out) nothing needs remembering.
        triggers = sorted({a[:_TRIGGER] for a in anchors})
        self._triggers = ahocorasick_rs.BytesAhoCorasick(triggers) if triggers else None
        self._armed: dict[str, float] = {}  # window ("" for the cage's) -> last trigger time
        self._sites: OrderedDict[str, deque[_Fragment]] = OrderedDict()
        self._cage: deque[_Fragment] = deque()

    def observe_request(self, request: Request, allowed: Allowed) -> Assembled | None:
        """Record the fragments of `request`; the format they complete, if any (then
        they are not recorded: the request is to be blocked)."""
        # The text fragments come from, to look for a trigger in before cutting it up.
        texts = [request.path, *(v for k, v in request.headers if k.lower() not in _STANDARD)]
        raw = "\0".join(texts).encode("utf-8", "surrogateescape")
        if len(request.body) <= _SMALL:
            raw += request.body
        return self._observe(
            request.host, request.flow_id, raw, lambda: request_fragments(request), allowed
        )

    def observe_frame(self, frame: Frame, allowed: Allowed) -> Assembled | None:
        return self._observe(
            frame.host,
            frame.flow_id,
            frame.payload,
            lambda: message_fragments(frame.payload),
            allowed,
        )

    def _observe(
        self,
        host: str,
        flow: str,
        raw: bytes,
        texts: Callable[[], Iterable[bytes]],
        allowed: Allowed,
    ) -> Assembled | None:
        if self._anchors is None or self._triggers is None:
            return None
        now = self._clock()
        domain = registrable_domain(host)
        horizon = now - self.limits.max_age
        # Most requests neither hold the start of a key nor follow one: nothing to do.
        labels = ".".join(below_registrable(host)).encode("ascii", "replace")
        if self._triggers.find_matches_as_indexes(raw + b"\0" + labels):
            self._armed[domain] = self._armed[""] = now
        elif self._armed.get(domain, -1.0) < horizon and self._armed.get("", -1.0) < horizon:
            return None
        fresh = [_Fragment(now, flow, t, fresh=True) for t in texts() if _worth(t)]
        if not fresh:
            return None
        site = self._window(domain, now)
        cage = _aged(self._cage, now - self.limits.max_age)
        # What every request repeats (the host's labels, a client header) is no piece.
        seen = {f.text for f in site}
        fresh = [f for f in dict((f.text, f) for f in fresh).values() if f.text not in seen]
        if not fresh:
            return None
        for window in (site, cage):
            found = self._scan([*window, *fresh], allowed)
            if found is not None:
                # The request is blocked, so its fragments never left; the pieces that
                # did are forgotten, lest any later fragment "complete" them again.
                for held in (site, cage):
                    kept = [f for f in held if f.text not in found[1]]
                    held.clear()
                    held.extend(kept)
                return found[0]
        kept = [_Fragment(f.when, f.flow, f.text) for f in fresh]
        for window, size in ((site, self.limits.per_destination), (cage, self.limits.per_cage)):
            window.extend(kept)
            while len(window) > size:
                window.popleft()
        return None

    def _starts(
        self, fragments: list[_Fragment]
    ) -> tuple[dict[int, set[int]], dict[int, tuple[int, set[int]]]]:
        """Fragment index -> formats whose anchor begins in it; and fragment index ->
        (where in it, formats) for anchors spelled in base64. Looked for in the
        joined stream, so an anchor cut between two short pieces (`sk-a`, `nt-...`)
        counts; a format the fragment matches alone was sent whole, not in pieces."""
        assert self._anchors is not None
        ends = list(itertools.accumulate(len(f.text) for f in fragments))
        joined = b"".join(f.text for f in fragments)
        starts: dict[int, set[int]] = {}
        encoded: dict[int, tuple[int, set[int]]] = {}
        for anchor, at, _end in self._anchors.find_matches_as_indexes(joined, overlapping=True):
            index = bisect.bisect_right(ends, at)
            if self._anchor_list[anchor] in self._encoded:
                offset = at - (ends[index - 1] if index else 0)
                encoded.setdefault(index, (offset, set()))[1].update(self._by_anchor[anchor])
                continue
            starts.setdefault(index, set()).update(self._by_anchor[anchor])
        for index, candidates in starts.items():
            text = fragments[index].text
            candidates.difference_update(
                [i for i in candidates if self._patterns[i].regex.search(text)]
            )
        return {index: found for index, found in starts.items() if found}, encoded

    def _scan(
        self, fragments: list[_Fragment], allowed: Allowed
    ) -> tuple[Assembled, set[bytes]] | None:
        """A format that begins in one fragment and ends exactly where a fresh fragment
        ends: pieces cut from one key, the judged request sending the last."""
        starts, encoded = self._starts(fragments)
        for start in sorted(starts.keys() | encoded.keys())[-_STARTS:][::-1]:
            head = fragments[start]
            pieces = [head]
            size = len(head.text)
            for fragment in fragments[start + 1 :]:
                pieces.append(fragment)
                size += len(fragment.text)
                if size > _STREAM:
                    break
                if not fragment.fresh:
                    continue
                found = None
                if start in starts:
                    found = self._completed(starts[start], pieces, allowed)
                if found is None and start in encoded:
                    found = self._decoded(*encoded[start], pieces, allowed)
                if found is not None:
                    return found
        return None

    def _decoded(
        self, offset: int, candidates: set[int], pieces: list[_Fragment], allowed: Allowed
    ) -> tuple[Assembled, set[bytes]] | None:
        """`_completed` for a key base64-encoded, then cut: the pieces from the
        anchor's base64 on decode to a format ending where the last piece ends."""
        if len(pieces[0].text) - offset > max(len(p.text) for p in pieces[1:]) + _SLACK:
            return None  # the first piece holds more than any other: no cut key
        stream = b"".join(piece.text for piece in pieces)[offset:]
        decoded = b64_decoded(stream)
        for index in sorted(candidates):
            pattern = self._patterns[index]
            if allowed(pattern) or not any(
                m.start() == 0 and m.end() == len(decoded) for m in pattern.regex.finditer(decoded)
            ):
                continue
            if pattern in self.scanner.matching(decoded):
                flows = tuple(dict.fromkeys(piece.flow for piece in pieces))
                return Assembled(pattern, flows, len(pieces)), {p.text for p in pieces}
        return None

    def _completed(
        self, candidates: set[int], pieces: list[_Fragment], allowed: Allowed
    ) -> tuple[Assembled, set[bytes]] | None:
        stream = b"".join(piece.text for piece in pieces)
        head = len(pieces[0].text)
        # A key is cut into pieces of about one size: the first holds no more of it than
        # the longest other. (An invalid or truncated key sent whole is no start.)
        longest = max(len(piece.text) for piece in pieces[1:]) + _SLACK
        for index in sorted(candidates):
            pattern = self._patterns[index]
            if allowed(pattern) or not any(
                m.start() < head and m.end() == len(stream) and head - m.start() <= longest
                for m in pattern.regex.finditer(stream)
            ):
                continue
            # The scanner judges whether the match is a real key (not an example value).
            if pattern in self.scanner.matching(stream):
                flows = tuple(dict.fromkeys(piece.flow for piece in pieces))
                return Assembled(pattern, flows, len(pieces)), {p.text for p in pieces}
        return None

    def _window(self, site: str, now: float) -> deque[_Fragment]:
        window = self._sites.pop(site, None)
        window = deque() if window is None else _aged(window, now - self.limits.max_age)
        self._sites[site] = window
        while len(self._sites) > self.limits.max_destinations:
            gone, _ = self._sites.popitem(last=False)
            self._armed.pop(gone, None)
        return window


def distinctive_token(pattern: CredentialPattern) -> bool:
    """Formats that pieces of other data cannot make by chance, so worth assembling
    from pieces (and looked for in the leak inspector's guesses): blocked tokens that
    start with a distinctive anchor.

    Not formats found by a name next to a value (`anywhere`: env lines, key files)
    or by shape (cards, IBANs, seeds), which pieces of other data would make by
    chance; not anchors that are plain words (`pat`, `live`) or have no letter."""
    return (
        pattern.verdict is Verdict.BLOCK
        and not pattern.anywhere
        and pattern.shape is None
        and any(_distinctive(a) for a in pattern.anchors)
    )


def _distinctive(anchor: bytes) -> bool:
    letters = sum(chr(c).isalpha() for c in anchor)
    return len(anchor) >= 3 and letters > 0 and (len(anchor) >= 5 or letters < len(anchor))


_URLSAFE = bytes.maketrans(b"-_", b"+/")


def b64_start(anchor: bytes, urlsafe: bool) -> bytes:
    """The base64 characters `anchor` alone determines, at the start of a stream."""
    spelled = binascii.b2a_base64(anchor, newline=False)[: len(anchor) * 8 // 6]
    return spelled.translate(bytes.maketrans(b"+/", b"-_")) if urlsafe else spelled


def b64_decoded(stream: bytes) -> bytes:
    """`stream` as base64 (either alphabet), its last partial group too; b"" if not."""
    body = stream.rstrip(b"=").translate(_URLSAFE)
    body = body[: len(body) - (len(body) % 4 == 1)]
    try:
        return binascii.a2b_base64(body + b"=" * (-len(body) % 4))
    except binascii.Error:
        return b""


def _aged(window: deque[_Fragment], horizon: float) -> deque[_Fragment]:
    while window and window[0].when < horizon:
        window.popleft()
    return window


def _worth(text: bytes) -> bool:
    if not _MIN_FRAGMENT <= len(text) <= _MAX_FRAGMENT:
        return False
    if text.isdigit():
        return len(text) > _MAX_NUMBER  # a counter, an id, a time
    return not (text.isalpha() and text.islower())  # a word: a path part, a label, prose


def _longest(value: bytes) -> bytes:
    tokens = _TOKEN.findall(value)
    return max(tokens, key=len) if tokens else b""


def request_fragments(request: Request) -> Iterator[bytes]:
    """The fragments of `request`, in the order a reader meets them."""
    for label in below_registrable(request.host):
        yield label.encode("ascii", "replace")
    path, _, query = request.path.partition("?")
    for segment in path.split("/"):
        yield _longest(urllib.parse.unquote_to_bytes(segment))
    for _key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        yield _longest(value.encode("utf-8", "surrogateescape"))
    for name, value in request.headers:
        lowered = name.lower()
        if lowered == "cookie":
            for pair in value.split(";"):
                yield _longest(pair.partition("=")[2].strip().encode())
        elif lowered not in _STANDARD and len(value) <= _SHORT_HEADER:
            yield _longest(value.encode("utf-8", "surrogateescape"))
    if request.body and len(request.body) <= _SMALL:
        yield from message_fragments(request.body)


def message_fragments(payload: bytes) -> Iterator[bytes]:
    """A small body or message: its JSON string values, or else its longest token."""
    if not payload or len(payload) > _SMALL:
        return
    try:
        strings = list(_strings(json.loads(payload)))
    except (ValueError, RecursionError):
        strings = []
    if strings:
        for text in strings:
            yield _longest(text.encode("utf-8", "surrogateescape"))
    else:
        yield _longest(payload)


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
