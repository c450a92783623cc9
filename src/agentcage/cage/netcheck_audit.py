"""The proxy's audit lines behind `cage verify`'s refused-flow checks (netcheck.py).

A refused flow counts only with the deny listener's `kind: flow` line for it
(docs/transparent.md). netcheck reads the proxy's log itself where it runs in the proxy's
mount namespace (container mode, verify_network.py); a microVM's host reads it from the
guest (vm_control.py). Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import time

POLL = 0.02
FLOW_LINE_WAIT = 2.0  # for a refused flow's line, once its check passed
# The deny listener's line budget: 20 lines per client in 10 s, then one summary line
# within a second of the window's end (proxy/deny.py, audit/throttle.py).
BUDGET_WAIT = 12.0

# The checks whose flows the proxy's deny listener must audit (`kind: flow`, host the
# proxy's address): `cage verify` looks for each line in the proxy's log.
FLOWS = {
    "raw TCP to port 22 refused": ("tcp", 22),
    "raw TCP to port 5432 refused": ("tcp", 5432),
    "UDP to port 123 unanswered": ("udp", 123),
}
UDP_FLOW = "UDP to port 123 unanswered"


def audit_records(text: str) -> list[dict[str, object]]:
    """The JSON objects among an audit log's complete lines (a last one without its
    newline is still being written)."""
    records = []
    for raw in text.split("\n")[:-1]:
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def audited(
    check: str, detail: str, lines: list[dict[str, object]], proxy: str
) -> tuple[bool, str]:
    """Whether a passed FLOWS check's flow has its `kind: flow` line among `lines` (the
    proxy's audit lines written since the checks began)."""
    protocol, port = FLOWS[check]
    for line in lines:
        if line.get("kind") == "flow" and (
            line.get("scheme"),
            line.get("host"),
            line.get("port"),
        ) == (protocol, proxy, port):
            return True, f"{detail}; audited"
    return False, (
        f"{detail}, but the proxy wrote no `flow` line for it: the cage's default "
        "deny is not set up (docs/transparent.md)"
    )


class AppendedLines:
    """The lines appended to an audit log since this object was made (none without a log)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        if path is not None:
            # A log not there yet counts from its start. One that cannot be read gives no
            # lines: each refused flow then fails for want of its line (fail closed).
            with contextlib.suppress(OSError):
                self.offset = os.path.getsize(path)

    def new_records(self) -> list[dict[str, object]]:
        """The complete lines appended since the last call (a last one being written waits)."""
        if self.path is None:
            return []
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return []
        self.offset += len(chunk)
        complete, _, self.partial = (self.partial + chunk).rpartition(b"\n")
        return audit_records(complete.decode(errors="replace") + "\n")

    def has_flow(self, protocol: str, host: str, port: int) -> bool:
        return any(
            line.get("kind") == "flow"
            and (line.get("scheme"), line.get("host"), line.get("port")) == (protocol, host, port)
            for line in self.new_records()
        )


def with_flow_lines(
    outcomes: list[tuple[str, bool, str]],
    log: AppendedLines,
    hosts: dict[str, str],
    client: str,
) -> list[tuple[str, bool, str]]:
    """Each passed FLOWS check (name, passed, detail) holds only with its `flow` line (to
    `hosts[name]`) among those the proxy wrote since the checks began (`audited`).

    The listener writes a line before it resets, so the lines are there already;
    FLOW_LINE_WAIT covers one still on its way. `client` (this namespace's address, the
    agent's) may have gone over the listener's line budget (an agent that scans): then
    the flows are counted in the summary line at the window's end, and a check whose own
    result shows the listener took its flow (a reset after connecting, a datagram with no
    answer) holds with that line instead, and says so.
    """
    start = time.monotonic()
    lines: list[dict[str, object]] = []
    while True:
        lines += log.new_records()
        judged = [_judged(check, lines, hosts) for check in outcomes]
        missing = [
            name
            for (name, was, _), (_, now, _) in zip(outcomes, judged, strict=True)
            if was and not now
        ]
        if not missing:
            return judged
        waited = time.monotonic() - start
        if waited > FLOW_LINE_WAIT and (summary := _suppressed(lines, client)):
            return [_counted(check, summary) if check[0] in missing else check for check in judged]
        if waited > BUDGET_WAIT:
            return judged
        time.sleep(POLL)


def _judged(
    check: tuple[str, bool, str], lines: list[dict[str, object]], hosts: dict[str, str]
) -> tuple[str, bool, str]:
    name, passed, detail = check
    if name not in FLOWS or not passed:
        return check
    return (name, *audited(name, detail, lines, hosts[name]))


def _suppressed(lines: list[dict[str, object]], client: str) -> int:
    """How many of `client`'s refused flows the listener's summary lines counted unwritten."""
    count = 0
    for line in lines:
        extra = line.get("extra")
        if line.get("kind") == "flow" and line.get("client") == client and isinstance(extra, dict):
            count += int(extra.get("suppressed", 0))
    return count


def _counted(check: tuple[str, bool, str], suppressed: int) -> tuple[str, bool, str]:
    name, _, detail = check
    before = detail.split(", but the proxy wrote no", 1)[0]
    took = FLOWS[name][0] == "udp" or "reset by the proxy's deny listener" in before
    if not took:
        return check
    return (
        name,
        True,
        (
            f"{before}; over the proxy's line budget for this address: counted in its summary "
            f"line ({suppressed} flows suppressed)"
        ),
    )
