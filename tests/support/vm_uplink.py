"""A guest's network for tests: passt in a namespace of the test's own, with one TCP server.

    proc = subprocess.Popen(isolated([sys.executable, "-m", "tests.support.vm_uplink",
                                      SOCKET, PORT]), stdout=PIPE, cwd=ROOT)

Runs inside the fresh user and network namespace `tests.support.netns` makes (loopback
only). passt needs an interface with a default route to copy its addresses from, so a
veth pair stands in for one: 10.0.2.2/24 with a default route via 10.0.2.1 that leads
nowhere (the peer end has no address and no namespace beyond). passt gives the guest
10.0.2.2 and maps the gateway, 10.0.2.1, to this namespace's loopback, where a server on
PORT answers every connection with BANNER. A guest connection to any other address is
attempted by passt from inside this namespace and goes no further than the veth pair.
Prints "ready" once passt's socket exists; ends when stdin closes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

GUEST_ADDRESS = "10.0.2.2/24"
GATEWAY = "10.0.2.1"
BANNER = b"hello from the test's namespace\n"


def serve(port: int) -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    while True:
        conn, _ = server.accept()
        with conn:
            conn.sendall(BANNER)


def main(socket_path: str, port: int) -> None:
    for argv in (
        ["ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1"],
        ["ip", "link", "set", "up1", "up"],
        ["ip", "address", "add", GUEST_ADDRESS, "dev", "up0"],
        ["ip", "link", "set", "up0", "up"],
        ["ip", "route", "add", "default", "via", GATEWAY],
    ):
        subprocess.run(argv, check=True)
    threading.Thread(target=serve, args=(port,), daemon=True).start()
    passt = subprocess.Popen(
        [
            "passt",
            "--foreground",
            "--socket",
            socket_path,
            "--no-dhcp",
            "--no-dhcpv6",
            "--no-ndp",
            "--no-ra",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        if os.path.exists(socket_path):
            break
        time.sleep(0.02)
    print("ready", flush=True)
    sys.stdin.read()
    passt.terminate()
    passt.wait()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
