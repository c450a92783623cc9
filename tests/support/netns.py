"""Run a command in a new user and network namespace whose only interface is loopback.

For a test that would, were the code under test wrong, connect to a real address:
inside the namespace there is no route anywhere, so the mistake fails the test
instead of sending packets off the machine. Needs `unshare` (util-linux) and
unprivileged user namespaces, as rootless Podman does.

    subprocess.run(isolated([sys.executable, "-m", "some.module"]), cwd=ROOT)

`python -m tests.support.netns [--address=IP ...] CMD...` is the part that runs
inside: it brings loopback up, gives it each extra IPv4 address asked for (a
server can then stand in for an outside address without leaving the namespace),
checks that loopback is all there is, and execs CMD.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_SIOCSIFADDR = 0x8916
_IFF_UP = 0x1
_IFREQ = "16sH22x"  # struct ifreq: the name, then ifr_flags in the union
_IFREQ_ADDR = "16sH2s4s16x"  # struct ifreq: the name, then a sockaddr_in in the union
_OPTION = "--address="


def isolated(
    argv: Sequence[str], addresses: Sequence[str] = (), *, private_mounts: bool = False
) -> list[str]:
    """`argv` wrapped to run in a fresh network namespace with loopback up, holding
    127.0.0.1, ::1 and each IPv4 address in `addresses`.

    `private_mounts` adds a mount namespace (to bind a test's own /etc/resolv.conf)
    and keeps the real ids, so a sidecar can drop root to a system user inside: a
    user namespace mapping only root would not let it. That needs root outside.
    """
    users = ["--mount"] if private_mounts else ["--user", "--map-root-user"]
    return [
        "unshare",
        *users,
        "--net",
        sys.executable,
        "-m",
        "tests.support.netns",
        *(_OPTION + address for address in addresses),
        *argv,
    ]


def probe_report(module: str, out: Path, timeout: float) -> dict[str, Any]:
    """Run `python -m MODULE OUT` as root in a fresh network and mount namespace, from
    the repository root; the JSON report it wrote to OUT."""
    done = subprocess.run(
        isolated([sys.executable, "-m", module, str(out)], private_mounts=True),
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def _bring_up_loopback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


def _add_address(index: int, address: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        alias = f"lo:{index}".encode()
        packed = socket.inet_aton(address)
        request = struct.pack(_IFREQ_ADDR, alias, socket.AF_INET, b"\0\0", packed)
        fcntl.ioctl(sock, _SIOCSIFADDR, request)


def main(argv: list[str]) -> None:
    interfaces = [name for _, name in socket.if_nameindex()]
    if interfaces != ["lo"]:
        sys.exit(f"not in a fresh network namespace: interfaces {interfaces}")
    _bring_up_loopback()
    addresses = [arg.removeprefix(_OPTION) for arg in argv if arg.startswith(_OPTION)]
    for index, address in enumerate(addresses, start=1):
        _add_address(index, address)
    command = argv[len(addresses) :]
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
