"""`agentcage dns run`: dnsmasq supervised, its log audited, tunnels blocked live.

Fail closed throughout: if dnsmasq dies, the config cannot be re-read, the audit log
cannot be written or too many zones need blocking, dnsmasq is stopped and `run`
raises `DnsError`, so the cage has no DNS rather than unchecked DNS.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TextIO

from agentcage.config import load_config
from agentcage.config.schema import CageConfig
from agentcage.dns.blocklog import BlockedZonesFile
from agentcage.dns.files import RuntimeDir, check, dnsmasq_binary, run_as_for_root
from agentcage.dns.judge import TUNNEL_INSPECTOR, QueryJudge
from agentcage.dns.process import Dnsmasq
from agentcage.dns.querylog import LogLine, Query, QueryAssembler, parse_line
from agentcage.dns.render import Listen, Rendered, RunAs, render
from agentcage.errors import DnsError
from agentcage.policy.audit import AuditRecord

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_HANDLED = (*_STOP_SIGNALS, signal.SIGHUP)


class AuditSink:
    """Writes the audit lines `logging.dns_queries` asks for; tunnel findings always.

    With a path, lines are appended to that file, reopened on `reopen()` (SIGHUP) so
    logrotate can move it away; without one they go to stdout.
    """

    def __init__(self, path: Path | None, which: str) -> None:
        self._path = path
        self._stream: TextIO = sys.stdout
        self.which = which
        self.reopen()

    def reopen(self) -> None:
        if self._path is None:
            return
        try:
            stream = self._path.open("a", encoding="utf-8")
        except OSError as exc:
            raise DnsError(
                f"cannot open the DNS audit log {self._path}: {exc.strerror}",
                hint="check that its directory exists and is writable",
            ) from exc
        self.close()
        self._stream = stream

    def close(self) -> None:
        if self._stream is not sys.stdout:
            self._stream.close()

    def wants(self, record: AuditRecord) -> bool:
        if record.inspector == TUNNEL_INSPECTOR:
            return True
        return self.which == "all" or (self.which == "blocked" and record.verdict != "allow")

    def emit(self, record: AuditRecord) -> None:
        if not self.wants(record):
            return
        try:
            self._stream.write(record.to_json() + "\n")
            self._stream.flush()
        except (OSError, ValueError) as exc:
            raise DnsError(f"cannot write the DNS audit log: {exc}") from exc


@contextlib.contextmanager
def _caught_signals() -> Iterator[list[int]]:
    pending: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in _HANDLED}
    try:
        yield pending
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Sidecar:
    def __init__(
        self,
        config_path: Path,
        listen: Listen,
        audit_log: Path | None = None,
        *,
        blocked_zones: Path | None = None,
        log: TextIO = sys.stderr,
    ) -> None:
        self._config_path = config_path
        self._listen = listen
        self._log = log
        self._config = load_config(config_path)
        self._blocklog = BlockedZonesFile(blocked_zones) if blocked_zones else None
        kept = self._blocklog.load() if self._blocklog is not None else set()
        self._audit = AuditSink(audit_log, self._config.logging.dns_queries)
        self._judge = QueryJudge(self._config, kept)
        self._assembler = QueryAssembler()
        self._binary = dnsmasq_binary()
        self._run_as: RunAs | None = run_as_for_root()
        self._dir: RuntimeDir | None = None
        self._dnsmasq: Dnsmasq | None = None
        self._main_text = ""

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (returns 0); raise `DnsError` on any failure."""
        with _caught_signals() as pending:
            self._dir = RuntimeDir(self._run_as)
            try:
                self._start(self._rendered(self._config))
                if self._judge.blocked_zones:
                    zones = ", ".join(sorted(self._judge.blocked_zones))
                    self._note(f"still blocking zones after DNS tunnel detection: {zones}")
                self._note(f"listening on {self._listen}")
                return self._serve(pending)
            finally:
                self._shutdown()
                self._dir.remove()
                self._audit.close()

    def _serve(self, pending: list[int]) -> int:
        while True:
            dnsmasq = self._running()
            self._handle(dnsmasq.read_lines(0.1))
            self._emit(self._assembler.expire(time.monotonic()))
            if dnsmasq.exited():  # before signals: a death is reported even while stopping
                self._handle(dnsmasq.stop())
                raise DnsError(
                    f"dnsmasq exited unexpectedly (status {dnsmasq.returncode}); "
                    "DNS is down (fail closed)",
                    hint="see dnsmasq's messages above",
                )
            while pending:
                signum = pending.pop(0)
                if signum in _STOP_SIGNALS:
                    return 0
                self._reload()

    def _running(self) -> Dnsmasq:
        assert self._dnsmasq is not None
        return self._dnsmasq

    def _rendered(self, config: CageConfig, *, checked: bool = True) -> Rendered:
        assert self._dir is not None
        rendered = render(
            config,
            self._listen,
            self._dir.servers,
            run_as=self._run_as,
            blocked_zones=self._judge.blocked_zones,
        )
        if checked:
            check(rendered, self._binary)
        return rendered

    def _start(self, rendered: Rendered) -> None:
        assert self._dir is not None
        self._dir.write(rendered)
        self._main_text = rendered.main
        self._dnsmasq = Dnsmasq(self._binary, self._dir.main)
        self._handle(self._dnsmasq.start())

    def _reload(self) -> None:
        """SIGHUP: re-read the config file; SIGHUP dnsmasq, or restart it if need be."""
        assert self._dir is not None
        self._audit.reopen()
        config = load_config(self._config_path)
        self._judge.reconfigure(config)
        self._audit.which = config.logging.dns_queries
        rendered = self._rendered(config)
        self._config = config
        if rendered.main == self._main_text:
            self._dir.write_servers(rendered.servers)
            self._running().reload()
            self._note("reloaded the config (servers file)")
            return
        # Fixed settings changed (listen, mode, blocklist): only a restart applies them.
        self._handle(self._running().stop())
        self._flush_all()
        self._start(rendered)
        self._note("reloaded the config (dnsmasq restarted)")

    def _block_zone(self, zone: str) -> None:
        assert self._dir is not None
        with self._running().paused():
            # Unchecked: speed matters here and the only new line is a validated domain.
            self._dir.write_servers(self._rendered(self._config, checked=False).servers)
            # Recorded before dnsmasq answers again: a block is never in force unrecorded.
            if self._blocklog is not None:
                self._blocklog.save(self._judge.blocked_zones)
        self._note(f"blocked zone {zone} after DNS tunnel detection")

    def _handle(self, lines: list[str]) -> None:
        now = time.monotonic()
        for text in lines:
            parsed = parse_line(text)
            if parsed is None:
                continue
            if not isinstance(parsed, LogLine):
                self._note(f"dnsmasq: {parsed}")
                if "log entries lost" in parsed:
                    raise DnsError(
                        f"dnsmasq dropped query log lines ({parsed}); the audit would be "
                        "incomplete, so DNS stops (fail closed)"
                    )
                continue
            opened, done = self._assembler.feed(parsed, now)
            self._emit(done)
            if opened is not None:
                observation = self._judge.observe(opened, now)
                if observation.newly_blocked is not None:
                    self._block_zone(observation.newly_blocked)

    def _emit(self, queries: list[Query]) -> None:
        for query in queries:
            self._audit.emit(self._judge.record(query))
            self._judge.enforce(query)

    def _flush_all(self) -> None:
        self._emit(self._assembler.drain())

    def _shutdown(self) -> None:
        if self._dnsmasq is None:
            return
        lines = self._dnsmasq.stop()
        with contextlib.suppress(DnsError):  # already failing or stopping: keep the cause
            self._handle(lines)
            self._flush_all()

    def _note(self, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._log.write(message + "\n")
            self._log.flush()
