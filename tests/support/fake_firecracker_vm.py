"""A stand-in for the `firecracker` binary: the fake API, a TAP it opens, a hybrid vsock.

`python -m tests.support.fake_firecracker_vm --api-sock PATH --id NAME` is what
`FirecrackerMachine` starts in place of Firecracker. It serves the checked API of
fake_firecracker.py on PATH; on `InstanceStart` it opens the configured TAP as Firecracker
does (TUNSETIFF on /dev/net/tun: the device must exist and be a TAP) and serves the vsock's
unix socket: `CONNECT 1024\\n` answered `OK <port>\\n`, then a fake guest agent answering
JSON lines; on `SendCtrlAltDel` the "guest" shuts down and the process exits 0, as
Firecracker does when its guest reboots. `FAKE_FC_SILENT=1`: nothing in the guest ever
accepts on the vsock port (each CONNECT is closed, as Firecracker does then).
`FAKE_FC_RECORD` names a JSON file written as it goes: its pid, the API calls, the
guest agent's requests, and what the TAP looked like at `InstanceStart`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import struct
import subprocess
import threading
from pathlib import Path
from typing import Any

from tests.support.fake_firecracker import FakeFirecracker, Fault, FirecrackerApi

_TUNSETIFF = 0x400454CA
_IFF_TAP, _IFF_NO_PI, _IFF_VNET_HDR = 0x0002, 0x1000, 0x4000


class Record:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {"pid": os.getpid(), "ops": [], "tap": None}
        self.lock = threading.Lock()

    def update(self, **values: Any) -> None:
        with self.lock:
            self.data.update(values)
            self._write()

    def op(self, request: dict[str, Any]) -> None:
        with self.lock:
            self.data["ops"].append(request)
            self._write()

    def _write(self) -> None:
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, default=str))
            tmp.replace(self.path)


def open_tap(name: str) -> int:
    """As Firecracker attaches a NIC: a TAP by that name must already exist for us."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        flags = _IFF_TAP | _IFF_NO_PI | _IFF_VNET_HDR
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH22x", name.encode(), flags))
    except OSError as exc:
        os.close(fd)
        raise Fault(f"Open tap device failed: {exc}") from exc
    return fd


def answer(request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    if op == "status":
        return {"ok": True, "roles": {}, "kernel": "fake", "readonly_root": True}
    if op == "connect":
        return {"ok": True, "connected": True, "received": ""}
    if op == "read":
        return {"ok": True, "content": "", "size": 0}
    return {"ok": True}


class GuestVsock:
    def __init__(self, path: Path, record: Record, silent: bool) -> None:
        self.record = record
        self.silent = silent
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as stream:
            if stream.readline() != b"CONNECT 1024\n" or self.silent:
                return  # nothing accepts there: Firecracker closes the connection
            stream.write(b"OK 1073741824\n")
            stream.flush()
            for line in stream:
                request = json.loads(line)
                self.record.op(request)
                stream.write(json.dumps(answer(request)).encode() + b"\n")
                stream.flush()


class VmApi(FirecrackerApi):
    def __init__(self, record: Record, silent: bool, done: threading.Event) -> None:
        super().__init__()
        self.record, self.silent, self.done = record, silent, done
        self.tap_fd: int | None = None
        self.vsock: GuestVsock | None = None

    def handle(self, method: str, path: str, raw: bytes) -> None:
        before = self.state.ctrl_alt_del
        started = self.state.started
        if path == "/actions" and b"InstanceStart" in raw and not started:
            for nic in self.state.nics.values():
                self.tap_fd = open_tap(nic["host_dev_name"])
                self._record_tap(nic["host_dev_name"])
        super().handle(method, path, raw)
        self.record.update(calls=self.state.calls, state=self.state.__dict__)
        if self.state.started and not started and self.state.vsock is not None:
            uds = Path(self.state.vsock["uds_path"])
            self.vsock = GuestVsock(uds, self.record, self.silent)
        if self.state.ctrl_alt_del > before:
            threading.Timer(0.2, self.done.set).start()  # the guest's clean shutdown

    def _record_tap(self, name: str) -> None:
        shown = subprocess.run(["ip", "-j", "-d", "address", "show", name], capture_output=True)
        rules = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True)
        self.record.update(tap=json.loads(shown.stdout or b"[]"), nft=rules.stdout)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-sock", type=Path, required=True)
    parser.add_argument("--id", required=True)
    options = parser.parse_args()
    record_path = os.environ.get("FAKE_FC_RECORD")
    record = Record(Path(record_path) if record_path else None)
    record.update(id=options.id)
    done = threading.Event()
    fake = FakeFirecracker(options.api_sock)
    fake.api = fake._server.api = VmApi(record, os.environ.get("FAKE_FC_SILENT") == "1", done)
    with fake:
        done.wait()
    record.update(exited="clean")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
