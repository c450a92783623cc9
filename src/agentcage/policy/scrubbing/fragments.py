"""Mask pieces of real values: what a server serving stored bytes in ranges hands back.

A host that stores a request body can serve it back a few bytes at a time
(`Range: bytes=0-9`, then `10-19`, ...). No piece holds the whole value, so the
value scrubber sees nothing, yet the agent can put the pieces together.
`FragmentMask` finds every `min_length`-byte window of each value and overwrites
every byte such a window covers with `*`, one for one: lengths, and so
`Content-Length` and `Content-Range`, stay valid. A run made of several windows
(a 10-byte piece is five overlapping 6-byte windows) is masked whole.

The cost is false positives: any 6 bytes of ordinary text that happen to equal 6
bytes of a value are masked too. The mask is therefore applied only where pieces
can come back: partial (206) responses from hosts a secret goes to, and every
response from hosts that may store a value (places `query`, `body`, `websocket`).
"""

from __future__ import annotations

from collections.abc import Iterable

from agentcage.policy.leaks.automaton import Automaton

MIN_FRAGMENT = 6
MASK = b"*"
# Up to this many windows (a few KiB of values) the search is built as a DFA: 6-byte
# patterns defeat the automaton's prefilter on text, and the DFA is ~3x faster.
_DFA_UP_TO = 4096


class FragmentMask:
    """Built once from real values; `mask` is one fast pass when no piece occurs."""

    def __init__(self, values: Iterable[bytes], min_length: int = MIN_FRAGMENT) -> None:
        windows = {
            value[start : start + min_length]
            for value in values
            for start in range(len(value) - min_length + 1)
        }
        self._automaton: Automaton[None] = Automaton(
            ((window, None) for window in windows), dfa=len(windows) <= _DFA_UP_TO
        )
        self.min_length = min_length

    def __bool__(self) -> bool:
        return len(self._automaton) > 0

    def mask(self, data: bytes) -> bytes:
        if not self or data not in self._automaton:
            return data
        spans: list[tuple[int, int]] = []
        for start, end, _labels in sorted(self._automaton.search(data)):
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
        out = bytearray(data)
        for start, end in spans:
            out[start:end] = MASK * (end - start)
        return bytes(out)

    def mask_text(self, text: str) -> str:
        raw = text.encode("utf-8", "surrogateescape")
        masked = self.mask(raw)
        return text if masked is raw else masked.decode("utf-8", "surrogateescape")
