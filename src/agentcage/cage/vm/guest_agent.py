"""The guest's init and agent: PID 1 inside the microVM, answering the host on one channel.

Standard library only: it runs under the guest's own python3 from a read-only root, and the
host never imports it (rootfs.py copies this file in). It sets up what the kernel command
line describes (mounts, the secrets drive read-only, the one network interface with static
addressing and IPv6 off), then serves JSON lines on the channel named by
`agentcage.channel=`: a virtio-serial port, or vsock where the monitor offers it.

Requests: `{"op": "status"}` reports what the host checks (kernel release, routes, addresses,
mounts, the secrets' file names); `{"op": "shutdown"}` answers, syncs and reboots, which
ends the VM (both monitors run it so). SIGINT (Ctrl-Alt-Del, Firecracker's `SendCtrlAltDel`)
does the same. If this process fails, the kernel panics and the VM ends: fail closed.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

AGENT_PORT_NAME = "org.agentcage.agent"  # machine.py's, repeated: the host is not imported
AGENT_VSOCK_PORT = 1024
SECRETS_MOUNT = "/run/secrets/agentcage"
_RB_AUTOBOOT = 0x01234567
_RB_DISABLE_CAD = 0
_LABEL_OFFSET = 1024 + 0x78  # ext4 superblock's s_volume_name, 16 bytes


def log(message: str) -> None:
    print(f"agentcage-guest: {message}", file=sys.stderr, flush=True)


def cmdline(text: str | None = None) -> dict[str, str]:
    words = (text if text is not None else Path("/proc/cmdline").read_text()).split()
    return {k: v for k, _, v in (w.partition("=") for w in words) if k.startswith("agentcage.")}


def reboot() -> None:
    os.sync()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.reboot(_RB_AUTOBOOT)
    os._exit(1)  # reboot() returned: the kernel panics on init's exit, which ends the VM too


def mount(kind: str, target: str, options: str = "", source: str | None = None) -> None:
    os.makedirs(target, exist_ok=True)
    argv = ["mount", "-t", kind] + (["-o", options] if options else [])
    subprocess.run([*argv, source or kind, target], check=True)


def device_labelled(label: str, wait: float = 5.0) -> str | None:
    """The drive whose ext4 label is `label`; drives appear asynchronously, so wait a little."""
    end = time.monotonic() + wait
    while True:
        found = _scan_labels(label)
        if found or time.monotonic() > end:
            return found
        time.sleep(0.05)


def _scan_labels(label: str) -> str | None:
    for entry in sorted(Path("/sys/class/block").iterdir()):
        device = Path("/dev") / entry.name
        try:
            with device.open("rb") as handle:
                handle.seek(_LABEL_OFFSET)
                found = handle.read(16).rstrip(b"\0").decode("utf-8", "replace")
        except OSError:
            continue
        if found == label:
            return str(device)
    return None


def setup(options: dict[str, str]) -> None:
    mount("tmpfs", "/run", "nosuid,nodev,mode=0755")
    mount("tmpfs", "/tmp", "nosuid,nodev,mode=1777")
    if "agentcage.secrets" in options:
        device = device_labelled(options["agentcage.secrets"])
        if device is None:
            raise RuntimeError(f"no drive labelled {options['agentcage.secrets']}")
        mount("ext4", SECRETS_MOUNT, "ro,nodev,nosuid,noexec", source=device)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    if "agentcage.net" in options:
        mac, address, *gateway = options["agentcage.net"].split(",")
        name = next(
            entry.name
            for entry in Path("/sys/class/net").iterdir()
            if (entry / "address").read_text().strip() == mac
        )
        subprocess.run(["ip", "address", "add", address, "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        if gateway:
            subprocess.run(["ip", "route", "add", "default", "via", gateway[0]], check=True)


def routes() -> list[str]:
    found = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        iface, dest, gateway, _flags, _, _, _, mask, *_ = line.split()
        found.append(f"{_ip(dest)}/{bin(int(mask, 16)).count('1')} via {_ip(gateway)} dev {iface}")
    six = Path("/proc/net/ipv6_route")
    if six.exists():
        found += [
            f"ipv6 {line.split()[0]} dev {line.split()[-1]}"
            for line in six.read_text().splitlines()
        ]
    return found


def _ip(little_endian_hex: str) -> str:
    return socket.inet_ntoa(int(little_endian_hex, 16).to_bytes(4, "little"))


def status() -> dict[str, Any]:
    secrets = Path(SECRETS_MOUNT)
    mounts = Path("/proc/mounts").read_text().splitlines()
    return {
        "kernel": os.uname().release,
        "routes": routes(),
        "addresses": subprocess.run(
            ["ip", "-o", "address", "show"], capture_output=True, text=True, check=False
        ).stdout.splitlines(),
        "root_read_only": any(
            m.split()[1] == "/" and "ro" in m.split()[3].split(",") for m in mounts
        ),
        "secrets": sorted(p.name for p in secrets.iterdir()) if secrets.is_dir() else None,
        "pid": os.getpid(),
    }


def connect(address: str, port: int, timeout: float) -> dict[str, Any]:
    """A TCP connection from the guest, as the host's checks ask for: what came back first."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            return {"ok": True, "connected": True, "received": conn.recv(256).decode("latin-1")}
    except OSError as exc:
        return {"ok": True, "connected": False, "error": f"{type(exc).__name__}: {exc}"}


def answer(request: bytes) -> tuple[dict[str, Any], bool]:
    try:
        message = json.loads(request)
        op = message["op"]
    except (ValueError, KeyError, TypeError):
        return {"ok": False, "error": "bad request"}, False
    if op == "status":
        return {"ok": True, **status()}, False
    if op == "connect":
        try:
            target = (str(message["address"]), int(message["port"]), float(message["timeout"]))
        except (KeyError, TypeError, ValueError):
            return {"ok": False, "error": "connect needs address, port and timeout"}, False
        return connect(*target), False
    if op == "shutdown":
        return {"ok": True}, True
    return {"ok": False, "error": f"unknown op {op!r}"}, False


def serial_port() -> str:
    for _ in range(200):
        for entry in Path("/sys/class/virtio-ports").glob("*"):
            if (entry / "name").read_text().strip() == AGENT_PORT_NAME:
                return f"/dev/{entry.name}"
        time.sleep(0.05)
    raise RuntimeError(f"no virtio-serial port named {AGENT_PORT_NAME}")


def serve_serial() -> None:
    fd = os.open(serial_port(), os.O_RDWR)
    pending = b""
    while True:
        readable, _, _ = select.select([fd], [], [], 1.0)
        if not readable:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:  # the host side is not connected: wait for it
            time.sleep(0.1)
            continue
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            reply, stop = answer(line)
            os.write(fd, json.dumps(reply).encode() + b"\n")
            if stop:
                reboot()


def serve_vsock() -> None:
    server = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    server.bind((socket.VMADDR_CID_ANY, AGENT_VSOCK_PORT))
    server.listen(4)
    while True:
        conn, _ = server.accept()
        with conn, conn.makefile("rwb") as stream:
            for line in stream:
                reply, stop = answer(line)
                stream.write(json.dumps(reply).encode() + b"\n")
                stream.flush()
                if stop:
                    reboot()


def main() -> None:
    options = cmdline()
    # Ctrl-Alt-Del becomes SIGINT to init instead of an immediate reboot: a clean shutdown.
    ctypes.CDLL(None).reboot(_RB_DISABLE_CAD)
    signal.signal(signal.SIGINT, lambda *_: reboot())
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    setup(options)
    log("ready")
    if options.get("agentcage.channel") == "vsock":
        serve_vsock()
    else:
        serve_serial()


if __name__ == "__main__":
    try:
        main()
    except BaseException as exc:  # PID 1 must not linger half set up: panic ends the VM
        log(f"failed: {exc!r}")
        raise SystemExit(1) from exc
