"""`agentcage dns run`: a front that judges every query, dnsmasq behind it on loopback.

    agent ──UDP/TCP──> front: parse, judge, write the audit line, then answer or ask
                         └──question only──> dnsmasq on 127.0.0.1:<free port> ──> upstreams

Nothing reaches dnsmasq before its audit line is in the kernel, so a query that left
always has its line. Fail closed throughout: if dnsmasq dies, the config cannot be
re-read, an audit line or a zone block cannot be recorded, or too many zones need
blocking, the front stops and `run` raises `DnsError` (the cage has no DNS rather
than unchecked DNS). The query whose audit line failed is answered SERVFAIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import TextIO

import dns.message
import dns.rcode

from agentcage.dns import wire
from agentcage.dns.backend import DnsmasqBackend
from agentcage.dns.blocklog import BlockedZonesFile
from agentcage.dns.dns_metrics import DnsMetrics
from agentcage.dns.dnsaudit import DnsAuditLog
from agentcage.dns.forwarder import DnsmasqClient, ForwardError
from agentcage.dns.front import Front, FrontSockets
from agentcage.dns.judge import QueryDecision, QueryJudge, rejected
from agentcage.dns.plan import DnsPlan, checked_plan
from agentcage.dns.render import Listen
from agentcage.dns.values import NameValues
from agentcage.errors import DnsError
from agentcage.heap import give_back_free_memory
from agentcage.held_reload import HeldReload
from agentcage.metrics.exposition import MetricsEndpoint, MetricsServer
from agentcage.sdnotify import notify_ready

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# What cage/probe.py asks for (a test keeps them equal; the probe imports nothing of ours).
HEALTH_PROBE_NAME = "agentcage-probe.invalid"


class Sidecar:
    def __init__(
        self,
        config_path: Path,
        listen: Listen,
        audit_log: Path | None = None,
        *,
        blocked_zones: Path | None = None,
        name_fingerprints: Path | None = None,
        metrics: MetricsEndpoint | None = None,
        steer_to: ipaddress.IPv4Address | None = None,
        log: TextIO = sys.stderr,
        bound: FrontSockets | None = None,
        notified: bool = False,
        held: HeldReload | None = None,
        checked: tuple[str, DnsPlan] | None = None,
    ) -> None:
        """`bound`, `notified`, `held`: the front's sockets, READY=1 and the SIGHUPs
        noted meanwhile, if `dns run` got there first; `checked`: its `checked_plan`."""
        self._config_path = config_path
        self._listen = listen
        self._steer_to = steer_to
        self._log = log
        self._bound = bound
        self._notified = notified
        self._held = held
        version, self._config = checked if checked is not None else checked_plan(config_path)
        self._blocklog = BlockedZonesFile(blocked_zones) if blocked_zones else None
        kept = self._blocklog.load() if self._blocklog is not None else set()
        self._audit = DnsAuditLog(audit_log)
        self._audit.configure(self._config)
        self._values = NameValues(name_fingerprints, self._note) if name_fingerprints else None
        self._judge = QueryJudge(self._config, kept, self._values)
        self._endpoint = metrics
        self._metrics = DnsMetrics() if metrics is not None else None
        self._policy_version(version)
        self._backend = DnsmasqBackend(self._note, self._wake_now)
        self._client: DnsmasqClient | None = None
        self._failure: BaseException | None = None
        self._wake: asyncio.Event | None = None
        self._reloading: asyncio.Task[None] | None = None
        self._reload_again = False

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (returns 0); raise `DnsError` on any failure."""
        return asyncio.run(self._run())

    async def _run(self) -> int:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        stop = asyncio.Event()
        for sig in _STOP_SIGNALS:
            loop.add_signal_handler(sig, self._stop_soon, stop)
        if self._held is None:
            loop.add_signal_handler(signal.SIGHUP, self._reload_soon)
        self._backend.open()
        front = Front(self._listen, self._answer)
        served = None
        try:
            if self._metrics is not None and self._endpoint is not None:
                served = MetricsServer(self._metrics.registry, self._endpoint)
                self._metrics.blocked_zones.set(len(self._judge.blocked_zones))
                self._note(f"metrics on {served.url}")
            front.bind(self._bound)  # first: dnsmasq's free port is never the agent's
            self._backend.start(self._config, self._judge.blocked_zones)
            self._client = DnsmasqClient(self._backend.port)
            await self._client.open()
            await front.start()
            if self._held is not None:  # dnsmasq runs now: a reload can be applied
                loop.add_signal_handler(signal.SIGHUP, self._reload_soon)
                if self._held.asked:
                    self._reload_soon()
            if self._judge.blocked_zones:
                zones = ", ".join(sorted(self._judge.blocked_zones))
                self._note(f"still blocking zones after DNS tunnel detection: {zones}")
            if self._values is not None:
                self._values.refresh()  # a missing file is reported now, not at the first query
            self._note(f"listening on {self._listen}{self._config.domains.learn_notice}")
            if not self._notified:
                self._notified = notify_ready()
            give_back_free_memory()  # what the start dropped (heap.py)
            while True:
                if self._failure is not None:  # before stopping: a failure is reported
                    raise self._failure
                if stop.is_set():
                    if self._reloading is not None and not self._reloading.done():
                        await asyncio.wait({self._reloading})  # a SIGHUP sent first is answered
                        continue
                    return 0
                self._backend.check_running()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._backend.watch_interval())
                self._wake.clear()
        finally:
            if self._reloading is not None:
                self._reloading.cancel()  # stopping: a check still running is not applied
            await front.close()
            if self._client is not None:
                self._client.close()
            self._backend.close()
            self._audit.close()
            if served is not None:
                served.close()

    def _stop_soon(self, stop: asyncio.Event) -> None:
        stop.set()
        self._wake_now()

    def _wake_now(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _reload_soon(self) -> None:
        if self._reloading is not None and not self._reloading.done():
            self._reload_again = True  # the file may have changed after the check began
            return
        self._reloading = asyncio.get_running_loop().create_task(self._reloads())

    async def _reloads(self) -> None:
        try:
            while True:
                self._reload_again = False
                await self._reload()
                if not self._reload_again:
                    return
        except Exception as exc:  # ends the run loop, which re-raises it
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        if self._wake is not None:
            self._wake.set()

    # --- answering -------------------------------------------------------------------

    async def _answer(self, data: bytes, client: str, tcp: bool) -> bytes | None:
        if self._failure is not None:  # stopping: nothing more leaves
            return wire.header_reply(data, dns.rcode.SERVFAIL) if len(data) >= 12 else None
        try:
            return await self._judged(data, client, tcp)
        except Exception:  # a bug must not forward anything: this query gets no answer
            self._note("error answering a query (not forwarded):\n" + traceback.format_exc())
            return None

    async def _judged(self, data: bytes, client: str, tcp: bool) -> bytes | None:
        try:
            query, question = wire.parse(data)
        except wire.Rejected as refused:
            reply = refused.reply
            answers = 0 if reply is not None else None
            with contextlib.suppress(DnsError):  # nothing leaves either way
                self._record(None, client, rejected(refused.reason), refused.rcode, answers)
            return reply
        decision = self._judge.decide(question, time.monotonic())
        limit = wire.reply_limit(query, tcp)
        local = self._local_answer(query, decision)
        steered = local is None and self._steer_to is not None and wire.steerable(question)
        if steered:
            assert self._steer_to is not None
            # The proxy's transparent listeners take it from here (docs/transparent.md).
            local = wire.steered_answer(query, self._steer_to)
        try:
            if decision.newly_blocked is not None and decision.stop is None:
                self._block_zone(decision.newly_blocked)
            rcode = dns.rcode.to_text(local.rcode()) if local is not None else None
            answers = sum(len(rrset) for rrset in local.answer) if local is not None else None
            self._record(question, client, decision, rcode, answers, steered)
        except DnsError as exc:
            self._note(f"{exc.message}; answered SERVFAIL, nothing forwarded (fail closed)")
            self._fail(exc)
            return wire.to_wire(wire.local_answer(query, dns.rcode.SERVFAIL), limit)
        if decision.stop is not None:
            self._fail(decision.stop)
        if local is not None:
            return wire.to_wire(local, limit)
        assert self._client is not None
        try:
            answer = await self._client.ask(wire.upstream_query(question), tcp)
        except ForwardError as exc:
            self._note(f"no answer for {question.name} {question.qtype}: {exc}")
            return wire.to_wire(wire.local_answer(query, dns.rcode.SERVFAIL), limit)
        if decision.would_block:
            refusal = self._judge.answer_refusal(answer)
            if refusal is not None:
                return self._refuse_answer(query, question, client, refusal, limit)
        return wire.to_wire(wire.relay(query, answer), limit)

    def _refuse_answer(
        self,
        query: dns.message.Message,
        question: wire.Question,
        client: str,
        refusal: QueryDecision,
        limit: int,
    ) -> bytes:
        """REFUSED instead of an answer learn mode must not hand over; its own line first."""
        try:
            self._record(question, client, refusal, "REFUSED", 0)
        except DnsError as exc:
            self._note(f"{exc.message}; answered SERVFAIL (fail closed)")
            self._fail(exc)
            return wire.to_wire(wire.local_answer(query, dns.rcode.SERVFAIL), limit)
        return wire.to_wire(wire.local_answer(query, dns.rcode.REFUSED), limit)

    @staticmethod
    def _local_answer(
        query: dns.message.Message, decision: QueryDecision
    ) -> dns.message.Message | None:
        if decision.answer == "sinkhole":
            return wire.sinkhole_answer(query)
        if decision.answer == "refused":
            return wire.local_answer(query, dns.rcode.REFUSED)
        if decision.answer == "servfail":
            return wire.local_answer(query, dns.rcode.SERVFAIL)
        return None

    def _own_probe(self, question: wire.Question | None, client: str) -> bool:
        """The health check run inside this sidecar (cage/probe.py): not the agent's.

        The agent has no capability to forge its source address, so a probe name from
        anywhere but this sidecar's own address is the agent's and counts.
        """
        own = (str(self._listen.address), "127.0.0.1", "::1")
        return question is not None and question.name == HEALTH_PROBE_NAME and client in own

    def _record(
        self,
        question: wire.Question | None,
        client: str,
        decision: QueryDecision,
        rcode: str | None,
        answers: int | None,
        steered: bool = False,
    ) -> None:
        if self._metrics is not None:
            self._metrics.query(decision, counted=not self._own_probe(question, client))
        line = self._judge.record(question, client, decision, rcode, answers)
        if steered:
            line.extra["steered"] = str(self._steer_to)
        try:
            self._audit.emit(line)
        except DnsError:
            if self._metrics is not None:
                self._metrics.audit_errors.inc()
            raise

    def _block_zone(self, zone: str) -> None:
        # Recorded before the query is answered: a block is never in force unrecorded.
        if self._blocklog is not None:
            self._blocklog.save(self._judge.blocked_zones)
        self._backend.refuse_zones(self._config, self._judge.blocked_zones)
        if self._metrics is not None:
            self._metrics.tunnel_blocks.inc()
            self._metrics.blocked_zones.set(len(self._judge.blocked_zones))
        self._note(f"blocked zone {zone} after DNS tunnel detection")

    # --- the config ---------------------------------------------------------------------

    async def _reload(self) -> None:
        """SIGHUP: re-read the config file; SIGHUP dnsmasq, or restart it if need be.

        The check runs in a child process (dns/plan.py) for a few tenths of a second;
        queries are judged by the config in force until its answer is applied.
        """
        self._audit.reopen()
        if self._values is not None:
            self._values.refresh(force=True)
        version, config = await asyncio.to_thread(checked_plan, self._config_path)
        self._policy_version(version)
        self._judge.reconfigure(config)
        self._audit.configure(config)
        how = self._backend.apply(config, self._judge.blocked_zones)
        self._config = config
        if self._client is not None:
            self._client.port = self._backend.port  # a restarted dnsmasq has a new one
        self._note(f"reloaded the config ({how}){config.domains.learn_notice}")

    def _policy_version(self, version: str) -> None:
        if self._metrics is not None:
            self._metrics.policy.info({"version": version})

    def _note(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._log.write(text + "\n")
            self._log.flush()
