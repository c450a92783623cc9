"""A fake Firecracker: its HTTP API on a unix socket, checked against the documented schema.

No Firecracker binary runs on the machines the project is tested on, so the backend is
tested against this: a real HTTP/1.1 server on a unix socket that accepts exactly the
request bodies Firecracker's swagger (src/firecracker/swagger/firecracker.yaml) describes for
the calls the backend makes, and answers as Firecracker does: 204 with no body, or 400 with
`{"fault_message": "..."}`. It refuses what Firecracker refuses: unknown paths and methods,
unknown or missing fields, wrong types, a path id that differs from the body's, pre-boot
calls after `InstanceStart`, `InstanceStart` without a kernel, `SendCtrlAltDel` before boot,
and host files that do not exist. It boots nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
import socketserver
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

# field -> (type, required); per the swagger definitions the backend uses.
Schema = dict[str, tuple[type, bool]]
MACHINE_CONFIG: Schema = {
    "vcpu_count": (int, True),
    "mem_size_mib": (int, True),
    "smt": (bool, False),
    "track_dirty_pages": (bool, False),
    "cpu_template": (str, False),
    "huge_pages": (str, False),
}
BOOT_SOURCE: Schema = {
    "kernel_image_path": (str, True),
    "boot_args": (str, False),
    "initrd_path": (str, False),
}
DRIVE: Schema = {
    "drive_id": (str, True),
    "is_root_device": (bool, True),
    "is_read_only": (bool, False),
    "path_on_host": (str, False),
    "partuuid": (str, False),
    "cache_type": (str, False),
    "io_engine": (str, False),
}
NETWORK_INTERFACE: Schema = {
    "iface_id": (str, True),
    "host_dev_name": (str, True),
    "guest_mac": (str, False),
    "mtu": (int, False),
}
VSOCK: Schema = {"guest_cid": (int, True), "uds_path": (str, True), "vsock_id": (str, False)}
ACTION: Schema = {"action_type": (str, True)}
ACTIONS = {"FlushMetrics", "InstanceStart", "SendCtrlAltDel"}
_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


class Fault(Exception):
    pass


@dataclass
class FirecrackerState:
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    started: bool = False
    ctrl_alt_del: int = 0
    boot_source: dict[str, Any] | None = None
    machine: dict[str, Any] = field(default_factory=lambda: {"vcpu_count": 1, "mem_size_mib": 128})
    drives: dict[str, dict[str, Any]] = field(default_factory=dict)
    nics: dict[str, dict[str, Any]] = field(default_factory=dict)
    vsock: dict[str, Any] | None = None


def check_body(raw: bytes, schema: Schema) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise Fault(
            f"An error occurred when deserializing the json body of a request: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise Fault(
            "An error occurred when deserializing the json body of a request: not an object"
        )
    for name, value in body.items():
        if name not in schema:
            raise Fault(
                "An error occurred when deserializing the json body of a request: "
                f"unknown field `{name}`"
            )
        kind, _ = schema[name]
        # JSON has no separate bool; Python's bool is an int, which must not pass as one.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise Fault(
                "An error occurred when deserializing the json body of a request: "
                f"invalid type for `{name}`, expected {kind.__name__}"
            )
    for name, (_, required) in schema.items():
        if required and name not in body:
            raise Fault(
                "An error occurred when deserializing the json body of a request: "
                f"missing field `{name}`"
            )
    return body


class FirecrackerApi:
    """The request semantics, separate from HTTP so each rule reads plainly."""

    def __init__(self) -> None:
        self.state = FirecrackerState()
        self.lock = threading.Lock()

    def handle(self, method: str, path: str, raw: bytes) -> None:
        state = self.state
        if method != "PUT":
            raise Fault(f"Invalid request method and/or path: {method} {path}.")
        segments = path.strip("/").split("/")
        route = segments[0]
        if route == "actions" and len(segments) == 1:
            self._action(check_body(raw, ACTION)["action_type"])
            return
        known = {
            "machine-config": 1,
            "boot-source": 1,
            "vsock": 1,
            "drives": 2,
            "network-interfaces": 2,
        }
        if known.get(route) != len(segments):
            raise Fault(f"Invalid request method and/or path: {method} {path}.")
        if state.started:
            raise Fault("The requested operation is not supported after starting the microVM.")
        if route == "machine-config":
            body = check_body(raw, MACHINE_CONFIG)
            if not 1 <= body["vcpu_count"] <= 32:
                raise Fault(
                    "The vCPU number is invalid! The vCPU number can only be 1 or an even "
                    "number when SMT is enabled."
                )
            if body["mem_size_mib"] < 1:
                raise Fault("The memory size (MiB) is invalid.")
            state.machine = body
        elif route == "boot-source":
            body = check_body(raw, BOOT_SOURCE)
            for key in ("kernel_image_path", "initrd_path"):
                if key in body and not Path(body[key]).is_file():
                    raise Fault(
                        f"The {key.split('_')[0]} file cannot be opened: "
                        "No such file or directory (os error 2)"
                    )
            state.boot_source = body
        elif route == "drives":
            body = check_body(raw, DRIVE)
            if body["drive_id"] != segments[1]:
                raise Fault("The id from the path does not match the id from the body!")
            if "path_on_host" not in body or not Path(body["path_on_host"]).is_file():
                raise Fault(
                    "Unable to create the block device: No such file or directory (os error 2)"
                )
            others = [d for i, d in state.drives.items() if i != body["drive_id"]]
            if body["is_root_device"] and any(d["is_root_device"] for d in others):
                raise Fault("A root block device already exists!")
            state.drives[body["drive_id"]] = body
        elif route == "network-interfaces":
            body = check_body(raw, NETWORK_INTERFACE)
            if body["iface_id"] != segments[1]:
                raise Fault("The id from the path does not match the id from the body!")
            if "guest_mac" in body and not _MAC.match(body["guest_mac"]):
                raise Fault(f"Invalid MAC address: {body['guest_mac']}")
            state.nics[body["iface_id"]] = body
        else:
            body = check_body(raw, VSOCK)
            if body["guest_cid"] < 3:
                raise Fault("Invalid guest CID: must be at least 3")
            state.vsock = body

    def _action(self, action: str) -> None:
        state = self.state
        if action not in ACTIONS:
            raise Fault(
                "An error occurred when deserializing the json body of a request: "
                f"unknown variant `{action}`"
            )
        if action == "InstanceStart":
            if state.started:
                raise Fault("The requested operation is not supported after starting the microVM.")
            if state.boot_source is None:
                raise Fault(
                    "Start microVM error: Cannot start microvm without kernel configuration."
                )
            state.started = True
        elif action == "SendCtrlAltDel":
            if not state.started:
                raise Fault("The requested operation is not supported before starting the microVM.")
            state.ctrl_alt_del += 1


class _ApiHandler(BaseHTTPRequestHandler):
    server: _ApiServer
    protocol_version = "HTTP/1.1"

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        api = self.server.api
        with api.lock:
            body: Any = raw.decode("utf-8", "replace")
            with contextlib.suppress(ValueError):
                body = json.loads(raw)
            api.state.calls.append((self.command, self.path, body))
            try:
                api.handle(self.command, self.path, raw)
            except Fault as fault:
                payload = json.dumps({"fault_message": str(fault)}).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_GET = do_PATCH = do_POST = do_DELETE = _any

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ApiServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    api: FirecrackerApi


class FakeFirecracker:
    """`with FakeFirecracker(path) as fc:` serves until the block ends; `fc.state` records."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.api = FirecrackerApi()
        self._server = _ApiServer(str(socket_path), _ApiHandler)
        self._server.api = self.api
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def state(self) -> FirecrackerState:
        return self.api.state

    def __enter__(self) -> FakeFirecracker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.socket_path.unlink(missing_ok=True)
