"""Files where a cage's containers run: unit files, and the state files they mount.

Each kind of host target has its own way to put them there:

    LocalFiles   this machine, or a host container that mounts the same paths: the
                 files are written in place and nothing travels.
    RemoteFiles  an SSH target: unit files are written through the SSH channel
                 (`cat > FILE` on stdin); the state files the containers mount (sidecar
                 config, CA, upstream CA) travel as a tar stream into a copy of the
                 cage's state directory on the target (`SshTarget.state_root/<cage>`);
                 images built here are loaded there when the target lacks their exact
                 ID; audit logs come back the same way for `agentcage audit`.

Real secret values never pass through here: they go into `podman secret create` on stdin.
"""

from __future__ import annotations

import io
import shlex
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Protocol, TypeVar

from agentcage.atomicfile import write_atomic_all
from agentcage.cage.podman import Runner, SubprocessRunner
from agentcage.cage.ssh_target import SshRunner, socket_dir
from agentcage.errors import PodmanError

# Read by the containers (the rest of the state directory stays on this machine).
MOUNTED = ("sidecar", "ca", "ca-public", "upstream-ca")
# Written by the containers, made empty before they are mounted (layout.prepare_sidecar_dirs).
_PRIVATE_DIRS = ("audit/proxy", "audit/dns", "fingerprints")
_METRICS_DIRS = ("metrics/proxy", "metrics/dns")
Paths = TypeVar("Paths")


class HostFiles(Protocol):
    def target_path(self, local: Path) -> Path: ...

    def write(self, path: Path, text: str, mode: int) -> None: ...

    def write_all(self, texts: dict[Path, str], mode: int) -> None: ...

    def unlink(self, paths: Sequence[Path]) -> None: ...

    def read_matching(self, directory: Path, prefix: str) -> dict[Path, str]: ...

    def publish(self, state_dir: Path, images: Sequence[str]) -> None: ...

    def collect(self, state_dir: Path) -> None: ...

    def drop(self, state_dir: Path) -> None: ...

    def reach_sockets(self, paths: Sequence[Path]) -> AbstractContextManager[SocketPaths]: ...


# A host path of a Unix socket -> where this process connects to it (None: no socket there).
SocketPaths = dict[Path, Path | None]


def on_target(files: HostFiles, paths: Paths) -> Paths:
    """A dataclass of host paths (layout.HostPaths) with each path moved to the target."""
    moved = {f.name: files.target_path(getattr(paths, f.name)) for f in fields(paths)}  # type: ignore[arg-type]
    return replace(paths, **moved)  # type: ignore[type-var]


class LocalFiles:
    """Units and state files where this process can write them directly."""

    def target_path(self, local: Path) -> Path:
        return local

    def write(self, path: Path, text: str, mode: int) -> None:
        self.write_all({path: text}, mode)

    def write_all(self, texts: dict[Path, str], mode: int) -> None:
        """Each file as `write` would, their fsyncs at once (`write_atomic_all`)."""
        for path in texts:
            path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic_all([(path, text, mode) for path, text in texts.items()])

    def unlink(self, paths: Sequence[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    def read_matching(self, directory: Path, prefix: str) -> dict[Path, str]:
        if not directory.is_dir():
            return {}
        return {path: _read(path) for path in sorted(directory.glob(f"{prefix}*"))}

    def publish(self, state_dir: Path, images: Sequence[str]) -> None:
        """Nothing to do: the containers mount the state directory itself."""

    def collect(self, state_dir: Path) -> None:
        """Nothing to do: the audit logs are written here."""

    def drop(self, state_dir: Path) -> None:
        """Nothing to do: the state directory is the only copy."""

    @contextmanager
    def reach_sockets(self, paths: Sequence[Path]) -> Iterator[SocketPaths]:
        """The sockets are here: each is reached at its own path."""
        yield {path: path for path in paths}


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# Every regular file whose name starts with $2 in directory $1: NUL, name, NUL, content.
_LIST = 'for f in "$1"/"$2"*; do [ -f "$f" ] || continue; printf "\\0%s\\0" "$f"; cat "$f"; done'
# Which of the paths $@ are sockets there: one y or n per path.
_SOCKETS = 'for s; do if [ -S "$s" ]; then echo y; else echo n; fi; done'
_WRITE = (
    'mkdir -p "${1%/*}" && cat > "$1.agentcage-tmp" && chmod "$2" "$1.agentcage-tmp" '
    '&& mv "$1.agentcage-tmp" "$1"'
)


@dataclass
class RemoteFiles:
    """Files on an SSH target, moved through the runner's SSH channel."""

    runner: SshRunner
    local_root: Path  # StateStore.deployments on this machine
    local: Runner = field(default_factory=SubprocessRunner)
    progress: Callable[[str], None] = lambda _: None

    @property
    def remote_root(self) -> Path:
        return self.runner.target.state_root

    def target_path(self, local: Path) -> Path:
        try:
            return self.remote_root / local.relative_to(self.local_root)
        except ValueError:
            return local  # a bind mount the config names: a path on the target already

    def write(self, path: Path, text: str, mode: int) -> None:
        argv = ["sh", "-c", _WRITE, "sh", str(path), f"{mode:o}"]
        result = self.runner.send(text.encode(), argv)
        if not result.ok:
            raise self.runner.failed(result)

    def write_all(self, texts: dict[Path, str], mode: int) -> None:
        for path, text in texts.items():
            self.write(path, text, mode)

    def unlink(self, paths: Sequence[Path]) -> None:
        if paths:
            self.runner.run(["rm", "-f", "--", *map(str, paths)])

    def read_matching(self, directory: Path, prefix: str) -> dict[Path, str]:
        listed = self.runner.run(["sh", "-c", _LIST, "sh", str(directory), prefix], check=False)
        parts = listed.stdout.split("\0")[1:]
        return {Path(name): text for name, text in zip(parts[::2], parts[1::2], strict=False)}

    def publish(self, state_dir: Path, images: Sequence[str]) -> None:
        """The mounted state files into the target's copy, then the images it lacks.

        Directories stay (running containers mount them); files in them are replaced,
        as `write_atomic` replaces them locally.
        """
        remote = self.target_path(state_dir)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for name in MOUNTED:
                if (state_dir / name).exists():
                    tar.add(state_dir / name, arcname=name)
        private = " ".join(shlex.quote(d) for d in _PRIVATE_DIRS)
        script = (
            f'mkdir -p -m 700 "$1" && cd "$1" && mkdir -p -m 700 {private} && '
            "for d in " + " ".join(_METRICS_DIRS) + '; do [ -d "$d" ] || { mkdir -p "$d" && '
            'chmod 711 "$d"; }; done && tar -x -p --no-same-owner -f -'
        )
        result = self.runner.send(archive.getvalue(), ["sh", "-c", script, "sh", str(remote)])
        if not result.ok:
            raise self.runner.failed(result)
        self.provide_images(images)

    def provide_images(self, refs: Sequence[str]) -> None:
        """Load each image the target lacks (compared by image ID) from this machine."""
        refs = list(dict.fromkeys(refs))
        here = _image_ids(self.local, refs)
        there = _image_ids(self.runner, refs)
        missing = [ref for ref in refs if ref in here and here[ref] != there.get(ref)]
        if not missing:
            return
        self._check_arch(missing)
        save = ["podman", "save", *(["-m"] if len(missing) > 1 else []), *missing]
        self.progress(f"copying {len(missing)} image(s) to {self.runner.target.name} ...")
        started = time.monotonic()
        self.runner.pipe(save, ["podman", "load", "-q"])
        self.progress(f"  copied in {time.monotonic() - started:.0f}s (podman save | podman load)")

    def _check_arch(self, refs: Sequence[str]) -> None:
        """Images are built on this machine for its own architecture (images.py); one
        that cannot run on the target is refused before anything is copied."""
        built = {_image_arch(self.local, ref) for ref in refs} - {""}
        info = ["podman", "info", "--format", "{{.Host.Arch}}"]
        there = self.runner.run(info, check=False).stdout.strip()
        wrong = sorted(arch for arch in built if there and arch != there)
        if wrong:
            raise PodmanError(
                f"the cage's images are built here for {', '.join(wrong)}, and "
                f"{self.runner.target.name} runs {there}: they cannot run there",
                hint=f"create the cage from a machine that is {there} too (agentcage builds "
                "the images where it runs), or destroy it here and create it on the target",
            )

    def collect(self, state_dir: Path) -> None:
        """Bring the target's audit logs into this machine's state directory."""
        remote = self.target_path(state_dir)
        script = 'cd "$1" 2>/dev/null && [ -d audit ] && tar -c audit || true'
        data = self.runner.receive(["sh", "-c", script, "sh", str(remote)])
        if not data:
            return
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(state_dir, filter="data")

    def drop(self, state_dir: Path) -> None:
        remote = str(self.target_path(state_dir))
        # Rootless `:U` mounts chowned parts to sub-UIDs only the user namespace can remove.
        rm = ["podman", "unshare", "rm", "-rf"] if self.runner.target.rootless else ["rm", "-rf"]
        self.runner.run([*rm, "--", remote])
        if self.runner.run(["test", "-e", remote], check=False).ok:
            raise PodmanError(f"could not remove {remote} on host target {self.runner.target.name}")

    @contextmanager
    def reach_sockets(self, paths: Sequence[Path]) -> Iterator[SocketPaths]:
        """Each socket there (`paths` are this machine's; moved to the target's copy),
        forwarded over the master connection to a fresh socket in a private directory
        here for the duration; None for one that is not there. The forwards are
        cancelled and the local sockets removed after."""
        remote = {path: self.target_path(path) for path in paths}
        argv = ["sh", "-c", _SOCKETS, "sh", *map(str, remote.values())]
        present = self.runner.run(argv).stdout.split()
        here = Path(tempfile.mkdtemp(prefix="fwd-", dir=self.runner.sockets or socket_dir()))
        forwarded: list[tuple[Path, Path]] = []
        reached: SocketPaths = {}
        try:
            for index, (path, there) in enumerate(remote.items()):
                if index >= len(present) or present[index] != "y":
                    reached[path] = None
                    continue
                local = here / f"{index}.sock"
                self.runner.forward_socket(local, there)
                forwarded.append((local, there))
                reached[path] = local
            yield reached
        finally:
            for local, there in forwarded:
                self.runner.cancel_forward(local, there)
            shutil.rmtree(here, ignore_errors=True)


def _image_arch(runner: Runner, ref: str) -> str:
    shown = runner.run(
        ["podman", "image", "inspect", "--format", "{{.Architecture}}", ref], check=False
    )
    return shown.stdout.strip() if shown.ok else ""


def _image_ids(runner: Runner, refs: Sequence[str]) -> dict[str, str]:
    ids = {}
    for ref in refs:
        shown = runner.run(["podman", "image", "inspect", "--format", "{{.Id}}", ref], check=False)
        if shown.ok and shown.stdout.strip():
            ids[ref] = shown.stdout.strip()
    return ids
