"""The guest's one NIC under Firecracker: a TAP device in the VM's container, NATed out.

Firecracker attaches a guest NIC to a host TAP device only (passt's socket is QEMU's). So
for a Firecracker cage `vm run` makes, in its own container's network namespace, a TAP
owned by its own uid (Firecracker then opens it without any capability), gives it a /30
of link-local addresses, and masquerades the guest's traffic out of the container's
interface on the cage's external network: upstream sees the container, as with passt.
Forwarding is allowed from the guest outward and for replies only; the guest reaches
nothing of the container's own. This needs CAP_NET_ADMIN and /dev/net/tun in the
container (vm_container.vm_units adds both for Firecracker only) and the namespace's
`net.ipv4.ip_forward` set (the unit's `Sysctl=`); `vm run` clears its ambient
capabilities once the TAP is made, so Firecracker itself runs with none.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
from pathlib import Path

from agentcage.cage.vm.debian_parts import run_tool
from agentcage.cage.vm.machine import TapNetwork
from agentcage.errors import VmmError

TAP = "fc0"
HOST_ADDRESS = "169.254.100.1"
GUEST_ADDRESS = "169.254.100.2/30"
TABLE = "agentcage_vm"
FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4


def ruleset(tap: str = TAP, guest: str = GUEST_ADDRESS.split("/")[0]) -> str:
    return f"""table ip {TABLE} {{
  chain forward {{
    type filter hook forward priority filter; policy drop;
    iifname "{tap}" oifname != "{tap}" ip saddr {guest} accept
    oifname "{tap}" ct state established,related accept
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname "{tap}" ct state established,related accept
    iifname "{tap}" drop
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname != "{tap}" ip saddr {guest} masquerade
  }}
}}
"""


class TapUplink:
    def __init__(self, tap: str = TAP) -> None:
        self.tap = tap
        self.network = TapNetwork(tap)

    def open(self) -> TapUplink:
        _forwarding()
        uid, gid = str(os.getuid()), str(os.getgid())
        try:
            run_tool(["ip", "tuntap", "add", "dev", self.tap, "mode", "tap",
                      "user", uid, "group", gid])  # fmt: skip
            run_tool(["ip", "address", "add", f"{HOST_ADDRESS}/30", "dev", self.tap])
            run_tool(["ip", "link", "set", self.tap, "up"])
            rules = Path(f"/tmp/{TABLE}.nft")
            rules.write_text(ruleset(self.tap), encoding="utf-8")
            try:
                run_tool(["nft", "-f", str(rules)])
            finally:
                rules.unlink(missing_ok=True)
        except VmmError as exc:
            self.close()
            raise VmmError(
                f"the guest's network could not be made: {exc.message}",
                hint="a Firecracker cage's container needs CAP_NET_ADMIN and /dev/net/tun",
            ) from exc
        _drop_ambient()
        return self

    def alive(self) -> str | None:
        """Why the uplink is gone, or None while it serves."""
        try:
            socket.if_nametoindex(self.tap)  # this namespace's, whatever /sys shows
        except OSError:
            return f"{self.tap} vanished"
        return None

    def close(self) -> None:
        # The container's namespace goes with the container; this matters where it does not.
        for argv in (["nft", "delete", "table", "ip", TABLE], ["ip", "link", "del", self.tap]):
            with contextlib.suppress(VmmError):
                run_tool(argv)


def _forwarding() -> None:
    if FORWARD.read_text().strip() == "1":
        return
    try:
        FORWARD.write_text("1")
    except OSError as exc:
        raise VmmError(
            f"net.ipv4.ip_forward is 0 in the VM's container and cannot be set: {exc}",
            hint="the unit sets it with `Sysctl=net.ipv4.ip_forward=1`",
        ) from exc


def _drop_ambient() -> None:
    """Children (Firecracker) start with no capabilities; this process keeps its own."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
