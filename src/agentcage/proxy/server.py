"""Run mitmproxy embedded with agentcage's addons: the `agentcage proxy run` engine."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import certifi
from mitmproxy import master, options
from mitmproxy.addons import (
    block,
    core,
    disable_h2c,
    errorcheck,
    proxyserver,
    termlog,
    tlsconfig,
)

from agentcage.audit.logfiles import Rotation
from agentcage.audit.throttle import LineBudget
from agentcage.errors import ConfigError
from agentcage.heap import give_back_free_memory
from agentcage.metrics.exposition import MetricsServer
from agentcage.policy import accelerator
from agentcage.proxy import (
    context_forks,
    hook_plans,
    hooks_in_place,
    layer_patches,
    leaf_objects,
    message_checks,
    option_values,
    protocolerrors,
    wscontrol,
)
from agentcage.proxy.blocknotices import NoticingAuditWriter
from agentcage.proxy.checked_config import ConfigCheck
from agentcage.proxy.closing_lines import ClosingLines
from agentcage.proxy.confdir import write_upstream_bundle
from agentcage.proxy.connect_tunnels import LayerChoice
from agentcage.proxy.deny import DenyListeners
from agentcage.proxy.early_start import EarlyStart, ProxySettings, adopt, open_deny
from agentcage.proxy.gate import RequestGate
from agentcage.proxy.opaque import OpaquePassthrough
from agentcage.proxy.pinning import EgressPinning
from agentcage.proxy.proxy_metrics import ProxyMetrics, TrafficCounter
from agentcage.proxy.rawstreams import RawStreamRefusal
from agentcage.proxy.runtime import RuntimeHolder, Sources
from agentcage.proxy.scrubbing import ResponseScrubbing
from agentcage.proxy.streaming import ResponseStreaming
from agentcage.proxy.transparent import TransparentEntry
from agentcage.proxy.upstream_reuse import UpstreamReuse
from agentcage.proxy.wsmessages import WebSocketGate
from agentcage.quick_exit import exit_at_once
from agentcage.sdnotify import notify_ready

if TYPE_CHECKING:
    from agentcage.config.schema import CageConfig


logger = logging.getLogger(__name__)
CA_CERT_NAME = "mitmproxy-ca-cert.pem"


class Ready:
    """Once mitmproxy listens: one `listening on` line, and READY=1 unless sent already.

    `early_start.py` usually sent READY=1 before mitmproxy loaded, once the sockets it
    serves were bound; otherwise it is sent here.
    """

    def __init__(self, ca_dir: Path, holder: RuntimeHolder, early: EarlyStart) -> None:
        self._ca_dir = ca_dir
        self._holder = holder
        self._early = early

    def running(self) -> None:
        from mitmproxy import ctx

        server = ctx.master.addons.get("proxyserver")  # type: ignore[no-untyped-call]
        addrs = ", ".join(f"{_host(a[0])}:{a[1]}" for a in server.listen_addrs())
        cert = self._ca_dir / CA_CERT_NAME
        learning = self._holder.current.config.domains.learn_notice
        print(
            f"agentcage proxy listening on {addrs} (CA certificate: {cert}){learning}",
            file=sys.stderr,
            flush=True,
        )
        self._early.held.close()  # any socket mitmproxy did not adopt: nothing serves it
        if not self._early.notified:
            self._early.notified = notify_ready()
        give_back_free_memory()  # what the start dropped, once the agent no longer waits
        if accelerator.native is None:
            print(
                "agentcage proxy: built without its C accelerator (AGENTCAGE_NO_NATIVE=1); "
                "inspecting large bodies is about 3x slower",
                file=sys.stderr,
                flush=True,
            )


class Reloads:
    """SIGHUPs: each checks the config in a child while the proxy keeps serving.

    The check (checked_config.py) takes an interpreter's start, about 0.3 s of CPU:
    waited for on a worker thread, then `apply` builds and swaps the policy on the
    loop as before. A SIGHUP during a check asks for one more after it.
    """

    def __init__(self, config_path: Path, apply: Callable[[ConfigCheck], None]) -> None:
        self._path = config_path
        self._apply = apply
        self._running: asyncio.Task[None] | None = None
        self._again = False

    def ask(self) -> None:
        if self._running is not None and not self._running.done():
            self._again = True
            return
        self._running = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            check = ConfigCheck(self._path)
            await asyncio.to_thread(check.wait)
            self._apply(check)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def termlog_level(level: str) -> str:
    """mitmproxy's log level for `logging.level`.

    mitmproxy logs every connection at `info`, which is noise next to the audit
    log; so only `debug` turns that on, and `info` shows warnings and errors.
    """
    return {"debug": "debug", "error": "error"}.get(level, "warn")


def set_log_level(opts: options.Options, level: str) -> None:
    verbosity = termlog_level(level)
    # Records below the root level are never built: cheap hot paths unless debugging.
    logging.getLogger().setLevel(verbosity.upper().replace("WARN", "WARNING"))
    for noisy in ("asyncio", "hpack", "quic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _set(opts, termlog_verbosity=verbosity)


def upstream_trust(ca_dir: Path, extra: Path | None) -> str | None:
    """A CA bundle of the public roots plus `extra`, or None for the public roots alone.

    mitmproxy trusts a given bundle *instead of* its default one; `--upstream-ca`
    adds to it, so public sites keep working next to a private CA.
    """
    if extra is None:
        return None
    try:
        added = extra.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"--upstream-ca {extra}: cannot read a PEM bundle: {exc}",
            hint="pass a file of PEM certificates (-----BEGIN CERTIFICATE-----)",
        ) from exc
    if "-----BEGIN CERTIFICATE-----" not in added:
        raise ConfigError(
            f"--upstream-ca {extra}: holds no PEM certificate",
            hint="pass a file of PEM certificates (-----BEGIN CERTIFICATE-----)",
        )
    bundle = Path(certifi.where()).read_text(encoding="ascii") + "\n" + added
    return str(write_upstream_bundle(ca_dir, bundle))


def audit_rotation(config: CageConfig) -> Rotation:
    return Rotation(config.logging.audit_max_bytes, config.logging.audit_keep)


def body_limit_option(limit: int) -> str | None:
    return str(limit) if limit > 0 else None


async def serve(settings: ProxySettings, sources: Sources, early: EarlyStart) -> None:
    """Proxy until SIGTERM/SIGINT with the policy and sockets `early` made."""
    runtime = early.runtime
    adopt(early.held)
    layer_patches.install()
    hook_plans.install()
    hooks_in_place.install()
    leaf_objects.install()
    message_checks.install()
    option_values.install()
    context_forks.install()
    wscontrol.install()
    protocolerrors.install()
    holder = RuntimeHolder(sources, runtime)
    fingerprints = early.fingerprints
    metrics = ProxyMetrics() if settings.metrics is not None else None
    if metrics is not None:
        metrics.policy.info({"version": runtime.version})
    audit = NoticingAuditWriter(
        settings.audit_log,
        error=ConfigError,  # a bad --audit-log is a bad argument: exit 2 before listening
        hint="pass a writable --audit-log path, or omit it to write to stdout",
        rotation=audit_rotation(runtime.config),
        metrics=metrics,
    )
    settings.ca_dir.mkdir(parents=True, exist_ok=True)

    opts = options.Options(listen_host=settings.listen_host, listen_port=settings.listen_port)
    proxy = master.Master(opts)
    _add(proxy, termlog.TermLog(out=sys.stderr))
    # Only what a forward proxy needs: no onboarding app, scripts, replay or rewriting
    # addons that could answer or alter a request behind the policy's back.
    entry = None
    if settings.transparent is not None:
        entry = TransparentEntry(holder, audit, settings.transparent)
    _add(
        proxy,
        core.Core(),
        block.Block(),
        disable_h2c.DisableH2C(),
        proxyserver.Proxyserver(),  # type: ignore[no-untyped-call]
    )
    if entry is not None:
        _add(proxy, OpaquePassthrough(entry, audit))  # before NextLayer: see its docstring
    _add(proxy, LayerChoice(), tlsconfig.TlsConfig(), errorcheck.ErrorCheck())
    if entry is not None:
        # Before the gate: a request the listener cannot serve never reaches the policy.
        _add(proxy, entry)
    _add(
        proxy,
        RequestGate(holder, audit, metrics),
        RawStreamRefusal(holder, audit),
        EgressPinning(holder),
        ResponseStreaming(holder),
        UpstreamReuse(holder),  # after every request hook, before the response scrub
        ResponseScrubbing(holder),
        protocolerrors.ProtocolErrors(holder, audit),  # before ClosingLines: see its docstring
        ClosingLines(holder, audit),
        WebSocketGate(holder, audit),
        wscontrol.ControlFrameGate(holder, audit),
        Ready(settings.ca_dir, holder, early),
    )
    if metrics is not None:
        _add(proxy, TrafficCounter(metrics))
    _set(
        opts,
        mode=listen_modes(entry),
        confdir=str(settings.ca_dir),
        connection_strategy="lazy",
        ssl_verify_upstream_trusted_ca=upstream_trust(settings.ca_dir, settings.upstream_ca),
        body_size_limit=body_limit_option(runtime.config.max_request_body),
    )
    set_log_level(opts, runtime.config.logging.level)

    def reloaded(check: ConfigCheck) -> None:
        try:
            audit.reopen()
        except ConfigError as exc:
            logger.error("keeping the old audit log: %s", exc.diagnostics())
        if holder.reload(check):
            if fingerprints is not None:
                fingerprints.republish(holder.current.config)
            audit.rotation = audit_rotation(holder.current.config)
            if metrics is not None:
                metrics.policy.info({"version": holder.current.version})
            learning = holder.current.config.domains.learn_notice
            print(
                f"agentcage proxy reloaded {sources.config_path}{learning}",
                file=sys.stderr,
                flush=True,
            )
            limit = holder.current.config.max_request_body
            _set(opts, body_size_limit=body_limit_option(limit))
            set_log_level(opts, holder.current.config.logging.level)
            _set(opts, mode=listen_modes(entry))  # network.ports may have changed

    reloads = Reloads(sources.config_path, reloaded)

    deny = None
    if settings.deny_flows and settings.transparent is not None:
        sockets = early.deny or open_deny(settings.transparent)
        deny = DenyListeners(sockets, holder, audit, LineBudget())
    served = None
    if metrics is not None and settings.metrics is not None:
        served = MetricsServer(metrics.registry, settings.metrics)
        print(f"agentcage proxy metrics on {served.url}", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, proxy.shutdown)
    loop.add_signal_handler(signal.SIGINT, proxy.shutdown)
    loop.add_signal_handler(signal.SIGHUP, reloads.ask)
    if early.reload_asked:  # while mitmproxy loaded (early_start.hold_reloads)
        reloads.ask()
    if deny is not None:
        deny.serve(loop)
    try:
        await proxy.run()
    finally:
        if deny is not None:
            deny.close()
        audit.close()
        if served is not None:
            served.close()


def listen_modes(entry: TransparentEntry | None) -> list[str]:
    """The explicit listener (`--listen`), then the transparent ones."""
    return ["regular", *(entry.listeners.modes() if entry is not None else ())]


def _add(proxy: master.Master, *items: object) -> None:
    proxy.addons.add(*items)  # type: ignore[no-untyped-call]


def _set(opts: options.Options, **values: object) -> None:
    opts.update(**values)  # type: ignore[no-untyped-call]


def run(settings: ProxySettings, sources: Sources, early: EarlyStart) -> NoReturn:
    """Serve, then exit 0 at once: the audit log is closed and nothing else is pending.

    Tearing down the interpreter's ~700 modules took 0.13 s here, which every `cage
    stop` and `destroy` waited for (systemd stops the proxy after the agent).
    """
    try:
        asyncio.run(serve(settings, sources, early))
    finally:
        early.close()
    exit_at_once(0)
