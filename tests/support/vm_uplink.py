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

Given a RECORD path as well, it is also the cage's fake internet behind the gateway: a DNS
server on port 53 that answers every A question with the gateway's address, and an HTTP
server on port 80 that writes each request's head to RECORD and echoes it as the body.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import dns.message
import dns.rdatatype
import dns.rrset

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


def serve_dns() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    while True:
        wire, peer = server.recvfrom(4096)
        query = dns.message.from_wire(wire)
        reply = dns.message.make_response(query)
        question = query.question[0]
        if question.rdtype == dns.rdatatype.A:
            reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", GATEWAY))
        server.sendto(reply.to_wire(), peer)


def serve_http(record: str) -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 80))
    server.listen()
    while True:
        conn, _ = server.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
            with open(record, "ab") as out:
                out.write(head)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                + f"Content-Length: {len(head)}\r\n\r\n".encode()
                + head
            )


def main(socket_path: str, port: int, record: str | None = None) -> None:
    for argv in (
        ["ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1"],
        ["ip", "link", "set", "up1", "up"],
        ["ip", "address", "add", GUEST_ADDRESS, "dev", "up0"],
        ["ip", "link", "set", "up0", "up"],
        ["ip", "route", "add", "default", "via", GATEWAY],
    ):
        subprocess.run(argv, check=True)
    threading.Thread(target=serve, args=(port,), daemon=True).start()
    if record is not None:
        threading.Thread(target=serve_dns, daemon=True).start()
        threading.Thread(target=serve_http, args=(record,), daemon=True).start()
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
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:4])
