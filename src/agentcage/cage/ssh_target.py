"""A Linux host reached over SSH where cages run: systemd and Podman are there, not here.

`SshTarget` is the recorded description (`agentcage host add NAME ssh://user@host:port`,
or a Podman machine, whose `podman machine inspect` gives the same facts). `SshRunner`
runs each command there: argv is quoted into one remote command line, and one master
connection per target (ControlMaster, kept 2 minutes) carries every command, so a command
costs a round trip instead of a handshake.

Host keys: `host add` trusts the key it first sees and keeps it in agentcage's own
known_hosts (printing its fingerprint); every later connection requires that same key.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from agentcage.cage.podman import DEFAULT_TIMEOUT, Completed, SubprocessRunner, failure
from agentcage.errors import ConfigError, HostError, PodmanError, UnreachableError

# ssh's own exit status for "the connection failed" (a remote command's is passed through).
SSH_FAILED = 255
CONTROL_PERSIST = "120"
CONNECT_TIMEOUT = "10"
# A target that stops answering without closing the connection (a paused VM, a laptop
# asleep, a dropped VPN) is noticed by nothing else: its kernel (or a NAT) may still
# acknowledge TCP, so keepalives pass, and the master, with every session on it (an
# `audit --follow`), would wait forever. ssh's own probe needs sshd to answer: after
# this many seconds times this many unanswered ones, the master ends, and so does each
# of its sessions (exit 255: `UnreachableError` naming the target).
SERVER_ALIVE_INTERVAL = "10"
SERVER_ALIVE_COUNT = "3"


@dataclass(frozen=True)
class SshTarget:
    """One remote host: where to connect, and what `host add` learned about it."""

    name: str
    user: str
    host: str
    port: int = 22
    identity: Path | None = None
    # The Podman machine this came from (`host add --podman-machine`), for messages.
    machine: str | None = None
    # Learned at `host add`: the remote user's uid and home (rootless Podman when uid != 0).
    uid: int = 0
    home: str = "/root"
    cgroup_v2: bool = True

    @property
    def address(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"

    @property
    def rootless(self) -> bool:
        return self.uid != 0

    @property
    def state_root(self) -> Path:
        """Where the target keeps the cages' state files the containers mount."""
        return Path(self.home) / ".local/share/agentcage/cages"

    @property
    def quadlet_dir(self) -> Path:
        if self.rootless:
            return Path(self.home) / ".config/containers/systemd"
        return Path("/etc/containers/systemd")

    @property
    def systemd_dir(self) -> Path:
        if self.rootless:
            return Path(self.home) / ".config/systemd/user"
        return Path("/etc/systemd/system")

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": "podman-machine" if self.machine else "ssh",
            "user": self.user,
            "host": self.host,
            "port": self.port,
            "identity": str(self.identity) if self.identity else None,
            "machine": self.machine,
            "uid": self.uid,
            "home": self.home,
            "cgroup_v2": self.cgroup_v2,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SshTarget:
        identity = data.get("identity")
        machine = data.get("machine")
        return cls(
            name=str(data["name"]),
            user=str(data["user"]),
            host=str(data["host"]),
            port=int(str(data["port"])),
            identity=Path(str(identity)) if identity else None,
            machine=str(machine) if machine else None,
            uid=int(str(data.get("uid", 0))),
            home=str(data.get("home", "/root")),
            cgroup_v2=bool(data.get("cgroup_v2", True)),
        )


def parse_address(name: str, url: str, identity: Path | None = None) -> SshTarget:
    """`ssh://user@host[:port]` -> a target (not yet probed: uid and home are defaults)."""
    parts = urlsplit(url)
    try:
        port = parts.port or 22
    except ValueError as exc:
        raise ConfigError(f"{url}: {exc}") from exc
    if parts.scheme != "ssh" or not parts.hostname or not parts.username:
        raise ConfigError(
            f"{url!r} is not an SSH address",
            hint="write it as ssh://user@host or ssh://user@host:port",
        )
    if parts.path not in ("", "/") or parts.query or parts.password:
        raise ConfigError(f"{url!r}: only ssh://user@host:port is understood")
    return SshTarget(name, parts.username, parts.hostname, port, identity)


def socket_dir(environ: Mapping[str, str] | None = None) -> Path:
    """This user's private directory for ssh's connection sockets.

    Not the config directory: a Unix socket's path has a 108-byte limit, and ssh adds 57
    characters to the directory (`%C` and a temporary suffix). $XDG_RUNTIME_DIR is
    private by definition; the shared temporary directory is checked to be ours and 0700.
    """
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR", "")
    base = Path(runtime) if os.path.isabs(runtime) else Path(tempfile.gettempdir())
    directory = base / f"agentcage-ssh-{os.getuid()}"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        info = directory.lstat()
    except OSError as exc:
        raise HostError(f"cannot make {directory} for ssh's sockets: {exc.strerror}") from exc
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise HostError(
            f"{directory} is not a private directory of this user: another user could "
            "take over its SSH connections",
            hint=f"remove {directory}",
        )
    return directory


def ssh_argv(
    target: SshTarget, config_dir: Path, sockets: Path, *, first_contact: bool = False
) -> tuple[str, ...]:
    """The ssh command line that runs one command on `target` (append the command)."""
    known = config_dir / "known_hosts"
    argv = [
        "ssh", "-p", str(target.port),
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
        "-o", f"UserKnownHostsFile={known}",
        "-o", f"StrictHostKeyChecking={'accept-new' if first_contact else 'yes'}",
        "-o", "ControlMaster=auto",
        "-o", f"ControlPath={sockets}/%C",
        "-o", f"ControlPersist={CONTROL_PERSIST}",
        "-o", f"ServerAliveInterval={SERVER_ALIVE_INTERVAL}",
        "-o", f"ServerAliveCountMax={SERVER_ALIVE_COUNT}",
        "-o", "LogLevel=ERROR",
    ]  # fmt: skip
    if target.identity is not None:
        argv += ["-i", str(target.identity), "-o", "IdentitiesOnly=yes"]
    return (*argv, f"{target.user}@{target.host}", "--")


def host_key_fingerprint(config_dir: Path, target: SshTarget) -> str:
    """The recorded key's fingerprint, as `ssh-keygen -l` prints it ("" if none)."""
    entry = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
    known = config_dir / "known_hosts"
    result = SubprocessRunner().run(
        ["ssh-keygen", "-l", "-F", entry, "-f", str(known)], check=False
    )
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith("#")]
    return lines[0].split(" ", 1)[-1] if lines else ""


def connection_hint(target: SshTarget, stderr: str) -> str:
    """What to check, from what ssh said."""
    where = f"{target.user}@{target.host} port {target.port}"
    if "IDENTIFICATION HAS CHANGED" in stderr or "Host key verification failed" in stderr:
        return (
            f"the host key of {target.host} is not the one recorded at `host add`; if it "
            f"changed on purpose: `agentcage host rm {target.name}` and add it again"
        )
    if "Permission denied" in stderr:
        key = f"the identity {target.identity}" if target.identity else "your SSH agent's keys"
        return f"{where} refused {key}: is the public key in the user's authorized_keys?"
    if "Connection refused" in stderr:
        return f"nothing listens on {where}: is sshd running, and is the port right?"
    # A forwarded port (QEMU's, a Podman machine's gvproxy) accepts the connection itself
    # and drops it when nothing answers in the VM, so ssh never sees "refused".
    if "kex_exchange_identification" in stderr or "reset by peer" in stderr:
        return (
            f"{where} accepts connections but no SSH server answers: is sshd running there, "
            "and is the VM behind a forwarded port up?"
        )
    if "timed out" in stderr or "No route" in stderr or "Could not resolve" in stderr:
        return f"{target.host} cannot be reached: is it up, and is the address right?"
    if target.machine:
        return f"is the Podman machine running? `podman machine start {target.machine}`"
    return f"check that `ssh -p {target.port} {target.user}@{target.host}` works"


@dataclass
class SshRunner:
    """A `Runner` whose commands run on `target` over SSH."""

    target: SshTarget
    # known_hosts lives here (agentcage's config directory's ssh/).
    config_dir: Path
    first_contact: bool = False
    local: SubprocessRunner = field(default_factory=SubprocessRunner)
    # Connection sockets; default `socket_dir()`.
    sockets: Path | None = None

    @property
    def prefix(self) -> tuple[str, ...]:
        sockets = self.sockets or socket_dir()
        return ssh_argv(self.target, self.config_dir, sockets, first_contact=self.first_contact)

    def remote(self, argv: Sequence[str]) -> tuple[str, ...]:
        """The local argv that runs `argv` there (ssh joins its arguments into a shell line)."""
        self.config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return (*self.prefix, shlex.join(argv))

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Completed:
        result = self.local.run(self.remote(argv), input=input, check=False, timeout=timeout)
        shown = Completed(tuple(argv), result.returncode, result.stdout, result.stderr)
        self.raise_unreachable(result.returncode, result.stderr)
        if check and not shown.ok:
            raise self.failed(shown)
        return shown

    def stream(self, argv: Sequence[str], on_line: Callable[[str], None]) -> None:
        self.local.stream(self.remote(argv), on_line)

    def pipe(self, source: Sequence[str], argv: Sequence[str], timeout: float = 1800) -> None:
        """Run local `source` and feed its output to `argv` there (`podman save | load`)."""
        with subprocess.Popen(source, stdout=subprocess.PIPE) as producer:
            sink = subprocess.run(
                self.remote(argv), stdin=producer.stdout, capture_output=True, timeout=timeout
            )
            producer.wait()
        stderr = sink.stderr.decode(errors="replace")
        self.raise_unreachable(sink.returncode, stderr)
        if producer.returncode != 0 or sink.returncode != 0:
            raise PodmanError(
                f"`{shlex.join(source)} | {shlex.join(argv)}` on {self.target.name} failed: "
                f"{stderr.strip()[-1000:] or f'exit {producer.returncode}'}"
            )

    def send(self, data: bytes, argv: Sequence[str]) -> Completed:
        """Run `argv` there with `data` on its stdin (files travel inside the SSH channel)."""
        proc = subprocess.run(self.remote(argv), input=data, capture_output=True, timeout=300)
        stderr = proc.stderr.decode(errors="replace")
        self.raise_unreachable(proc.returncode, stderr)
        return Completed(tuple(argv), proc.returncode, "", stderr)

    def receive(self, argv: Sequence[str]) -> bytes:
        """Run `argv` there and return its output as bytes (`tar -c` of audit logs)."""
        proc = subprocess.run(self.remote(argv), capture_output=True, timeout=300)
        stderr = proc.stderr.decode(errors="replace")
        self.raise_unreachable(proc.returncode, stderr)
        if proc.returncode != 0:
            raise self.failed(Completed(tuple(argv), proc.returncode, "", stderr))
        return proc.stdout

    def control(self, *words: str) -> tuple[str, ...]:
        """The local argv that asks the master connection `ssh -O WORDS` (no remote command)."""
        *options, destination, _ = self.prefix
        return (*options, "-O", *words, destination)

    def forward_socket(self, local: Path, remote: Path) -> None:
        """Have the master forward Unix socket `local` here to `remote` there (`-O forward`).

        The master listens on `local` (ssh refuses a path that exists, so a fresh one) and
        connects to `remote` there for each connection: no TCP port on either side.
        """
        argv = self.control("forward", "-L", f"{local}:{remote}")
        result = self.local.run(argv, check=False)
        self.raise_unreachable(result.returncode, result.stderr)
        if not result.ok:
            raise HostError(
                f"host target {self.target.name}: ssh could not forward {remote}: "
                f"{result.stderr.strip()[-500:]}",
                hint="the target's sshd must allow it (AllowStreamLocalForwarding yes, the "
                "default)",
            )

    def cancel_forward(self, local: Path, remote: Path) -> None:
        """Undo `forward_socket` (best effort: the master also drops it when it exits)."""
        self.local.run(self.control("cancel", "-L", f"{local}:{remote}"), check=False)

    def raise_unreachable(self, returncode: int, stderr: str) -> None:
        if returncode != SSH_FAILED:
            return
        raise UnreachableError(
            f"cannot reach host target {self.target.name} ({self.target.address}): "
            f"{stderr.strip()[-500:] or 'ssh failed'}",
            hint=connection_hint(self.target, stderr),
        )

    def failed(self, result: Completed) -> PodmanError:
        error = failure(result)
        if result.returncode == 127 and "podman" in result.stderr:
            error.hint = f"install Podman (4.4 or newer) on {self.target.host}"
        error.message = f"on host target {self.target.name}: {error.message}"
        return error
