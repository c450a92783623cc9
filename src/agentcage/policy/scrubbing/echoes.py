"""What a response from one host goes through before the agent sees it.

Every response is scrubbed of real values (`ValueScrubber`, `scrubber.py`). A host
that a secret is injected into can also hand the value back in forms that
scrubbing whole values misses, so its responses get more:

- packed bodies: a body starting with a compression or archive signature
  (`packing.py`) is unpacked, bounded, scrubbed and packed again in the same
  format if anything was replaced; one that cannot be unpacked raises
  `DecodeError`, which the proxy answers with 502;
- pieces: partial (206) responses, and every response from a host a secret may
  be stored at (places `query`, `body`, `websocket`), have every 6-byte piece
  of those values masked (`fragments.py`);
- a partial response with a `Content-Encoding` is refused: its piece of a
  compressed stream cannot be decoded, so it cannot be checked.
"""

from __future__ import annotations

from typing import Protocol

from agentcage.policy.decoding import DEFAULT_LIMIT, DecodeError, parse_encodings
from agentcage.policy.scrubbing.fragments import FragmentMask
from agentcage.policy.scrubbing.packing import repack, sniff, undecided, unpack

UNPACK_LIMIT = DEFAULT_LIMIT
MAX_DEPTH = 3  # a zip of tarballs of gzip files: deeper nesting is refused


class ScrubsValues(Protocol):
    """What `EchoGuard` needs of the value scrubber (tests pass stand-ins)."""

    def scrub(self, data: bytes) -> bytes: ...

    def scrub_text(self, text: str) -> str: ...


class EchoGuard:
    """The response treatment for one host; built by `Policy.echo_guard`."""

    def __init__(
        self,
        values: ScrubsValues,
        *,
        injected: bool = False,
        partial: bool = False,
        mask: FragmentMask | None = None,
        limit: int = UNPACK_LIMIT,
    ) -> None:
        self._values = values
        self.injected = injected  # a secret is injected into this host: sniff bodies
        self._partial = partial
        self._mask = mask if mask else None
        self._limit = limit

    def refusal(self, content_encoding: str) -> str | None:
        """Why the response cannot be checked at all (answer 502), or None."""
        if self.injected and self._partial and parse_encodings(content_encoding):
            return (
                "a partial (206) response with Content-Encoding from a host secrets are "
                "injected into cannot be checked for pieces of a secret"
            )
        return None

    def undecided(self, head: bytes) -> bool:
        """Whether a stream must wait for more bytes before `packed` can answer."""
        return self.injected and undecided(head)

    def packed(self, head: bytes) -> bool:
        """Whether a body starting with `head` is unpacked (streams: buffered whole)."""
        return self.injected and sniff(head) is not None

    def scrub(self, data: bytes) -> bytes:
        """A whole body; `DecodeError` if it is packed and cannot be unpacked."""
        if not self.injected:
            return self._values.scrub(data)
        budget = [self._limit]
        return self._scrub(data, 0, budget)

    def scrub_part(self, data: bytes) -> bytes:
        """Part of a body (a stream chunk) or a body known not to be packed."""
        clean = self._values.scrub(data)
        return self._mask.mask(clean) if self._mask is not None else clean

    def scrub_text(self, text: str) -> str:
        clean = self._values.scrub_text(text)
        return self._mask.mask_text(clean) if self._mask is not None else clean

    def _scrub(self, data: bytes, depth: int, budget: list[int]) -> bytes:
        packing = sniff(data)
        if packing is None:
            return self.scrub_part(data)
        if depth >= MAX_DEPTH:
            raise DecodeError(f"the body is packed more than {MAX_DEPTH} layers deep")
        contents = unpack(data, packing, budget[0])
        budget[0] -= sum(map(len, contents))
        clean = [self._scrub(content, depth + 1, budget) for content in contents]
        if clean != contents:
            data = repack(data, packing, clean)
        # What lies outside the contents (a gzip file name, zip member names) is
        # scrubbed in place: the format may break, the value does not leave.
        return self.scrub_part(data)
