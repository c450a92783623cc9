"""dnsmasq behind the sidecar's front: its private files, the process and its messages.

The front (sidecar.py) judges every query; what it lets through is asked of this
dnsmasq on a free loopback port. A config change that only touches the servers file
is applied with SIGHUP; one that changes dnsmasq's fixed settings restarts it.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterable

from agentcage.dns.files import RunAs, RuntimeDir, check, dnsmasq_binary, run_as_for_root
from agentcage.dns.forwarder import free_loopback_port
from agentcage.dns.plan import DnsPlan
from agentcage.dns.process import Dnsmasq, message
from agentcage.dns.render import Listen, Rendered, render
from agentcage.errors import DnsError

# How often dnsmasq's liveness is checked: rarely while its stderr is open (its closing
# wakes the loop at once: dnsmasq exits), then often until it is found gone.
_IDLE_WATCH_INTERVAL = 10.0  # each wakeup was ~0.2 ms of CPU: 2 s cost fifty cages 0.3% of a core
_WATCH_INTERVAL = 0.2
_START_ATTEMPTS = 3  # a free loopback port may be taken before dnsmasq binds it
_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


class DnsmasqBackend:
    """One dnsmasq at a time, its rendered files in a private directory.

    `note` gets dnsmasq's messages; `wake` is called when its stderr closes (it is
    exiting), so the sidecar checks on it at once.
    """

    def __init__(self, note: Callable[[str], None], wake: Callable[[], None]) -> None:
        self._note = note
        self._wake = wake
        self._binary = dnsmasq_binary()
        self._run_as: RunAs | None = run_as_for_root()
        self._dir: RuntimeDir | None = None
        self._dnsmasq: Dnsmasq | None = None
        self._main_text = ""
        self.port = 0

    def open(self) -> None:
        """Make the private directory (before the front binds: nothing listens yet)."""
        self._dir = RuntimeDir(self._run_as)

    def start(self, config: DnsPlan, blocked_zones: Iterable[str]) -> None:
        """Render, check and start dnsmasq on a free loopback port; wait until it serves."""
        assert self._dir is not None
        zones = list(blocked_zones)
        for attempt in range(_START_ATTEMPTS):
            self.port = free_loopback_port()
            rendered = self.rendered(config, zones)
            self._dir.write(rendered)
            self._main_text = rendered.main
            self._dnsmasq = Dnsmasq(self._binary, self._dir.main, self._run_as)
            try:
                lines = self._dnsmasq.start()
            except DnsError as exc:
                if "in use" in exc.message and attempt + 1 < _START_ATTEMPTS:
                    continue  # someone took the port meanwhile: another one
                raise
            self._relay(lines)
            fd = self._dnsmasq.fileno()
            if fd is not None:
                asyncio.get_running_loop().add_reader(fd, self._relay_output)
            return

    def rendered(
        self, config: DnsPlan, blocked_zones: Iterable[str], *, checked: bool = True
    ) -> Rendered:
        """dnsmasq's files for `config` on the current port; `checked` by `dnsmasq --test`."""
        assert self._dir is not None
        rendered = render(
            config, Listen(_LOOPBACK, self.port), self._dir.servers, blocked_zones=blocked_zones
        )
        if checked:
            check(rendered, self._binary)
        return rendered

    def refuse_zones(self, config: DnsPlan, blocked_zones: Iterable[str]) -> None:
        """dnsmasq refuses the zones too: a second line behind the front."""
        if self._dir is None or self._dnsmasq is None:
            return
        self._dir.write_servers(self.rendered(config, blocked_zones, checked=False).servers)
        self._dnsmasq.reload()

    def apply(self, config: DnsPlan, blocked_zones: Iterable[str]) -> str:
        """A reloaded config, checked first: SIGHUP, or a restart when the fixed
        settings changed (mode, blocklist). Says which."""
        assert self._dir is not None and self._dnsmasq is not None
        zones = list(blocked_zones)
        rendered = self.rendered(config, zones)
        if rendered.main == self._main_text:
            self._dir.write_servers(rendered.servers)
            self._dnsmasq.reload()
            return "servers file"
        self.stop()
        self.start(config, zones)
        return "dnsmasq restarted"

    def check_running(self) -> None:
        """Raise `DnsError` if dnsmasq has exited (fail closed: DNS is down)."""
        dnsmasq = self._dnsmasq
        if dnsmasq is not None and dnsmasq.exited():
            self.stop()
            raise DnsError(
                f"dnsmasq exited unexpectedly (status {dnsmasq.returncode}); "
                "DNS is down (fail closed)",
                hint="see dnsmasq's messages above",
            )

    def watch_interval(self) -> float:
        closed = self._dnsmasq is None or self._dnsmasq.closed
        return _WATCH_INTERVAL if closed else _IDLE_WATCH_INTERVAL

    def stop(self) -> None:
        if self._dnsmasq is None:
            return
        fd = self._dnsmasq.fileno()
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
        self._relay(self._dnsmasq.stop())

    def close(self) -> None:
        """Stop dnsmasq and remove the private directory."""
        self.stop()
        if self._dir is not None:
            self._dir.remove()

    def _relay_output(self) -> None:
        if self._dnsmasq is None:
            return
        self._relay(self._dnsmasq.read_lines(0))
        fd = self._dnsmasq.fileno()
        if self._dnsmasq.closed and fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            self._wake()  # dnsmasq is exiting: check it now

    def _relay(self, lines: list[str]) -> None:
        for line in lines:
            if line.strip():
                self._note(f"dnsmasq: {message(line)}")
