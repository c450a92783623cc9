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

try:
    from agentcage.cage.vm import guest_sandbox  # on the host (tests), the package's copy
except ImportError:  # in the guest, rootfs.py put it beside this file (and -I left it off)
    sys.path.insert(0, str(Path(__file__).parent))
    import guest_sandbox  # type: ignore[no-redef,import-not-found]

AGENT_PORT_NAME = "org.agentcage.agent"  # machine.py's, repeated: the host is not imported
AGENT_VSOCK_PORT = 1024
SECRETS_MOUNT = "/run/secrets/agentcage"
# The only place the host may write, read and run roles from: a tmpfs under /run.
RUN_ROOT = Path("/run/agentcage")
_READ_LIMIT = 1 << 20
ROLES: dict[str, subprocess.Popen[bytes]] = {}
_RB_AUTOBOOT = 0x01234567
_RB_DISABLE_CAD = 0
_LABEL_OFFSET = 1024 + 0x78  # ext4 superblock's s_volume_name, 16 bytes
# Default deny (docs/transparent.md): the cage's steering module, run here as root
# where container mode enters the namespaces with `nsenter`, keeping NET_ADMIN alone.
STEERING = ("/opt/agentcage/bin/python", "-m", "agentcage.cage.steering")


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
    RUN_ROOT.mkdir(mode=0o755)
    mount("tmpfs", "/tmp", "nosuid,nodev,mode=1777")
    if "agentcage.secrets" in options:
        device = device_labelled(options["agentcage.secrets"])
        if device is None:
            raise RuntimeError(f"no drive labelled {options['agentcage.secrets']}")
        _secrets_from(device)
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


def _secrets_from(device: str) -> None:
    """The drive's secrets, copied into a tmpfs at SECRETS_MOUNT, and the drive let go.

    In guest memory only, as on the drive: one 0400 file per secret, owned by the proxy's
    user. A tmpfs rather than the drive itself, so that `secret set` on a running cage can
    replace a value (`set_secret`) without a new drive and a restart.
    """
    staging = "/run/.secrets-drive"
    mount("ext4", staging, "ro,nodev,nosuid,noexec", source=device)
    mount("tmpfs", SECRETS_MOUNT, "nodev,nosuid,noexec,mode=0755,size=1m")
    for entry in Path(staging).iterdir():
        if entry.is_file() and not entry.is_symlink():
            info = entry.stat()
            _write_secret(entry.name, entry.read_text(), info.st_uid)
    subprocess.run(["umount", staging], check=True)
    os.rmdir(staging)


def _write_secret(name: str, value: str, uid: int) -> None:
    target = Path(SECRETS_MOUNT) / name
    temporary = target.with_name(f".{name}.new")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    os.chown(temporary, uid, uid)
    temporary.rename(target)


def set_secret(message: dict[str, Any]) -> dict[str, Any]:
    """`secret set` / `secret rm` on a running cage: the value (None removes it)."""
    name = str(message["name"])
    if not name.isidentifier() or not name.isascii():
        return {"ok": False, "error": f"{name!r} is not a secret name"}
    if message.get("value") is None:
        (Path(SECRETS_MOUNT) / name).unlink(missing_ok=True)
    else:
        _write_secret(name, str(message["value"]), int(message["uid"]))
    return {"ok": True}


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
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
        "roles": {name: process.poll() for name, process in ROLES.items()},
    }


def connect(address: str, port: int, timeout: float, send: str = "") -> dict[str, Any]:
    """A TCP connection from the guest, as the host's checks ask for: what came back first.

    A server that sends nothing within `timeout` still counts as connected.
    """
    try:
        conn = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        return {"ok": True, "connected": False, "error": f"{type(exc).__name__}: {exc}"}
    with conn:
        try:
            if send:
                conn.sendall(send.encode("latin-1"))
            received = conn.recv(4096).decode("latin-1")
        except OSError:
            received = ""
    return {"ok": True, "connected": True, "received": received}


def confined(relative: str) -> Path:
    """`relative` under RUN_ROOT, after symlinks: a role cannot point the host elsewhere."""
    path = (RUN_ROOT / relative).resolve()
    if path != RUN_ROOT and RUN_ROOT not in path.parents:
        raise ValueError(f"{relative!r} is not under {RUN_ROOT}")
    return path


def make_dir(message: dict[str, Any]) -> dict[str, Any]:
    path = confined(str(message["path"]))
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, int(message["uid"]), int(message["uid"]))
    path.chmod(int(message["mode"]))
    return {"ok": True}


def write_file(message: dict[str, Any]) -> dict[str, Any]:
    path = confined(str(message["path"]))
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    fd = os.open(path, flags, int(message["mode"]))
    with os.fdopen(fd, "w") as handle:
        handle.write(str(message["content"]))
    os.chown(path, int(message["uid"]), int(message["uid"]))
    return {"ok": True}


def read_file(message: dict[str, Any]) -> dict[str, Any]:
    """Up to 1 MiB from byte `offset` (default 0), and the file's size (for followers)."""
    path = confined(str(message["path"]))
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(min(int(message.get("offset", 0)), size))
        content = handle.read(_READ_LIMIT).decode("utf-8", "replace")
        return {"ok": True, "content": content, "size": size}


def start_role(message: dict[str, Any]) -> dict[str, Any]:
    """A role's process (the host renders its argv from the same contract as the units)."""
    name = str(message["name"])
    if not name.isidentifier() or (name in ROLES and ROLES[name].poll() is None):
        return {"ok": False, "error": f"role {name!r} is running or not a plain name"}
    logs = RUN_ROOT / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # With a sandbox, the role is confined as its container would be (guest_sandbox.py);
    # without one (tests of the bare roles), it runs as a uid only.
    sandbox = message.get("sandbox")
    uid = int(message["uid"]) if sandbox is None else None
    with (logs / f"{name}.log").open("ab") as log:
        ROLES[name] = subprocess.Popen(
            [str(word) for word in message["argv"]],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            user=uid,
            group=uid,
            extra_groups=[] if uid is not None else None,
            env={str(k): str(v) for k, v in message.get("env", {}).items()},
            cwd="/",
            preexec_fn=(lambda: guest_sandbox.confine(sandbox)) if sandbox is not None else None,
        )
    return {"ok": True, "pid": ROLES[name].pid}


def mount_drive(message: dict[str, Any]) -> dict[str, Any]:
    """A drive by its label under RUN_ROOT: read-only (the agent's root), or writable (a
    named volume; `noinit_itable`: its sparse image's inode tables are zeros already and
    zeroing them again would fill the host's disk)."""
    device = device_labelled(str(message["label"]))
    if device is None:
        return {"ok": False, "error": f"no drive labelled {message['label']}"}
    options = "rw,nodev,nosuid,noinit_itable" if message.get("writable") else "ro,nodev,nosuid"
    mount("ext4", str(confined(str(message["path"]))), options, source=device)
    return {"ok": True}


def mount_share(message: dict[str, Any]) -> dict[str, Any]:
    """A virtiofs share by its tag under RUN_ROOT, writable (the agent's workspace)."""
    tag = str(message["tag"])
    if not tag or not all(c.isalnum() or c == "-" for c in tag):
        return {"ok": False, "error": f"bad virtiofs tag {tag!r}"}
    mount("virtiofs", str(confined(str(message["path"]))), "rw,nodev,nosuid", source=tag)
    return {"ok": True}


def signal_role(message: dict[str, Any]) -> dict[str, Any]:
    """SIGHUP (a sidecar re-reads its config, `cage reload`) or SIGTERM to a running role."""
    name, number = str(message["name"]), int(message["signal"])
    process = ROLES.get(name)
    if number not in (signal.SIGHUP, signal.SIGTERM) or process is None:
        return {"ok": False, "error": f"no running role {name!r} or signal {number} not allowed"}
    if process.poll() is not None:
        return {"ok": False, "error": f"role {name!r} exited {process.returncode}"}
    process.send_signal(number)
    return {"ok": True}


def steer(message: dict[str, Any]) -> dict[str, Any]:
    """Default deny: `proxy` in the guest's namespace (the sidecars'), `agent` in the agent's.

    Only the steering module, only with addresses, ports and its `--dns` option as words.
    """
    role, words = str(message["role"]), [str(word) for word in message["args"]]
    plain = all(w == "--dns" or w.replace(".", "").isdigit() for w in words)
    netns = str(message.get("netns", ""))
    if role not in ("proxy", "agent") or not plain or not (netns.isidentifier() or role == "proxy"):
        return {"ok": False, "error": f"steering {role!r} {words!r} is not one the host may ask"}
    inside = ["ip", "netns", "exec", netns] if role == "agent" else []
    # This process has the initramfs's PATH (/bin); `nft` is in /usr/sbin.
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    done = subprocess.run(
        [*inside, *STEERING, role, *words], capture_output=True, text=True, check=False, env=env
    )
    if done.returncode:
        return {"ok": False, "error": (done.stderr or done.stdout).strip()[-500:]}
    return {"ok": True}


_OPS = {
    "mkdir": make_dir,
    "write": write_file,
    "read": read_file,
    "start": start_role,
    "drive": mount_drive,
    "share": mount_share,
    "netns": guest_sandbox.agent_network,
    "sysctl": guest_sandbox.set_sysctl,
    "signal": signal_role,
    "secret": set_secret,
    "steer": steer,
}


def answer(request: bytes) -> tuple[dict[str, Any], bool]:
    try:
        message = json.loads(request)
        op = message["op"]
    except (ValueError, KeyError, TypeError):
        return {"ok": False, "error": "bad request"}, False
    if op == "status":
        return {"ok": True, **status()}, False
    if op in _OPS:
        try:
            return _OPS[op](message), False
        except (KeyError, TypeError, ValueError, OSError, subprocess.CalledProcessError) as exc:
            return {"ok": False, "error": f"{op}: {type(exc).__name__}: {exc}"}, False
    if op == "connect":
        try:
            target = (str(message["address"]), int(message["port"]), float(message["timeout"]))
        except (KeyError, TypeError, ValueError):
            return {"ok": False, "error": "connect needs address, port and timeout"}, False
        return connect(*target, send=str(message.get("send", ""))), False
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
