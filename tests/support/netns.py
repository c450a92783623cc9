"""Run a command in a new user and network namespace whose only interface is loopback.

For a test that would, were the code under test wrong, connect to a real address:
inside the namespace there is no route anywhere, so the mistake fails the test
instead of sending packets off the machine. Needs `unshare` (util-linux) and
unprivileged user namespaces, as rootless Podman does.

    subprocess.run(isolated([sys.executable, "-m", "some.module"]), cwd=ROOT)

`python -m tests.support.netns CMD...` is the part that runs inside: it brings
loopback up, checks that loopback is all there is, and execs CMD.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import sys
from collections.abc import Sequence

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sH22x"  # struct ifreq: the name, then ifr_flags in the union


def isolated(argv: Sequence[str], *, private_mounts: bool = False) -> list[str]:
    """`argv` wrapped to run in a fresh network namespace with loopback up.

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
        *argv,
    ]


def _bring_up_loopback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


def main(argv: list[str]) -> None:
    interfaces = [name for _, name in socket.if_nameindex()]
    if interfaces != ["lo"]:
        sys.exit(f"not in a fresh network namespace: interfaces {interfaces}")
    _bring_up_loopback()
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
