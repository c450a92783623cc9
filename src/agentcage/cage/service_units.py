"""Plain systemd services for hosts without quadlet (Podman < 4.4, such as Debian 12's 4.3.1).

The input is the cage's quadlet model (`build_units` in quadlet.py); the output is what
Podman's quadlet generator would make of it: one service per file, with the same `podman
run`, `podman network create` and `podman volume create` arguments, dependencies, restart
policy and readiness, and the same unit names, so starting, stopping, logs and destroy
work unchanged. tests/integration/cage/test_service_units.py feeds the quadlet files to the
real generator and compares its services with these, argument by argument.

`Notify=true` (the sidecars: they send READY=1 themselves once they listen) is
`--sdnotify=container`, which Podman 4.3 has. Where Podman 4.3 lacks something the
generator relies on, the service does the same another way:

* `Notify=healthy` (`--sdnotify=healthy`, `--health-startup-*`, Podman >= 4.7): the
  container reports itself started (`--sdnotify=conmon`), then `ExecStartPost=` runs the
  startup health command in it, every HealthStartupInterval, up to HealthStartupRetries
  times; the unit becomes active only once it passes, so `After=` still means "healthy";
* `run --cidfile` refuses a file left by the container before (Podman 4.3's `rm --cidfile`
  does not delete it): `ExecStartPre=` removes it, as `podman generate systemd --new` does;
* `network create --ignore` / `volume create --ignore`: create unless it exists;
* rootless services skip `podman-user-wait-network-online.service` (Podman 5 only).

Any quadlet key this module does not know is refused, so a new key in quadlet.py cannot
be dropped silently here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from agentcage.cage.contract import PODMAN as PODMAN  # the tests compare argv with it
from agentcage.cage.quadlet import CageUnits
from agentcage.cage.unit import Entry, RenderError, Section, Specifiers, UnitFile, Value

SHELL = "/bin/sh"
_CID_PATH = "%t/%N.cid"
_CIDFILE = Specifiers(f"--cidfile={_CID_PATH}")
_DURATION = re.compile(r"^\d+(?:\.\d+)?[smh]?$")


def to_services(units: CageUnits, *, rootless: bool) -> CageUnits:
    """The services the quadlet generator would write for `units`, by service file name."""
    objects = _Objects.of(units)
    files: dict[str, UnitFile] = {}
    for filename, unit in units.files.items():
        stem, _, kind = filename.rpartition(".")
        if kind == "container":
            files[f"{stem}.service"] = _container(filename, unit, objects, rootless)
        elif kind in ("network", "volume"):
            files[f"{stem}-{kind}.service"] = _network_or_volume(filename, unit, kind, rootless)
        else:
            raise RenderError(f"{filename}: no plain-systemd rendering for .{kind} files")
    return CageUnits(files)


@dataclass(frozen=True)
class _Objects:
    """`x.network` / `x.volume` file name -> (Podman object name, its service)."""

    by_file: dict[str, tuple[str, str]]

    @classmethod
    def of(cls, units: CageUnits) -> _Objects:
        found = {}
        for filename, unit in units.files.items():
            stem, _, kind = filename.rpartition(".")
            if kind in ("network", "volume"):
                name_key = "NetworkName" if kind == "network" else "VolumeName"
                name = _single(unit, _section(kind), name_key, filename)
                found[filename] = (name, f"{stem}-{kind}.service")
        return cls(found)

    def resolve(self, reference: str, origin: str) -> tuple[str, str]:
        if reference not in self.by_file:
            raise RenderError(f"{origin}: {reference} is not one of the cage's unit files")
        return self.by_file[reference]


def _section(kind: str) -> Section:
    return "Network" if kind == "network" else "Volume"


def _single(unit: UnitFile, section: Section, key: str, origin: str) -> str:
    values = [e.value for e in unit.sections.get(section, []) if e.key == key]
    if len(values) != 1 or not isinstance(values[0], str):
        raise RenderError(f"{origin}: needs exactly one [{section}] {key}=")
    return values[0]


def _head(source: UnitFile, rootless: bool) -> UnitFile:
    """[Unit] as the generator starts it: network-online, the file's own lines, runtime dir."""
    out = UnitFile()
    if not rootless:  # a user manager has no network-online.target
        out.add("Unit", "Wants", "network-online.target")
        out.add("Unit", "After", "network-online.target")
    for entry in source.sections.get("Unit", []):
        out.add("Unit", entry.key, entry.value)
    out.add("Unit", "RequiresMountsFor", (Specifiers("%t/containers"),))
    return out


def _tail(out: UnitFile, source: UnitFile, service: list[tuple[str, Value]]) -> UnitFile:
    """[Service]: the file's own lines first, then the generator's; [Install] as given."""
    for entry in source.sections.get("Service", []):
        out.add("Service", entry.key, entry.value)
    for key, value in service:
        out.add("Service", key, value)
    for entry in source.sections.get("Install", []):
        out.add("Install", entry.key, entry.value)
    return out


def _network_or_volume(filename: str, source: UnitFile, kind: str, rootless: bool) -> UnitFile:
    section = _section(kind)
    name_key = "NetworkName" if kind == "network" else "VolumeName"
    name = _single(source, section, name_key, filename)
    flags: list[str] = []
    for entry in source.sections.get(section, []):
        if entry.key == name_key:
            continue
        if entry.key == "Internal" and kind == "network":
            flags += ["--internal"] if entry.value == "true" else []
        elif entry.key == "DisableDNS" and kind == "network":
            flags += ["--disable-dns"] if entry.value == "true" else []
        elif entry.key == "Subnet" and kind == "network":
            flags += ["--subnet", _text(entry, filename)]
        elif entry.key == "Label":
            flags += [word for label in _words(entry, filename) for word in ("--label", label)]
        else:
            raise _unknown(filename, section, entry)
    # Podman 4.3's `create` has no --ignore: create only what does not exist yet.
    create = shlex.join([PODMAN, kind, "create", *flags, name])
    exists = shlex.join([PODMAN, kind, "exists", name])
    service: list[tuple[str, Value]] = [
        ("ExecStart", (SHELL, "-c", f"{exists} || exec {create}")),
        ("SyslogIdentifier", Specifiers("%N")),
        ("Type", "oneshot"),
        ("RemainAfterExit", "yes"),
    ]
    return _tail(_head(source, rootless), source, service)


@dataclass
class _Run:
    """The parts of one `podman run` as the container's quadlet keys are read."""

    filename: str
    objects: _Objects
    flags: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)  # PodmanArgs: after every other flag
    env: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    image: str = ""
    name: str = ""
    user: str = ""
    group: str = ""
    cgroups: str = "--cgroups=split"
    healthy: bool = False
    sdnotify: str = "conmon"  # who says READY=1: conmon once it runs, or the container
    startup: dict[str, str] = field(default_factory=dict)
    unit_lines: list[tuple[str, Value]] = field(default_factory=list)

    def needs(self, service: str) -> None:
        for key in ("Requires", "After"):
            if (key, service) not in self.unit_lines:
                self.unit_lines.append((key, service))

    def read(self, entry: Entry) -> None:
        handler = _CONTAINER_KEYS.get(entry.key)
        if handler is None:
            raise _unknown(self.filename, "Container", entry)
        handler(self, entry)

    def argv(self) -> tuple[str, ...]:
        if not self.image or not self.name:
            raise RenderError(f"{self.filename}: needs Image= and ContainerName=")
        if self.group and not self.user:
            raise RenderError(f"{self.filename}: Group= without User=")
        user = [f"{self.user}:{self.group}" if self.group else self.user] if self.user else []
        env = [word for k in sorted(self.env) for word in ("--env", f"{k}={self.env[k]}")]
        return (
            PODMAN, "run", "--name", self.name, _CIDFILE, "--replace", "--rm",
            *shlex.split(self.cgroups), f"--sdnotify={self.sdnotify}", "-d", *self.flags,
            *(["--user", *user] if user else []), *env, *self.tail, self.image, *self.command,
        )  # fmt: skip

    def readiness(self) -> tuple[str, ...] | None:
        """ExecStartPost for Notify=healthy: the startup check, retried, in the container."""
        if not self.healthy:
            return None
        command = self.startup.get("HealthStartupCmd") or self.startup.get("HealthCmd")
        retries = self.startup.get("HealthStartupRetries", "1")
        interval = self.startup.get("HealthStartupInterval", "1s")
        if command is None or not retries.isdigit() or not _DURATION.match(interval):
            raise RenderError(
                f"{self.filename}: Notify=healthy needs a health command, a number of "
                "retries and an interval like 1s"
            )
        if self.startup.get("HealthStartupSuccess", "1") != "1":
            raise RenderError(f"{self.filename}: HealthStartupSuccess other than 1")
        check = shlex.join([PODMAN, "exec", self.name, SHELL, "-c", command])
        script = (
            f"for i in $(seq {retries}); do {check} && exit 0; sleep {interval}; done; "
            f"echo {shlex.quote(self.name + ' never became healthy')} >&2; exit 1"
        )
        return (SHELL, "-c", script)


def _text(entry: Entry, origin: str) -> str:
    if not isinstance(entry.value, str):
        raise RenderError(f"{origin}: {entry.key} takes one value")
    return entry.value


def _words(entry: Entry, origin: str) -> tuple[str, ...]:
    if not isinstance(entry.value, tuple):
        raise RenderError(f"{origin}: {entry.key} takes a list of words")
    return entry.value


def _unknown(filename: str, section: str, entry: Entry) -> RenderError:
    return RenderError(
        f"{filename}: [{section}] {entry.key}= has no plain-systemd rendering "
        "(service_units.py must learn it)"
    )


def _flag(*flags: str) -> Callable[[_Run, Entry], None]:
    """A key whose value follows its flag (`PidsLimit=64` -> `--pids-limit 64`)."""

    def read(run: _Run, entry: Entry) -> None:
        run.flags.extend([*flags, _text(entry, run.filename)])

    return read


def _switch(*flags: str) -> Callable[[_Run, Entry], None]:
    """A boolean key that adds its flags when true (`ReadOnly=true` -> `--read-only`)."""

    def read(run: _Run, entry: Entry) -> None:
        if _text(entry, run.filename) == "true":
            run.flags.extend(flags)

    return read


def _lower(flag: str) -> Callable[[_Run, Entry], None]:
    """Capabilities: the generator writes them lower-case."""

    def read(run: _Run, entry: Entry) -> None:
        run.flags.extend([flag, _text(entry, run.filename).lower()])

    return read


def _set(attribute: str) -> Callable[[_Run, Entry], None]:
    def read(run: _Run, entry: Entry) -> None:
        setattr(run, attribute, _text(entry, run.filename))

    return read


def _startup(run: _Run, entry: Entry) -> None:
    run.startup[entry.key] = _text(entry, run.filename)


def _health_cmd(run: _Run, entry: Entry) -> None:
    _startup(run, entry)
    run.flags.extend(["--health-cmd", _text(entry, run.filename)])


def _notify(run: _Run, entry: Entry) -> None:
    value = _text(entry, run.filename)
    if value == "true":
        run.sdnotify = "container"  # Podman 4.3 has it: conmon relays the container's READY=1
    elif value == "healthy":
        run.healthy = True
    else:
        raise RenderError(f"{run.filename}: Notify={value} (only true and healthy are rendered)")


def _network(run: _Run, entry: Entry) -> None:
    reference, colon, options = _text(entry, run.filename).partition(":")
    name, service = run.objects.resolve(reference, run.filename)
    run.needs(service)
    run.flags.extend(["--network", f"{name}{colon}{options}"])


def _volume(run: _Run, entry: Entry) -> None:
    source, _, rest = _text(entry, run.filename).partition(":")
    if source.endswith(".volume"):
        source, service = run.objects.resolve(source, run.filename)
        run.needs(service)
    elif source.startswith("/"):
        run.unit_lines.append(("RequiresMountsFor", (source,)))
    run.flags.extend(["-v", f"{source}:{rest}"])


def _environment(run: _Run, entry: Entry) -> None:
    for word in _words(entry, run.filename):
        key, _, value = word.partition("=")
        run.env[key] = value


def _labels(run: _Run, entry: Entry) -> None:
    for label in _words(entry, run.filename):
        run.flags.extend(["--label", label])


def _podman_args(run: _Run, entry: Entry) -> None:
    run.tail.extend(_words(entry, run.filename))


def _exec(run: _Run, entry: Entry) -> None:
    run.command = _words(entry, run.filename)


def _cgroups(run: _Run, entry: Entry) -> None:
    run.cgroups = f"--cgroups {_text(entry, run.filename)}"


_CONTAINER_KEYS: dict[str, Callable[[_Run, Entry], None]] = {
    "Image": _set("image"),
    "ContainerName": _set("name"),
    "User": _set("user"),
    "Group": _set("group"),
    "Pull": _flag("--pull"),
    "PidsLimit": _flag("--pids-limit"),
    "Tmpfs": _flag("--tmpfs"),
    "Sysctl": _flag("--sysctl"),
    "AddDevice": _flag("--device"),
    "PublishPort": _flag("--publish"),
    "Entrypoint": _flag("--entrypoint"),
    "DNS": _flag("--dns"),
    "Secret": _flag("--secret"),
    "HealthInterval": _flag("--health-interval"),
    "HealthCmd": _health_cmd,
    "HealthStartupCmd": _startup,
    "HealthStartupInterval": _startup,
    "HealthStartupRetries": _startup,
    "HealthStartupSuccess": _startup,
    "Notify": _notify,
    "ReadOnly": _switch("--read-only"),
    "RunInit": _switch("--init"),
    "NoNewPrivileges": _switch("--security-opt=no-new-privileges"),
    "SecurityLabelDisable": _switch("--security-opt", "label=disable"),
    "DropCapability": _lower("--cap-drop"),
    "AddCapability": _lower("--cap-add"),
    "Network": _network,
    "Volume": _volume,
    "Environment": _environment,
    "Label": _labels,
    "PodmanArgs": _podman_args,
    "Exec": _exec,
    "CgroupsMode": _cgroups,
}


def _container(filename: str, source: UnitFile, objects: _Objects, rootless: bool) -> UnitFile:
    run = _Run(filename, objects)
    for entry in source.sections.get("Container", []):
        run.read(entry)
    out = _head(source, rootless)
    for key, value in run.unit_lines:
        out.add("Unit", key, value)
    stop = (PODMAN, "rm", "-v", "-f", "-i", _CIDFILE)
    service: list[tuple[str, Value]] = [
        ("Environment", (Specifiers("PODMAN_SYSTEMD_UNIT=%n"),)),
        ("KillMode", "mixed"),
        ("ExecStop", stop),
        ("ExecStopPost", (f"-{PODMAN}", *stop[1:])),  # `-`: a failure here is not the unit's
        ("Delegate", "yes"),
        ("Type", "notify"),
        ("NotifyAccess", "all"),
        ("SyslogIdentifier", Specifiers("%N")),
        ("ExecStartPre", ("/bin/rm", "-f", Specifiers(_CID_PATH))),
        ("ExecStart", run.argv()),
    ]
    readiness = run.readiness()
    if readiness is not None:
        service.append(("ExecStartPost", readiness))
    return _tail(out, source, service)
